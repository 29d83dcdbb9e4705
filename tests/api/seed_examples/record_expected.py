"""Record what real PyTorch does with every seed example, into expected.json.

This is a maintenance script, not a test: it needs torch (checked with torch 2.13.0 CPU,
`pip install torch==2.13.0`), while the tests that read expected.json need only gradjit.

For each seedNNN_exK.py next to this file it records the stdout and the uncaught exception
(type and full message) of running the file verbatim with real torch. An example counts as
random when its stdout changes with the torch seed; for those, the test cannot compare text,
so CHECKS below states what is deterministic (which tensor each printed line shows, and
relations between tensors of the example's namespace), and this script verifies every such
check against torch for several seeds before writing it down.

Run: python tests/api/seed_examples/record_expected.py
"""

import contextlib
import inspect
import io
import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).parent
SEEDS_TRIED = range(12)

# Per example, the checks applied after running it (torch here, gradjit in test_seeds.py).
# "cases": the first case whose "when" expression is true (or has no "when") applies.
#   "printed": each stdout line is the torch-style text of the tensor this expression names
#   "close":   pairs of expressions whose values must agree (to float32 rounding)
#   "true":    expressions that must be true
# "setup": code run before the example, for examples that use a name they never define.
CHECKS = {
    "seed000_ex1": {"cases": [{
        "printed": ["x.grad", "y.grad"],
        "close": [["x.grad", "y.detach() / 3"], ["y.grad", "x.detach() / 3"]],
        "true": ["type(loss.grad_fn).__name__ == 'MeanBackward0'",
                 "type(z.grad_fn).__name__ == 'MulBackward0'"]}]},
    "seed000_ex2": {"cases": [{
        "true": ["x.grad is None", "loss.grad_fn is None", "not loss.requires_grad"]}]},
    "seed000_ex3": {"cases": [
        {"when": "loss.item() > 0.5",
         "printed": ["x.grad", "y.grad"],
         "close": [["x.grad", "y.detach() / 3"], ["y.grad", "x.detach() / 3"]]},
        {"stdout": "Loss too low; skipping backward pass.\n",
         "true": ["x.grad is None", "y.grad is None"]}]},
    "seed001_ex1": {"cases": [{
        "printed": ["x.grad", "y.grad"],
        "close": [["x.grad", "y.detach()"], ["y.grad", "x.detach()"],
                  ["z.detach()", "(x.detach() * y.detach()).sum()"]],
        "true": ["z.shape == ()", "type(z.grad_fn).__name__ == 'DotBackward0'"]}]},
    "seed001_ex2": {"cases": [{"true": ["x.grad is None", "y.grad is None"]}]},
    "seed001_ex3": {"cases": [{
        # the first print shows x.grad == y; z2.backward() then raises, after zero_()
        "printed": ["y"],
        "close": [["x.grad", "torch.zeros(3)"]],
        "true": ["y.grad is None", "y2.grad is None"]}]},
    "seed002_ex1": {
        "setup": "import torch\nx = torch.tensor(2.0, requires_grad=True)\ntensor = x ** 2\n",
        "cases": [{"close": [["x.grad", "torch.tensor(4.0)"]]}]},
    "seed002_ex2": {"cases": [{"true": ["x.grad.item() == 12.0", "y.item() == 12.0"]}]},
    "seed002_ex3": {"cases": [{"close": [["x.grad", "torch.tensor([2.0, 2.0, 2.0])"]]}]},
    "seed003_ex1": {"cases": [{
        "true": ["x.grad is None", "z.grad_fn is None", "w.grad_fn is None",
                 "not z.requires_grad", "z.is_leaf"]}]},
    "seed003_ex2": {"cases": [{"true": ["x.grad is None", "y.grad_fn is None"]}]},
    "seed003_ex3": {"cases": [{
        "close": [["x.grad", "torch.full((3,), 2.0)"], ["y.detach()", "x.detach() * 2 + 1"]],
        "true": ["type(y.grad_fn).__name__ == 'AddBackward0'"]}]},
    "seed004_ex1": {"cases": [{"close": [["x.grad", "torch.full((3,), 2 / 3)"]]}]},
    "seed004_ex2": {"cases": [{
        "close": [["gradients[0]", "torch.full((3,), 2 / 3)"], ["w", "torch.full((3,), 2.0)"]],
        "true": ["gradients[0].grad_fn is None", "not gradients[0].requires_grad",
                 "x.grad is None", "isinstance(gradients, tuple)", "len(gradients) == 1"]}]},
    "seed004_ex3": {"cases": [{
        "close": [["y.detach()", "x.detach() * 2"]],
        "true": ["x.grad is None", "type(y.grad_fn).__name__ == 'MyCustomFunctionBackward'"]}]},
}

