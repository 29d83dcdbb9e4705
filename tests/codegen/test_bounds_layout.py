"""Bounds-check mode proves the addresses codegen fixes at compile time
(codegen/bounds_layout.py): emit.py's workspace layout and vmath_trig_huge's table reach.
A spoiled layout or table is refused (CheckError) instead of compiled; the real ones pass."""
import numpy as np
import pytest

import runtime
from codegen import emit, vmath_trig_huge
from codegen.bounds_layout import CheckError, check_workspace_layout
from codegen.emit import lower_function
from tests.prim_samples import T, make_fn


def _temps_fn():
    """Several temporaries live at once in the workspace (a dot's operands are stored)."""
    def body(b, x, w):
        h = b.tanh(b.dot_general(x, w, contract=((1,), (0,)), batch=((), ())))
        g = b.exp(b.dot_general(h, w, contract=((1,), (0,)), batch=((), ())))
        return [b.add(b.dot_general(g, w, contract=((1,), (0,)), batch=((), ())), h)]
    return make_fn("temps", [T("f64", (6, 5)), T("f64", (5, 5))], body)


def _spoil(monkeypatch, how):
    layout = emit.FunctionEmitter._layout

    def spoiled(self, region_bytes):
        total = layout(self, region_bytes)
        how(self, total)
        return total
    monkeypatch.setattr(emit.FunctionEmitter, "_layout", spoiled)


def test_the_real_layout_passes_and_runs_as_the_plain_build():
    fn = _temps_fn()
    rng = np.random.default_rng(0)
    args = [rng.normal(size=p.type.shape) for p in fn.params]
    checked = runtime.build_executable(fn, bounds_check=True)(*args)
    plain = runtime.build_executable(fn)(*args)
    assert all(np.array_equal(a, b) for a, b in zip(checked, plain))


def _first_temp(emitter):
    assert emitter.offsets, "the sample program has no workspace temporaries"
    return min(emitter.offsets, key=lambda t: emitter.offsets[t])


def _past_the_end(emitter, total):
    emitter.offsets[_first_temp(emitter)] = emitter.region_offset - 8


def _into_the_header(emitter, total):
    emitter.offsets[_first_temp(emitter)] = 0


def _shared_while_live(emitter, total):
    lives = emitter.lives
    for a in lives:
        for b in lives:
            if a is not b and lives[a][0] <= lives[b][1] and lives[b][0] <= lives[a][1]:
                emitter.offsets[b] = emitter.offsets[a]
                return
    raise AssertionError("the sample program has no two temporaries live at once")


@pytest.mark.parametrize("how, text", [
    (_past_the_end, "leave the temporaries' span"),
    (_into_the_header, "leave the temporaries' span"),
    (_shared_while_live, "share bytes while both are live"),
])
def test_a_spoiled_workspace_layout_is_refused_in_bounds_check_mode(monkeypatch, how, text):
    _spoil(monkeypatch, how)
    with pytest.raises(CheckError, match="workspace layout: .*" + text):
        lower_function(_temps_fn(), bounds_check=True)
    lower_function(_temps_fn(), bounds_check=False)          # (the plain mode: not checked)


def test_an_empty_temporary_shares_no_bytes():
    """(det of a 0 x 0 matrix: an f32[0, 0] temporary at the offset of a live scalar)"""
    spans = {"scalar": (64, 64), "empty": (64, 0), "other": (128, 64)}
    lives = {"scalar": (0, 2), "empty": (1, 1), "other": (0, 2)}
    check_workspace_layout(spans, lives, 64, 192, 0, 192)
    with pytest.raises(CheckError, match="share bytes"):
        check_workspace_layout(dict(spans, other=(100, 64)), lives, 64, 192, 0, 192)


def test_a_too_short_table_of_2_over_pi_words_is_refused(monkeypatch):
    vmath_trig_huge.helper_module_text()                     # the real table reaches
    monkeypatch.setattr(vmath_trig_huge, "TWO_OVER_PI_WORDS",
                        vmath_trig_huge.TWO_OVER_PI_WORDS[:-1])
    with pytest.raises(CheckError, match="reaches word 19 of a table of 19"):
        vmath_trig_huge.helper_module_text()
