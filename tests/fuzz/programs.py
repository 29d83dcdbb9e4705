"""Random programs for the fuzzer: a Program is input types plus a list of steps
(tests/fuzz/ops.py), run by `execute(prog, m, args)` with m = NP or GJ.

Generation runs the NumPy meaning alongside, so every step's operands and params are drawn
against the real shapes of the values built so far: no shape rules are repeated here.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from tests.fuzz.namespaces import NP
from tests.fuzz.ops import REVERSE_UNSUPPORTED, ROUGH, STEPS

SHAPES = [(), (), (1,), (3,), (4,), (2, 3), (3, 1), (1, 3), (2, 2), (0,), (2, 0), (1, 1)]


@dataclass
class Program:
    seed: int
    dtype: str                                   # "float32" or "float64"
    shapes: list                                 # one per input
    steps: list = field(default_factory=list)    # (name, operand indices, params)
    outputs: list = field(default_factory=list)  # indices into the value pool

    @property
    def rough(self) -> bool:
        return any(name in ROUGH for name, _, _ in self.steps)

    @property
    def reversible(self) -> bool:
        return not any(name in REVERSE_UNSUPPORTED for name, _, _ in self.steps)

    def __str__(self) -> str:
        lines = [f"Program(seed={self.seed}, {self.dtype}, inputs {self.shapes})"]
        n = len(self.shapes)
        for name, ins, params in self.steps:
            lines.append(f"  v{n} = {name}({', '.join(f'v{i}' for i in ins)}) {params}")
            n += 1
        lines.append(f"  return {', '.join(f'v{i}' for i in self.outputs)}")
        return "\n".join(lines)


def sample_inputs(prog: Program, rng, dtype=None) -> list[np.ndarray]:
    dt = np.dtype(dtype or prog.dtype)
    return [np.asarray(rng.uniform(-1.5, 1.5, s), dt) for s in prog.shapes]


def execute(prog: Program, m, args) -> list:
    """The program's outputs, computed with namespace m (NP or GJ) on args."""
    pool = list(args)
    for name, ins, params in prog.steps:
        pool.append(STEPS[name][1](m, *(pool[i] for i in ins), **params))
    return [pool[i] for i in prog.outputs]


def random_program(seed: int, max_steps: int = 8, steps=None) -> Program:
    """A random program from seed, its steps drawn from `steps` (default: all of them)."""
    rng = np.random.default_rng(seed)
    names = sorted(steps or STEPS)
    weights = np.array([STEPS[n][2] for n in names], float)
    dtype = "float64" if rng.random() < 0.5 else "float32"
    n_inputs = int(rng.integers(1, 4))
    shapes = [SHAPES[int(rng.integers(len(SHAPES)))] for _ in range(n_inputs)]
    prog = Program(seed, dtype, shapes)
    pool = sample_inputs(prog, np.random.default_rng(seed + 1), "float64")
    for _ in range(int(rng.integers(1, max_steps + 1))):
        for _attempt in range(10):
            name = str(rng.choice(names, p=weights / weights.sum()))
            drawn = STEPS[name][0](rng, pool)
            if drawn is None or None in drawn[0]:
                continue
            ins, params = drawn
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                try:
                    out = STEPS[name][1](NP, *(pool[i] for i in ins), **params)
                except (IndexError, ValueError):     # a draw the formula cannot take
                    continue
            out = np.asarray(out)
            if out.dtype.kind != "f" or out.size > 64 or out.ndim > 3:
                continue
            prog.steps.append((name, ins, params))
            pool.append(out)
            break
    last = len(pool) - 1
    extra = [int(k) for k in rng.integers(0, len(pool), int(rng.integers(0, 2)))]
    prog.outputs = [last] + [k for k in extra if k != last and k >= len(shapes)]
    return prog