# Why an example's outcome differs from what the seed's prose says (see seeds/ERRATA.md).
NOTES = {
    "seed001_ex3": "ERRATA: z2.backward() on a vector raises (uncaught); only the first print "
                   "runs.",
    "seed002_ex1": "A signature line, not a program: `tensor` is a placeholder, so running it "
                   "verbatim raises NameError. The test binds `tensor` (see setup) and checks "
                   "Tensor.backward's signature against torch's (real default retain_graph=None).",
    "seed002_ex2": "The seed page lost its line breaks; this file restores them, tokens unchanged.",
    "seed002_ex3": "The seed page lost its line breaks; this file restores them, tokens unchanged.",
    "seed003_ex1": "ERRATA: the error is 'element 0 of tensors does not require grad...', "
                   "not the retain_graph error the seed's comment quotes.",
    "seed003_ex2": "ERRATA: the error is 'element 0 of tensors ...', not 'One of the "
                   "differentiated Tensors does not require grad'.",
    "seed003_ex3": "ERRATA: never an error; x.grad is all 2s.",
    "seed004_ex2": "ERRATA: the gradient of mean(2x) is constant: no grad_fn, requires_grad=False.",
    "seed004_ex3": "ERRATA: y.backward() on a vector output raises (uncaught); x.grad stays None.",
}


def run(path: pathlib.Path, seed: int | None, setup: str = "") -> dict:
    """Run one example with torch; return its namespace, stdout and uncaught exception."""
    if seed is not None:
        torch.manual_seed(seed)
    ns = {"__name__": "__main__"}
    out = io.StringIO()
    error = None
    with contextlib.redirect_stdout(out):
        exec(compile(setup, "<setup>", "exec"), ns)
        try:
            exec(compile(path.read_text(), str(path), "exec"), ns)
        except Exception as e:
            error = {"type": type(e).__name__, "message": str(e)}
    return {"ns": ns, "stdout": out.getvalue(), "exception": error}


def values(t) -> np.ndarray:
    return np.array(t.tolist(), dtype=np.float64)


def verify_checks(name: str, result: dict) -> None:
    """Assert that the CHECKS entry of an example holds for this torch run."""
    ns = result["ns"]
    case = next(c for c in CHECKS[name]["cases"] if eval(c.get("when", "True"), ns))
    lines = result["stdout"].splitlines()
    if "stdout" in case:
        assert result["stdout"] == case["stdout"], (name, result["stdout"])
    if "printed" in case:
        assert len(lines) == len(case["printed"]), (name, lines)
        for line, expr in zip(lines, case["printed"]):
            assert line == str(eval(expr, ns)), (name, line, expr)
    for a, b in case.get("close", []):
        np.testing.assert_allclose(values(eval(a, ns)), values(eval(b, ns)), rtol=1e-6, atol=1e-7)
    for expr in case.get("true", []):
        assert eval(expr, ns), (name, expr)


def format_samples() -> list:
    """1-D float32 tensors and torch's text for them, to pin the test's reference formatter."""
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(3) for _ in range(20)]
    arrays += [rng.standard_normal(4) * 10 ** k for k in (-5, -2, 2, 4, 9)]
    arrays += [[2.0, 4.0, 6.0], [-1.5, 2.25], [0.0, 1.0], [1e-5, 1.0], [1.0, 5000.0],
               [0.6667, -0.001], [0.0, 0.0], [-3.0, 12.0, 100.0], [2 / 3] * 3]
    samples = []
    for a in arrays:
        t = torch.tensor(np.asarray(a, dtype=np.float32))
        samples.append({"values": t.tolist(), "text": str(t)})
    return samples


def backward_signature() -> list:
    params = list(inspect.signature(torch.Tensor.backward).parameters.values())[1:]
    return [[p.name, p.default] for p in params]


def record_one(path: pathlib.Path) -> dict:
    name = path.stem
    setup = CHECKS[name].get("setup", "")
    runs = [run(path, seed, setup) for seed in SEEDS_TRIED]
    for r in runs:
        verify_checks(name, r)
    random = len({r["stdout"] for r in runs}) > 1
    verbatim = run(path, 0)
    entry = {
        "file": path.name,
        "random": random,
        "stdout": None if random else runs[0]["stdout"],
        "exception": runs[0]["exception"],
        "verbatim_exception": verbatim["exception"] if setup else None,
        "stdout_torch_manual_seed_0": runs[0]["stdout"],
        "note": NOTES.get(name, ""),
    }
    if random:
        entry["random_note"] = ("stdout depends on torch's random stream; gradjit's differs, so "
                                "the test checks 'cases' instead of the text above")
    entry.update(CHECKS[name])
    return entry


def main() -> None:
    files = sorted(HERE.glob("seed*_ex*.py"))
    assert sorted(p.stem for p in files) == sorted(CHECKS)
    expected = {
        "torch_version": torch.__version__,
        "examples": {p.stem: record_one(p) for p in files},
        "format_samples": format_samples(),
        "backward_signature": backward_signature(),
    }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"recorded {len(files)} examples with torch {torch.__version__}")


if __name__ == "__main__":
    main()
