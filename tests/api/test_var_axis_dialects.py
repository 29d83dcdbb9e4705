"""var/std(axis=...): NumPy's/JAX's ddof=0 in gradjit's namespace, PyTorch's alias of dim=
(Bessel-corrected) under `gradjit torch` (docs/numerics.md, "var and std: axis="). PyTorch
2.13's values and error are recorded constants (tests never import torch)."""
import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradjit as gj
import tracer.dialect

ROOT = Path(__file__).resolve().parents[2]
X = [[1.0, 2.0, 4.0], [3.0, 7.0, 5.0]]
# recorded from torch 2.13.0 (float64): torch.var(x, axis=0) == torch.var(x, dim=0)
TORCH_VAR_AXIS0 = [2.0, 12.5, 0.5]
TORCH_VAR_AXIS1 = [2.3333333333333335, 4.0]
TORCH_STD_AXIS1 = [1.5275252316519465, 2.0]
TORCH_STD_AXIS1_GRAD = [[-0.43643578047198484, -0.10910894511799625, 0.5455447255899809],
                        [-0.5, 0.5, 0.0]]
TORCH_VAR_AXES01 = 4.666666666666667
TORCH_VAR_AXIS1_BIASED = [1.5555555555555554, 2.6666666666666665]   # axis=1, unbiased=False


@pytest.fixture
def torch_script(monkeypatch):
    """This process as `gradjit torch` makes it (restored after the test)."""
    monkeypatch.setattr(tracer.dialect, "_torch_script", True)


def central_differences(f, a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        e = np.zeros_like(a)
        e[i] = eps
        g[i] = (f(a + e) - f(a - e)) / (2 * eps)
    return g


def x64(requires_grad=False):
    return gj.tensor(np.array(X), dtype=gj.float64, requires_grad=requires_grad)


def test_gradjit_namespace_axis_is_numpy_ddof0():
    assert not tracer.dialect.torch_spellings()
    np.testing.assert_allclose(gj.var(x64(), axis=0).numpy(), np.var(X, axis=0), rtol=1e-15)
    np.testing.assert_allclose(x64().std(axis=1).numpy(), np.std(X, axis=1), rtol=1e-15)
    assert not np.allclose(np.var(X, axis=0), TORCH_VAR_AXIS0)   # the two meanings differ


def test_torch_script_axis_is_dim_and_unbiased(torch_script):
    np.testing.assert_allclose(gj.var(x64(), axis=0).numpy(), TORCH_VAR_AXIS0, rtol=1e-15)
    np.testing.assert_allclose(x64().var(axis=1).numpy(), TORCH_VAR_AXIS1, rtol=1e-15)
    np.testing.assert_allclose(gj.var(x64(), axis=(0, 1)).item(), TORCH_VAR_AXES01, rtol=1e-15)
    np.testing.assert_allclose(gj.var(x64(), axis=0, keepdim=True).numpy(), [TORCH_VAR_AXIS0])
    np.testing.assert_allclose(gj.var(x64(), axis=1, unbiased=False).numpy(),
                               TORCH_VAR_AXIS1_BIASED, rtol=1e-15)
    # ddof= is not PyTorch's; it keeps NumPy's meaning (and picks axis= as NumPy's too)
    np.testing.assert_allclose(gj.var(x64(), axis=0, ddof=0).numpy(), np.var(X, axis=0))


def test_torch_script_std_axis_gradient(torch_script):
    x = x64(requires_grad=True)
    y = gj.std(x, axis=1)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), TORCH_STD_AXIS1, rtol=1e-15)
    np.testing.assert_allclose(x.grad.numpy(), TORCH_STD_AXIS1_GRAD, rtol=1e-12)
    # the compiled gradient, against finite differences (f64) and the eager one
    g = gj.grad(lambda a: gj.std(a, axis=1).sum())(x64())
    np.testing.assert_allclose(g.numpy(), TORCH_STD_AXIS1_GRAD, rtol=1e-12)
    fd = central_differences(lambda a: np.std(a, axis=1, ddof=1).sum(), np.array(X))
    np.testing.assert_allclose(g.numpy(), fd, rtol=1e-6, atol=1e-8)


def test_torch_script_axis_with_dim_is_a_type_error(torch_script):
    with pytest.raises(TypeError, match="both axis= and dim=") as e:
        gj.var(x64(), dim=0, axis=0)
    assert "test_var_axis_dialects.py" in str(e.value)   # names the user's line


def test_the_dropin_runner_switches_to_torch_spellings(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import torch\n"
                      f"x = torch.tensor({X}, dtype=torch.float64)\n"
                      "print(torch.var(x, axis=0).tolist(), x.std(axis=1).tolist())\n")
    done = subprocess.run([sys.executable, "-m", "gradjit", "torch", str(script)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    var, std = done.stdout.strip().split("] [")
    np.testing.assert_allclose(ast.literal_eval(var + "]"), TORCH_VAR_AXIS0, rtol=1e-15)
    np.testing.assert_allclose(ast.literal_eval("[" + std), TORCH_STD_AXIS1, rtol=1e-15)
