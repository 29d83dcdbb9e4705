"""More statement kinds of tests/fuzz_programs.py's generator (a mixin of Gen): matmul,
softmax / cat, conversions, index writes."""
from __future__ import annotations

from tests.fuzz_types import BOOL, F32, F64, FLOATS, I64, broadcast


class MoreStatements:
    def s_matmul(self):
        a = self.pick(lambda v: v.dtype in FLOATS and v.shape is not None and len(v.shape) == 2)
        if a is None:
            return
        b = self.pick(lambda v: v.dtype == a.dtype and v.shape is not None and
                      len(v.shape) in (1, 2) and v.shape[0] == a.shape[1])
        if b is None:
            return
        v = self.new(a.shape[:1] + b.shape[1:], a.dtype, a.grad or b.grad)
        form = self.choice(["{} @ {}", "torch.matmul({}, {})"])
        self.emit(f"{v.name} = {form.format(a.name, b.name)}")

    def s_softmax_cat(self):
        a = self.pick(lambda v: v.dtype in FLOATS and v.shape not in (None, ()))
        if a is None:
            return
        d = self.r.randrange(len(a.shape))
        if self.r.random() < 0.5 or self.memo:             # (cat is not memoised)
            v = self.new(a.shape, a.dtype, a.grad)
            f = self.r.choice(["softmax", "log_softmax"])
            self.emit(f"{v.name} = torch.{f}({a.name}, dim={d})")
            return
        b = self.pick(lambda v: v.dtype == a.dtype and v.shape is not None and
                      len(v.shape) == len(a.shape) and
                      all(x == y for i, (x, y) in enumerate(zip(a.shape, v.shape)) if i != d))
        shape = tuple(x + y if i == d else x for i, (x, y) in enumerate(zip(a.shape, b.shape)))
        v = self.new(shape, a.dtype, a.grad or b.grad)
        f = self.r.choice(["cat", "concat"])
        self.emit(f"{v.name} = torch.{f}([{a.name}, {b.name}], dim={d})")

    def s_convert(self):
        a = self.pick(lambda v: v.shape is not None)
        if a is None:
            return
        to = self.r.choice([F32, F64, I64, BOOL])
        meth = {F32: "float", F64: "double", I64: "long", BOOL: "bool"}[to]
        text = f"{a.name}.{meth}()" if self.r.random() < 0.6 else f"{a.name}.to(torch.{to})"
        v = self.new(a.shape, to, a.grad and to in FLOATS)
        self.emit(f"{v.name} = {text}")

    def s_index_write(self):
        """x[idx] = v and x[mask] = v on an intermediate (never a leaf that requires grad)."""
        a = self.pick(lambda v: not v.leaf and v.shape not in (None, ()) and v.shape[0] > 0
                      and v.dtype in FLOATS and v.contiguous)
        if a is None:
            return
        if self.r.random() < 0.5:
            self.emit(f"{a.name}[{a.name} > 0.5] = {self.r.choice(['0', '-1.0'])}")
            return
        self.data += 1
        n = self.r.randrange(1, min(4, a.shape[0] + 1))
        # (inline: an index changed in place before backward is a listed deviation)
        index = self.index_data(n, a.shape[0], distinct=True)
        # (not a itself: an operand overlapping the target is a listed deviation)
        b = self.pick(lambda v: v.dtype in FLOATS and v.shape is not None and
                      v.storage != a.storage and
                      broadcast((n,) + a.shape[1:], v.shape) == (n,) + a.shape[1:])
        text = f"{a.name}[{index}] = {b.name if b is not None else '0.5'}"
        if b is not None and b.dtype != a.dtype:     # PyTorch's index_put_ refuses
            self.hostile(text)
            return
        self.emit(text)
        if b is not None and b.grad:
            a.grad = True
