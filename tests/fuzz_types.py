"""The values a tests/fuzz_programs.py program holds, as its generator tracks them: shapes,
dtypes, whether they require grad, and PyTorch's promotion and broadcasting rules."""
from __future__ import annotations

from dataclasses import dataclass

F32, F64, I64, BOOL = "float32", "float64", "int64", "bool"
FLOATS = (F32, F64)
SHAPES = [(), (3,), (4,), (2, 3), (3, 1), (1, 3), (2, 1, 3), (0,), (1,), (3, 3)]
UNARY = ["torch.sin({})", "torch.tanh({})", "{}.relu()", "torch.sigmoid({})", "{}.abs()",
         "-{}", "{}.pow(2)", "torch.sqrt({}.abs() + 1)", "torch.exp({}.clamp(-2, 2))",
         "{} * {}", "{}.clamp(min=-0.5)"]
BINARY = ["{} + {}", "{} - {}", "{} * {}", "torch.maximum({}, {})", "{} / ({}.abs() + 1)"]
# what a "memo" program keeps to: forms whose ops the op memo replays (tracer/op_memo.OPS),
# so that its steps can form a tape (tracer/step_capture.py)
MEMO_FORMS = {"torch.tanh({})", "{}.relu()", "torch.sigmoid({})", "-{}", "{}.pow(2)",
              "{} * {}", "torch.exp({}.clamp(-2, 2))", "{}.clamp(min=-0.5)", "{} + {}",
              "{} - {}", "unsqueeze", "reshape", "clone", "flatten", "t", "view", "squeeze",
              "sum", "mean", "add_", "mul_", "iadd", "zero_", "clamp_", "{} @ {}"}


@dataclass
class Var:
    name: str
    shape: tuple | None      # None: data-dependent (a mask index's result)
    dtype: str
    grad: bool = False       # requires grad
    leaf: bool = False       # a leaf that requires grad (in-place on it needs no_grad)
    contiguous: bool = True
    expanded: bool = False   # an expand or a view of one (writes to it are refused)
    storage: str = ""        # the Var whose memory it shares (views; "": its own)

    def __post_init__(self):
        self.storage = self.storage or self.name


def promote(operands) -> str:
    """PyTorch's result dtype for an elementwise op on Vars and Python scalars ("int"/"float"):
    dimensioned tensors first; a 0-d tensor or a scalar only when of a higher category."""
    order = [BOOL, I64, F32, F64]
    cat = {BOOL: 0, I64: 1, F32: 2, F64: 2, "int": 1, "float": 2}
    dims = [v.dtype for v in operands if isinstance(v, Var) and v.shape != ()]
    zero = [v.dtype for v in operands if isinstance(v, Var) and v.shape == ()]
    out = max(dims or zero, key=order.index)
    if dims and zero and max(cat[d] for d in zero) > cat[out]:
        out = max(zero, key=order.index)
    for s in (v for v in operands if isinstance(v, str)):
        if cat[s] > cat[out]:
            out = F32 if s == "float" else I64
    return out


def broadcast(a, b):
    if a is None or b is None:
        return "fail"
    out = []
    for x, y in zip(((1,) * len(b) + a)[-max(len(a), len(b)):],
                    ((1,) * len(a) + b)[-max(len(a), len(b)):]):
        if x != y and 1 not in (x, y):
            return "fail"
        out.append(y if x == 1 else x)
    return tuple(out)
