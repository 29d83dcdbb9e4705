"""Statement families of tests/fuzz_programs.py's generator (a mixin of Gen), round 2:
strided views (transpose, permute, narrow, select, movedim, diagonal, unflatten, expand_as)
with in-place writes through the view or its base, and dtype promotion with Python scalars
and in-place ops PyTorch refuses for a dtype."""
from __future__ import annotations

from tests.fuzz_types import BOOL, F32, F64, FLOATS, I64, broadcast, promote


def _perm(r, nd):
    p = list(range(nd))
    r.shuffle(p)
    return p


class ViewStatements:
    def s_strided_view(self):
        """A view with strides gradjit does not keep, then maybe an in-place write through
        the view or its base (PyTorch rebases the view's history: CopySlices)."""
        a = self.pick(lambda v: v.shape not in (None, ()) and not v.expanded)
        if a is None:
            return
        r, s, nd = self.r, a.shape, len(a.shape)
        kinds = ["narrow", "select", "unsqueeze(-1)", "squeeze", "movedim"]
        if nd >= 2:
            kinds += ["transpose", "permute", "swapaxes", "mT", "unflatten"]
        if nd == 2:
            kinds += ["T", "diagonal"]
        if self.memo:       # (the forms the op memo replays: tracer/op_memo.OPS)
            kinds = [k for k in kinds if k in ("unsqueeze(-1)", "transpose", "permute", "T")]
            if not kinds:
                return
        kind = r.choice(kinds)
        d = r.randrange(nd)
        neg = d - nd if r.random() < 0.4 else d      # a negative spelling of the same dim
        contiguous = False
        if kind == "narrow":
            if s[d] == 0:
                return
            start = r.randrange(s[d])
            length = r.randrange(0, s[d] - start + 1)
            shape = s[:d] + (length,) + s[d + 1:]
            text = f"{a.name}.narrow({neg}, {start}, {length})"
        elif kind == "select":
            if s[d] == 0:
                return
            i = r.randrange(-s[d], s[d])
            shape, text = s[:d] + s[d + 1:], f"{a.name}.select({neg}, {i})"
        elif kind == "unsqueeze(-1)":
            shape, text, contiguous = s + (1,), f"{a.name}.unsqueeze(-1)", a.contiguous
        elif kind == "squeeze":
            shape = tuple(x for x in s if x != 1)
            text, contiguous = f"{a.name}.squeeze()", a.contiguous
        elif kind == "movedim":
            e = r.randrange(nd)
            order = [i for i in range(nd) if i != d]
            order.insert(e, d)
            shape, text = tuple(s[i] for i in order), f"{a.name}.movedim({neg}, {e})"
        elif kind in ("transpose", "swapaxes"):
            e = r.randrange(nd)
            order = list(range(nd))
            order[d], order[e] = e, d
            shape, text = tuple(s[i] for i in order), f"{a.name}.{kind}({neg}, {e - nd})"
        elif kind == "permute":
            p = _perm(r, nd)
            shape, text = tuple(s[i] for i in p), f"{a.name}.permute({', '.join(map(str, p))})"
        elif kind in ("mT", "T"):
            shape, text = s[:-2] + (s[-1], s[-2]), f"{a.name}.{kind}"
        elif kind == "unflatten":
            if s[d] % 2 or s[d] == 0:
                return
            shape = s[:d] + (2, s[d] // 2) + s[d + 1:]
            text, contiguous = f"{a.name}.unflatten({neg}, (2, -1))", a.contiguous
        else:  # diagonal
            k = r.choice([0, 0, 1, -1])
            n = max(0, min(s[0] + min(k, 0), s[1] - max(k, 0)))
            shape, text = (n,), f"{a.name}.diagonal({k})"
        v = self.new(shape, a.dtype, a.grad, contiguous=contiguous and a.contiguous,
                     leaf=a.leaf, storage=a.storage)
        self.emit(f"{v.name} = {text}")
        if r.random() < 0.6:
            self.write_view_or_base(v, a)

    def write_view_or_base(self, view, base):
        r = self.r
        target = view if r.random() < 0.6 else base
        other = base if target is view else view
        if target.dtype == BOOL or target.shape is None:
            return
        value = r.choice(["2", "-1"] if target.dtype == I64 else ["2", "0.5", "-1.5"])
        text = r.choice([f"{target.name}.mul_({value})", f"{target.name}.add_({value})",
                         f"{target.name}.sub_({value})", f"{target.name}.fill_({value})",
                         f"{target.name}.zero_()", f"{target.name}.clamp_(max={value})"])
        if target.leaf:       # (a view of) a leaf that requires grad: PyTorch refuses
            self.hostile(text)
            return
        if self.memo:
            text = f"{target.name}.mul_({value})"
        self.emit(text)
        if r.random() < 0.5:   # both show the write
            self.emit(f"rec('view', {other.name})")

    def s_promote(self):
        """An operator of any tensor (bool, int, float) with a Python scalar, either side."""
        a = self.pick(lambda v: v.shape is not None)
        if a is None:
            return
        r = self.r
        scalar = r.choice(["2", "-3", "0.5", "True", "1.5"])
        kind = "float" if "." in scalar else ("bool" if scalar == "True" else "int")
        op = r.choice(["+", "-", "*", "/", "//", "%", "**"])
        left = r.random() < 0.7
        text = f"{a.name} {op} {scalar}" if left else f"{scalar} {op} {a.name}"
        if kind == "bool":
            out = a.dtype
        else:
            out = promote([a, kind])
        if op == "/" and out not in FLOATS:
            out = F32
        bool_bad = a.dtype == BOOL and kind == "bool" and op in ("-", "/", "//", "%", "**")
        risky = (op == "-" and BOOL in (a.dtype, kind)) or \
            (op in ("//", "%") and a.dtype != BOOL and kind == "bool") or \
            (op in ("//", "%", "**") and (a.dtype in (BOOL, I64) or not left or a.grad)) or \
            bool_bad
        if risky:       # (some of these PyTorch refuses: recorded, never kept)
            self.hostile(f"rec('promote', {text})")
            return
        v = self.new(a.shape, out, a.grad and out in FLOATS)
        self.emit(f"{v.name} = {text}")
        self.emit(f"rec('dtype', str({v.name}.dtype))")

    def s_inplace_dtype(self):
        """An in-place op whose result type may not fit the tensor written: PyTorch raises
        "result type Float can't be cast to the desired output type Long"."""
        a = self.pick(lambda v: v.shape is not None and not v.leaf and not v.expanded)
        if a is None:
            return
        r = self.r
        b = self.pick(lambda v: broadcast(a.shape, v.shape) == a.shape and
                      v.storage != a.storage)
        operand = r.choice(["2", "0.5", "True"] + ([b.name] * 2 if b is not None else []))
        op = r.choice(["add_", "sub_", "mul_", "div_", "+=", "*=", "/="])
        text = f"{a.name} {op} {operand}" if "=" in op else f"{a.name}.{op}({operand})"
        kind = b if operand == getattr(b, "name", None) else \
            {"2": "int", "0.5": "float", "True": "bool"}[operand]
        res = promote([a, kind]) if kind != "bool" else a.dtype
        if op in ("div_", "/=") and res not in FLOATS:
            res = F32
        order = [BOOL, I64, F32, F64]
        fits = a.dtype in FLOATS or order.index(res) <= order.index(a.dtype)
        if a.dtype == BOOL and op in ("sub_",):
            fits = False
        if not fits or a.dtype == BOOL:
            self.hostile(text)
            return
        self.emit(text)
        if kind is b and b.grad and a.dtype in FLOATS:
            a.grad = True
        self.emit(f"rec('inplace', {a.name})")

    def s_mixed_cat(self):
        """cat / stack / where of tensors of different dtypes (promoted in PyTorch 2.x)."""
        a = self.pick(lambda v: v.shape not in (None, ()))
        if a is None:
            return
        b = self.pick(lambda v: v.shape == a.shape and v is not a)
        if b is None:
            return
        r = self.r
        out = promote([a, b])
        kind = r.choice(["cat", "stack", "where"])
        if kind == "cat":
            d = r.randrange(len(a.shape))
            shape = tuple(x * 2 if i == d else x for i, x in enumerate(a.shape))
            text = f"torch.cat([{a.name}, {b.name}], dim={d - len(a.shape)})"
        elif kind == "stack":
            d = r.randrange(len(a.shape) + 1)
            shape = a.shape[:d] + (2,) + a.shape[d:]
            text = f"torch.stack([{a.name}, {b.name}], {d})"
        else:
            m = self.pick(lambda v: v.dtype == BOOL and v.shape is not None and
                          broadcast(v.shape, a.shape) == a.shape)
            if m is None:
                return
            shape, text = a.shape, f"torch.where({m.name}, {a.name}, {b.name})"
        v = self.new(shape, out, (a.grad or b.grad) and out in FLOATS)
        self.emit(f"{v.name} = {text}")
        self.emit(f"rec('mixed', {v.name})")

