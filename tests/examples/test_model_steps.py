"""The model-step benchmarks (benchmarks/model_steps.py) as tests: a transformer block and a
CNN trained eagerly and through compile(model) agree after each of three steps (loss and
every parameter), and the compiled model's steps after the first compile nothing."""
import numpy as np
import pytest

import gradjit as gj
from benchmarks import model_steps
import runtime


@pytest.mark.parametrize("spec", [model_steps._Transformer, model_steps._CNN],
                         ids=["transformer", "cnn"])
def test_compiled_model_steps_equal_eager_steps(spec):
    init = model_steps._initial(spec, seed=5)
    data = spec.data(np.random.default_rng(6))
    eager = model_steps._make(spec, gj, None, init, data)
    compiled = model_steps._make(spec, gj, gj.compile, init, data)
    losses = []
    for _ in range(3):
        a, b = eager(), compiled()
        for x, y in zip(a, b):
            np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy(),
                                       rtol=2e-4, atol=1e-6)
        losses.append(float(a[0].item()))
    assert losses[2] < losses[0]                    # it trains
    before = runtime.cache_info()["compiles"]
    for _ in range(2):
        eager(), compiled()
    assert runtime.cache_info()["compiles"] == before     # same structure: no new program
