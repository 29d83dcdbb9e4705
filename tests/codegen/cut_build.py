"""A fresh executable of a Function (no cache) with concat_split's loop cuts on or off,
for the tests that compare the cut loop with the plain one bit for bit."""
import pytest

import runtime
from codegen import concat_split


def build(fn, split: bool):
    """A fresh executable of fn, with the loop cut (concat_split.cuts) on or off."""
    with pytest.MonkeyPatch.context() as m:
        if not split:
            m.setattr(concat_split, "cuts", lambda *a, **k: [])
        return runtime.build_executable(fn)
