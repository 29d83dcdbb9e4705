"""Random short PyTorch programs as source text, for differential fuzzing of the imperative
front (tests/api/test_fuzz_programs.py, `python -m tests.fuzz_compare`).

`program(seed)` writes a program that creates leaves, then runs one body `reps` times with
fresh data (so the op memo, step capture, backward replay and in-place paths engage): a
random mix of elementwise ops with broadcasting and dtype promotion, reductions, views,
indexing, in-place updates, reads, `backward` / `autograd.grad` and a no-grad update.
tests/fuzz_run.py's `run(source, torch)` executes it against a `torch` module (PyTorch or
gradjit) and returns every recorded value and the uncaught exception that ended it. Shapes
and dtypes are tracked so most statements are valid; a few are hostile on purpose (in a try,
their exception recorded). Only the standard library and NumPy: runs under either Python."""
from __future__ import annotations

import random

import numpy as np

from tests.fuzz_more import MoreFamilies
from tests.fuzz_statements import MoreStatements
from tests.fuzz_views import ViewStatements
from tests.fuzz_types import (BINARY, BOOL, F32, F64, FLOATS, I64, MEMO_FORMS, SHAPES,
                              UNARY, Var, broadcast, promote)


class Gen(MoreStatements, ViewStatements, MoreFamilies):
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        self.seed = seed
        self.lines: list[str] = []
        self.vars: list[Var] = []
        self.count = 0
        self.data = 0
        self.memo = False

    def choice(self, options):
        """r.choice, among MEMO_FORMS only in a memo program (None if none is left)."""
        options = [o for o in options if not self.memo or o in MEMO_FORMS]
        return self.r.choice(options) if options else None

    def name(self, prefix="v"):
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, text, indent=1):
        self.lines.append("    " * indent + text)

    def hostile(self, text, indent=1, tag="error"):
        self.emit("try:", indent)
        self.emit(text, indent + 1)
        if tag == "error":      # accepted: recorded, so a refusal on one side only shows
            self.emit("rec('accepted', None)", indent + 1)
        self.emit("except Exception as e:", indent)
        self.emit(f"rec({tag!r}, e)", indent + 1)

    def new(self, shape, dtype, grad=False, **kw):
        v = Var(self.name(), shape, dtype, grad and dtype in FLOATS, **kw)
        self.vars.append(v)
        return v

    def pick(self, cond=lambda v: True):
        pool = [v for v in self.vars if cond(v)]
        return self.r.choice(pool) if pool else None

    def index_data(self, n, bound, distinct=False):
        """An int64 index of n entries in [-bound, bound), new each repetition."""
        extra = ", True" if distinct else ""
        return f"torch.tensor(I({self.data}, it, {n}, {bound}{extra}), dtype=torch.int64)"

    def fresh(self, shape, dtype, indent=1):
        """A data tensor with new values each repetition."""
        self.data += 1
        v = self.new(shape, dtype)
        self.emit(f"{v.name} = torch.tensor(D({self.data}, it, {shape!r}, '{dtype}'), "
                  f"dtype=torch.{dtype})", indent)
        return v

    # ---- the statement kinds
    def s_data(self):
        self.fresh(self.r.choice(SHAPES), self.r.choice([F32, F32, F64, I64, BOOL]))

    def s_unary(self):
        a = self.pick(lambda v: v.dtype != BOOL)
        if a is None:
            return
        form = self.choice(UNARY)
        dtype = a.dtype if a.dtype in FLOATS or form in ("{}.abs()", "-{}", "{}.pow(2)",
                                                          "{} * {}", "{}.relu()") else F32
        v = self.new(a.shape, dtype, a.grad)
        self.emit(f"{v.name} = {form.format(a.name, a.name)}")

    def s_binary(self):
        a = self.pick(lambda v: v.dtype != BOOL)
        if a is None:
            return
        if self.r.random() < 0.25:
            b = self.r.choice(["2", "0.5", "-1.5"])
            out = promote([a, "float" if "." in b else "int"])
            v = self.new(a.shape, out, a.grad)
            form = self.r.choice(["{} * {}", "{} + {}", "{} - {}"])
            self.emit(f"{v.name} = {form.format(a.name, b)}")
            return
        b = self.pick(lambda v: v.dtype != BOOL and broadcast(a.shape, v.shape) != "fail") or a
        form = self.choice(BINARY)
        if a.dtype != b.dtype and "maximum" in form:
            form = "{} + {}"
        out = promote([a, b])
        if form.startswith("{} /"):
            out = out if out in FLOATS else F32
        v = self.new(a.shape if b is a else broadcast(a.shape, b.shape), out, a.grad or b.grad)
        self.emit(f"{v.name} = {form.format(a.name, b.name)}")

    def s_compare_where(self):
        a = self.pick(lambda v: v.dtype in FLOATS and v.shape is not None)
        if a is None:
            return
        m = self.new(a.shape, BOOL)
        self.emit(f"{m.name} = {a.name} > {self.r.choice(['0', '0.25', '-0.5'])}")
        b = self.pick(lambda v: v.dtype == a.dtype and broadcast(a.shape, v.shape) == a.shape)
        v = self.new(a.shape, a.dtype, a.grad or b.grad)
        self.emit(f"{v.name} = torch.where({m.name}, {a.name}, {b.name})")

    def s_reduce(self):
        a = self.pick(lambda v: v.dtype != BOOL or self.r.random() < 0.3)
        if a is None:
            return
        nd = len(a.shape) if a.shape is not None else 1
        out = I64 if a.dtype in (I64, BOOL) else a.dtype
        kind = self.r.random() * (0.75 if self.memo else 1)
        if kind < 0.35 or a.shape is None or nd == 0:
            meth = self.r.choice(["sum", "sum", "mean"]) if a.dtype in FLOATS else "sum"
            v = self.new((), out, a.grad)
            self.emit(f"{v.name} = {a.name}.{meth}()")
            return
        d = self.r.randrange(nd)
        keep = self.r.random() < 0.3
        shape = tuple(1 if i == d else s for i, s in enumerate(a.shape)) if keep else \
            a.shape[:d] + a.shape[d + 1:]
        if kind < 0.75 or a.shape[d] == 0:
            meth = "mean" if a.dtype in FLOATS and self.r.random() < 0.3 else "sum"
            v = self.new(shape, out, a.grad)
            self.emit(f"{v.name} = {a.name}.{meth}(dim={d}, keepdim={keep})")
        else:
            v = self.new(shape, a.dtype if a.dtype != BOOL else BOOL, a.grad)
            meth = self.r.choice(["amax", "max"])
            suffix = ".values" if meth == "max" else ""
            self.emit(f"{v.name} = {a.name}.{meth}(dim={d}, keepdim={keep}){suffix}")

    def s_view(self):
        a = self.pick(lambda v: v.shape is not None)
        if a is None:
            return
        r, nd, s = self.r, len(a.shape), a.shape
        choices = ["unsqueeze", "reshape", "clone", "detach", "flatten"]
        if nd == 2:
            choices += ["t", "t", "view"]
        if nd >= 1 and s[0] > 0:
            choices += ["int", "slice", "slice", "index"]
        if 1 in s:
            choices += ["squeeze", "expand"]
        kind = self.choice(choices)
        if kind is None:
            return
        contiguous, grad = True, a.grad
        if kind == "unsqueeze":
            d = r.randrange(nd + 1)
            shape, text = s[:d] + (1,) + s[d:], f"{a.name}.unsqueeze({d})"
            contiguous = a.contiguous
        elif kind in ("reshape", "flatten"):
            n = int(np.prod(s)) if s else 1
            shape = (n,)
            text = f"{a.name}.reshape(-1)" if kind == "reshape" else f"{a.name}.flatten()"
        elif kind == "clone":
            shape, text = s, f"{a.name}.clone()"
        elif kind == "detach":
            shape, text, grad = s, f"{a.name}.detach()", False
            contiguous = a.contiguous
        elif kind == "t":
            shape, text, contiguous = (s[1], s[0]), f"{a.name}.t()", 1 in s
        elif kind == "view":
            shape, text = (s[0] * s[1],), f"{a.name}.view({s[0] * s[1]})"
            if not a.contiguous:   # PyTorch refuses; gradjit reshapes (docs/compat.md)
                return
        elif kind == "int":
            i = r.randrange(-s[0], s[0])
            shape, text = s[1:], f"{a.name}[{i}]"
        elif kind == "slice":
            lo = r.randrange(0, s[0])
            hi = r.randrange(lo, s[0] + 1)
            step = r.choice([1, 1, 2])
            shape = (len(range(lo, hi, step)),) + s[1:]
            text = f"{a.name}[{lo}:{hi}:{step}]" if step != 1 else f"{a.name}[{lo}:{hi}]"
            if nd >= 2 and r.random() < 0.4:
                j = r.randrange(s[1]) if s[1] else 0
                if s[1]:
                    shape, text = shape[:1] + s[2:], f"{a.name}[{lo}:{hi}, {j}]"
            contiguous = False
        elif kind == "index":
            self.data += 1
            n = r.randrange(0, 5)
            idx = self.new((n,), I64)
            self.emit(f"{idx.name} = {self.index_data(n, s[0])}")
            shape, text = (n,) + s[1:], f"{a.name}[{idx.name}]"
        elif kind == "squeeze":
            d = s.index(1)
            shape, text = s[:d] + s[d + 1:], f"{a.name}.squeeze({d})"
        else:  # expand
            d = s.index(1)
            shape = s[:d] + (3,) + s[d + 1:]
            text, contiguous = f"{a.name}.expand({', '.join(map(str, shape))})", False
        expanded = kind == "expand" or (a.expanded and kind != "clone")
        # a view of a leaf that requires grad refuses in-place ops as the leaf does
        v = self.new(shape, a.dtype, grad, contiguous=contiguous, expanded=expanded,
                     leaf=a.leaf and kind not in ("clone", "detach", "index"),
                     storage=a.storage if kind not in ("clone", "index") else "")
        self.emit(f"{v.name} = {text}")

    def s_mask_index(self):
        a = self.pick(lambda v: v.shape not in (None, ()) and v.dtype in FLOATS)
        if a is None:
            return
        v = self.new(None, a.dtype, a.grad)
        self.emit(f"{v.name} = {a.name}[{a.name} > 0]")

    def s_inplace(self):
        # an intermediate (or a data tensor): never a leaf that requires grad here
        a = self.pick(lambda v: not v.leaf and v.shape is not None and v.contiguous)
        if a is None:
            return
        r = self.r
        kinds = ["add_", "mul_", "iadd", "zero_", "masked_fill_", "setitem", "copy_", "clamp_"]
        kind = self.choice(kinds)
        if a.dtype == BOOL and kind not in ("zero_", "copy_"):
            return
        # (an operand sharing a's memory: PyTorch's overlap error, listed in compat.md)
        b = self.pick(lambda v: v.dtype != BOOL and broadcast(a.shape, v.shape) == a.shape
                      and v.storage != a.storage)
        if kind == "add_" and b is not None:
            bad = promote([a, b]) != a.dtype and a.dtype not in FLOATS
            text = f"{a.name}.add_({b.name})"
        elif kind == "iadd" and b is not None:
            bad = promote([a, b]) != a.dtype and a.dtype not in FLOATS
            text = f"{a.name} += {b.name}"
        elif kind == "copy_" and b is not None:
            bad, text = False, f"{a.name}.copy_({b.name})"
        elif kind == "mul_":
            bad, text = False, f"{a.name}.mul_({r.choice(['2', '3', '-1'])})"
        elif kind == "zero_":
            bad, text = False, f"{a.name}.zero_()"
        elif kind == "clamp_":
            bad, text = False, f"{a.name}.clamp_({r.choice(['-1, 1', 'min=0', 'max=0.5'])})"
        elif kind == "masked_fill_" and a.dtype in FLOATS:
            bad, text = False, f"{a.name}.masked_fill_({a.name} < 0, 0.5)"
        elif kind == "setitem" and a.shape and a.shape[0] > 0:
            i = r.randrange(a.shape[0])
            value = r.choice(["1", "0.25"] if a.dtype in FLOATS else ["1", "2"])
            bad, text = False, f"{a.name}[{i}] = {value}"
        else:
            return
        if b is not None and kind in ("add_", "iadd", "copy_") and b.grad and a.dtype in FLOATS:
            a.grad = True
        if bad:
            self.hostile(text)
        else:
            self.emit(text)

    def s_read(self):
        a = self.pick(lambda v: True)
        if a is None:
            return
        how = self.r.choice(["value", "value", "tolist", "numpy", "item", "shape", "dtype"])
        if how == "item" and (a.shape is None or int(np.prod(a.shape)) != 1):
            self.hostile(f"rec('item', {a.name}.item())")
        elif how == "numpy" and a.grad and self.r.random() < 0.3:
            self.hostile(f"rec('np', {a.name}.numpy())")
        else:
            expr = {"value": a.name, "tolist": f"{a.name}.tolist()", "numpy":
                    f"{a.name}.detach().numpy()", "item": f"{a.name}.item()",
                    "shape": f"tuple({a.name}.shape)", "dtype": f"str({a.name}.dtype)"}[how]
            self.emit(f"rec({how!r}, {expr})")

    def s_requires_grad(self):
        a = self.pick(lambda v: v.dtype in FLOATS and not v.grad and v.shape is not None
                      and v.name.startswith("v"))
        if a is None:
            return
        v = self.new(a.shape, a.dtype, True, leaf=True, storage=a.storage)
        self.emit(f"{v.name} = {a.name}.detach().requires_grad_()")
        self.leaves.append(v)

    def s_hostile(self):
        r = self.r
        kind = r.choice(["leaf_inplace", "int_grad", "shape", "mean_int"])
        if kind == "leaf_inplace" and self.leaves:
            self.hostile(f"{r.choice(self.leaves).name}.mul_(2)")
        elif kind == "int_grad":
            self.hostile(f"{self.name('bad')} = torch.tensor([1, 2]).requires_grad_()")
        elif kind == "shape":
            a = self.pick(lambda v: v.shape is not None)
            b = self.pick(lambda v: broadcast(a.shape, v.shape) == "fail")
            if b is not None:
                self.hostile(f"{self.name('bad')} = {a.name} + {b.name}")
        else:
            a = self.pick(lambda v: v.dtype == I64)
            if a is not None:
                self.hostile(f"{self.name('bad')} = {a.name}.mean()")

    def s_nograd(self):
        a = self.pick(lambda v: v.dtype in FLOATS and v.grad and v.shape is not None)
        if a is None:
            return
        self.emit("with torch.no_grad():")
        v = self.new(a.shape, a.dtype)
        self.emit(f"{v.name} = {a.name} * 2 + 1", 2)

    STATEMENTS = [("s_data", 1), ("s_unary", 4), ("s_binary", 5), ("s_compare_where", 1),
                  ("s_reduce", 2), ("s_view", 4), ("s_mask_index", 1), ("s_inplace", 3),
                  ("s_read", 2), ("s_requires_grad", 1), ("s_hostile", 0.4), ("s_nograd", 0.5),
                  ("s_matmul", 1.5), ("s_softmax_cat", 1), ("s_convert", 1),
                  ("s_index_write", 1), ("s_strided_view", 3), ("s_promote", 1.5),
                  ("s_inplace_dtype", 1), ("s_mixed_cat", 1), ("s_reduce_dims", 2),
                  ("s_reduce_all", 0.7), ("s_index_more", 2), ("s_gather_scatter", 1),
                  ("s_where_scalar", 0.7), ("s_autograd_corner", 1.5)]

    def manual_step(self):
        """A loop without autograd (pytorch/tutorials' tensor examples): one read per step,
        then a plain in-place update: the shape step capture follows."""
        floats = [v for v in self.vars if v.dtype in FLOATS and v.shape is not None]
        loss = " + ".join(f"{v.name}.sum()" for v in self.r.sample(floats, min(2, len(floats))))
        self.emit(f"loss = {loss}")
        self.emit("rec('loss', loss.item())")
        for p in self.params:
            self.emit(f"{p.name} -= 0.01 * loss" if self.r.random() < 0.7 else
                      f"{p.name}.mul_(0.99)")

    def backward(self):
        r = self.r
        grads = [v for v in self.vars if v.grad and v.dtype in FLOATS and v.shape is not None]
        if not grads:
            return
        outs = r.sample(grads, min(len(grads), r.randint(1, 2)))
        terms = [f"{v.name}.sum()" if r.random() < 0.7 else f"({v.name} * {v.name}).mean()"
                 for v in outs]
        self.emit(f"loss = {' + '.join(terms)}")
        self.emit("rec('loss', loss)")
        kind = r.choice(["backward", "backward", "retain", "twice", "grad", "gradient"])
        if kind == "backward":
            self.emit("loss.backward()")
        elif kind == "retain":
            self.emit("loss.backward(retain_graph=True)")
            self.emit("loss.backward()")
        elif kind == "twice":
            self.emit("loss.backward()")
            for leaf in self.leaves:
                self.emit(f"rec('grad', {leaf.name}.grad)")
            # tag "second backward": gradjit may accept it where PyTorch refuses (max(dim)
            # saves no tensor in gradjit: docs/compat.md), so fuzz_compare lets it pass
            self.hostile("loss.backward()", tag="second backward")
            # a refused second backward: PyTorch has already accumulated into the leaves
            # it reached first, gradjit into none (docs/compat.md): start them afresh
            for leaf in self.leaves:
                self.emit(f"{leaf.name}.grad = None")
        elif kind == "grad":
            names = ", ".join(v.name for v in self.leaves)
            unused = r.random() < 0.5
            self.emit(f"gs = torch.autograd.grad(loss, [{names}], allow_unused={unused})")
            self.emit("rec('grads', list(gs))")
            return
        else:
            v = outs[0]
            self.emit(f"{v.name}.backward(gradient=torch.full_like({v.name}, 0.5))")
        for leaf in self.leaves:
            self.emit(f"rec('grad', {leaf.name}.grad)")
        for v in self.retained if kind != "twice" else ():   # (compat.md: a refused second
            self.emit(f"rec('retained grad', {v.name}.grad)")   # backward accumulates)

    def update(self):
        r = self.r
        self.emit("with torch.no_grad():")
        self.emit("pass", 2)
        for p in self.params:
            style = r.choice(["sub", "add_", "none"])
            guard = f"if {p.name}.grad is not None: "
            if style == "sub":
                self.emit(f"{guard}{p.name} -= 0.1 * {p.name}.grad", 2)
            elif style == "add_":
                self.emit(f"{guard}{p.name}.add_({p.name}.grad, alpha=-0.05)", 2)
        for p in self.params:
            style = r.choice(["zero_", "none", "keep"])
            if style == "zero_":
                self.emit(f"if {p.name}.grad is not None: {p.name}.grad.zero_()")
            elif style == "none":
                self.emit(f"{p.name}.grad = None")

    def program(self) -> str:
        r = self.r
        reps = r.choice([1, 3, 12, 12])
        manual = r.random() < 0.3
        self.emit(f"# fuzz program {self.seed}", 0)
        self.params = []
        for _ in range(r.randint(1, 3)):
            shape = r.choice(SHAPES[:7])
            dtype = r.choice([F32, F32, F64])
            p = self.new(shape, dtype, not manual, leaf=not manual)
            self.data += 1
            self.emit(f"{p.name} = torch.tensor(D({self.data}, -1, {shape!r}, '{dtype}'), "
                      f"dtype=torch.{dtype}, requires_grad={not manual})", 0)
            self.params.append(p)
        self.emit(f"for it in range({reps}):", 0)
        loop_line = len(self.lines) - 1
        self.leaves = list(self.params)
        self.retained = []         # non-leaves whose .grad retain_grad() keeps
        base = list(self.vars)
        for _ in range(r.randint(0, 2)):
            self.s_data()
        kinds, weights = zip(*self.STATEMENTS)
        self.memo = manual and r.random() < 0.6
        if self.memo:     # enough steps for a tape to form and be followed
            self.lines[loop_line] = "for it in range(12):"
        if manual:    # mostly no reads, no hostile statements, no new leaves inside a step
            rare = ("s_read", "s_hostile", "s_requires_grad")
            weights = [w * (k not in rare or r.random() < 0.3) for k, w in self.STATEMENTS]
        if self.memo:
            off = ("s_compare_where", "s_mask_index", "s_nograd", "s_index_write", "s_convert",
                   "s_promote", "s_inplace_dtype", "s_mixed_cat", "s_reduce_dims",
                   "s_reduce_all", "s_index_more", "s_gather_scatter", "s_where_scalar",
                   "s_autograd_corner")
            weights = [w * (k not in off) for k, w in zip(kinds, weights)]
        for _ in range(r.randint(4, 14)):
            getattr(self, r.choices(kinds, weights)[0])()
        if manual:
            self.manual_step()
        else:
            self.backward()
            self.update()
        if r.random() < 0.5 and not self.memo:     # (a second read would end a tape)
            last = [v for v in self.vars if v not in base]
            if last:
                self.emit(f"rec('last', {r.choice(last).name})")
        for p in self.params:
            self.emit(f"rec('param', {p.name})", 0)
        return "\n".join(self.lines) + "\n"


def program(seed: int) -> str:
    return Gen(seed).program()
