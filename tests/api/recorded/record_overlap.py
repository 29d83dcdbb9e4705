"""Records tests/api/recorded/overlap.json from real PyTorch 2.13 (not run by the suite):
    /tmp/refvenv/bin/python tests/api/recorded/record_overlap.py > tests/api/recorded/overlap.json
"""
import json
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parents[3]))
from tests.api import overlap_programs  # noqa: E402

warnings.simplefilter("ignore")        # (index_put_ on an expand: deprecated, still runs)
print(json.dumps({p.__name__: overlap_programs.run(p, torch)
                  for p in overlap_programs.PROGRAMS}, indent=1))
