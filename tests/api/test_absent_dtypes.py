"""float16 / bfloat16 (tracer/dtypes.AbsentDType): named, so programs that only name them
run (nanoGPT's `ptdtype` table, `dtype == torch.float16`), but a tensor or a Module of one
is refused with one TypeError naming the user's line, whichever spelling asked for it
(docs/compat.md says why). Before session 21, `Tensor.half()`, `.bfloat16()` and
`Module.half()` raised AttributeError, `.to(torch.float16)` "unsupported dtype"."""
import pickle

import pytest

import gradjit as torch

CONVERSIONS = {
    "zeros": lambda d: torch.zeros(3, dtype=d),
    "tensor": lambda d: torch.tensor([1.0], dtype=d),
    "half_or_bfloat16": lambda d: getattr(torch.ones(2), "half" if d is torch.float16
                                          else "bfloat16")(),
    "to": lambda d: torch.ones(2).to(d),
    "to_keyword": lambda d: torch.ones(2).to(dtype=d),
    "type": lambda d: torch.ones(2).type(d),
    "module_to": lambda d: torch.nn.Linear(2, 2).to(d),
    "module_method": lambda d: getattr(torch.nn.Linear(2, 2), "half" if d is torch.float16
                                       else "bfloat16")(),
    "set_default_dtype": lambda d: torch.set_default_dtype(d),
}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("how", list(CONVERSIONS))
def test_a_tensor_of_an_absent_dtype_is_refused_naming_the_line(how, dtype):
    with pytest.raises(TypeError, match=rf"gradjit has no torch.{dtype} tensors .*use "
                                        r"torch.float32 \(at test_absent_dtypes.py:\d+\)"):
        CONVERSIONS[how](getattr(torch, dtype))
    assert torch.get_default_dtype() is torch.float32


def test_a_refused_module_conversion_changes_no_parameter():
    m = torch.nn.Linear(2, 2)
    before = [p.dtype for p in m.parameters()]
    with pytest.raises(TypeError):
        m.half()
    assert [p.dtype for p in m.parameters()] == before == [torch.float32] * 2


def test_absent_dtypes_can_be_named_compared_and_pickled():
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    assert table["float16"] is torch.half and torch.float16 != torch.float32
    assert torch.float16.is_floating_point and repr(torch.bfloat16) == "torch.bfloat16"
    assert pickle.loads(pickle.dumps(torch.float16)) is torch.float16
