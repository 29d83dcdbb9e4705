"""Statement families of tests/fuzz_programs.py's generator (a mixin of Gen), round 2:
reductions with dims (negative, tuples, keepdim) and over empty tensors; indexing (masks,
index tensors, out-of-range indices, gather, scatter_add, index_select, where with
scalars); autograd corner cases (backward of a non-scalar, .grad of a non-leaf,
retain_grad, writes through detach(), saved tensors changed in place, refused .grad
assignments and requires_grad changes)."""
from __future__ import annotations

import math

from tests.fuzz_types import BOOL, F32, FLOATS, I64

REDUCE = {   # name: (takes a tuple of dims, result dtype rule, differentiable)
    "sum": (True, "int-or-same", True), "mean": (True, "float-only", True),
    "prod": (False, "int-or-same", True), "amax": (True, "same", True),
    "amin": (True, "same", True), "logsumexp": (True, "float-only", True),
    "std": (True, "float-only", True), "var": (True, "float-only", True),
    "argmax": (False, "long", False), "any": (False, "bool", False),
    "all": (False, "bool", False), "max": (False, "values", True),
    "min": (False, "values", True)}


class MoreFamilies:
    def attempt(self, lines, indent=1):
        """lines in a try; an exception is recorded (PyTorch's class is compared)."""
        self.emit("try:", indent)
        for line in lines:
            self.emit(line, indent + 1)
        self.emit("except Exception as e:", indent)
        self.emit("rec('error', e)", indent + 1)

    # ---- reductions
    def s_reduce_dims(self):
        a = self.pick(lambda v: v.shape is not None and len(v.shape) >= 1)
        if a is None:
            return
        r, s, nd = self.r, a.shape, len(a.shape)
        name = r.choice(sorted(REDUCE))
        tuples, rule, diff = REDUCE[name]
        ndims = r.randint(1, nd) if tuples and r.random() < 0.4 else 1
        dims = sorted(r.sample(range(nd), ndims))
        spelled = [d - nd if r.random() < 0.5 else d for d in dims]
        keep = r.random() < 0.4
        dim = f"({', '.join(map(str, spelled))},)" if ndims > 1 else str(spelled[0])
        shape = tuple(1 if i in dims else x for i, x in enumerate(s)) if keep else \
            tuple(x for i, x in enumerate(s) if i not in dims)
        dtype = {"int-or-same": I64 if a.dtype in (I64, BOOL) else a.dtype,
                 "float-only": a.dtype, "same": a.dtype, "long": I64, "bool": BOOL,
                 "values": a.dtype}[rule]
        suffix = ".values" if rule == "values" else ""
        text = f"{a.name}.{name}(dim={dim}, keepdim={keep}){suffix}"
        empty = any(s[d] == 0 for d in dims)
        risky = (rule == "float-only" and a.dtype not in FLOATS) or \
            (name in ("amax", "amin", "argmax", "max", "min") and empty) or \
            (a.dtype == BOOL and name in ("prod", "logsumexp", "amax", "amin", "max", "min",
                                          "argmax"))
        if risky:
            self.attempt([f"rec('reduce', {text})"])
            return
        v = self.new(shape, dtype, a.grad and diff and dtype in FLOATS)
        self.emit(f"{v.name} = {text}")
        if name in ("std", "var") and math.prod(s[d] for d in dims) <= 1:
            return                # (a NaN from one element, with a warning, in both)
        self.emit(f"rec('reduce', {v.name})")

    def s_reduce_all(self):
        """Whole-tensor reductions, empty tensors included (PyTorch's values and errors)."""
        a = self.pick(lambda v: v.shape is not None)
        if a is None:
            return
        name = self.r.choice(["sum", "mean", "prod", "amax", "max", "argmax", "std", "any",
                              "logsumexp", "count_nonzero", "norm"])
        args = "(dim=0)" if name == "logsumexp" and a.shape else "()"
        if name == "logsumexp" and not a.shape:
            args = "(0)"
        self.attempt([f"rec('reduce_all', {a.name}.{name}{args})"])

    # ---- indexing
    def s_index_more(self):
        a = self.pick(lambda v: v.shape not in (None, ()))
        if a is None:
            return
        r, s, nd = self.r, a.shape, len(a.shape)
        kind = r.choice(["mask", "mask_rows", "bad_mask", "out_of_range", "columns", "pair",
                         "ellipsis", "none", "float_index", "list", "zero_d", "select_index"])
        if kind in ("mask", "mask_rows", "bad_mask"):
            shape = {"mask": s, "mask_rows": s[:1], "bad_mask": (s[0] + 1,)}[kind]
            m = self.fresh(shape, BOOL)
            text = f"{a.name}[{m.name}]"
            if kind == "bad_mask":
                self.attempt([f"rec('index', {text})"])
                return
            v = self.new(None, a.dtype, a.grad)
        elif kind in ("out_of_range", "float_index", "list"):
            idx = {"out_of_range": f"torch.tensor([0, {s[0]}])", "float_index": "1.5",
                   "list": f"[{-s[0]}, {s[0] - 1}]" if s[0] else "[0]"}[kind]
            text = f"{a.name}[{idx}]"
            if kind != "list" or not s[0]:
                self.attempt([f"rec('index', {text})"])
                return
            v = self.new((2,) + s[1:], a.dtype, a.grad)
        elif kind in ("columns", "pair"):
            if nd < 2 or s[0] == 0 or s[1] == 0:
                return
            self.data += 1
            n = r.randrange(1, 4)
            idx = self.new((n,), I64)
            self.emit(f"{idx.name} = {self.index_data(n, s[1])}")
            if kind == "columns":
                text, shape = f"{a.name}[:, {idx.name}]", (s[0], n) + s[2:]
            else:
                text, shape = f"{a.name}[{idx.name} % {s[0]}, {idx.name}]", (n,) + s[2:]
            v = self.new(shape, a.dtype, a.grad)
        elif kind == "ellipsis":
            i = r.randrange(-s[-1], s[-1]) if s[-1] else None
            if i is None:
                return
            v = self.new(s[:-1], a.dtype, a.grad, contiguous=False, leaf=a.leaf,
                         storage=a.storage)
            text = f"{a.name}[..., {i}]"
        elif kind == "none":
            v = self.new((1,) + s[:1] + (1,) + s[1:], a.dtype, a.grad, leaf=a.leaf,
                         contiguous=a.contiguous, storage=a.storage, expanded=a.expanded)
            text = f"{a.name}[None, :, None]"
        elif kind == "zero_d":
            if s[0] == 0:
                return
            i = r.randrange(-s[0], s[0])
            v = self.new(s[1:], a.dtype, a.grad)
            text = f"{a.name}[torch.tensor({i})]"
        else:
            if s[0] == 0:
                return
            self.data += 1
            n = r.randrange(0, 4)
            idx = self.new((n,), I64)
            self.emit(f"{idx.name} = {self.index_data(n, s[0])} % {s[0]}")
            d = r.choice([0, -nd])
            v = self.new((n,) + s[1:], a.dtype, a.grad)
            text = f"torch.index_select({a.name}, {d}, {idx.name})"
        self.emit(f"{v.name} = {text}")
        self.emit(f"rec('index', {v.name})")

    def s_gather_scatter(self):
        a = self.pick(lambda v: v.shape not in (None, ()) and 0 not in v.shape)
        if a is None:
            return
        r, s, nd = self.r, a.shape, len(a.shape)
        d = r.randrange(nd)
        ishape = tuple(r.randint(1, x) for x in s)
        self.data += 1
        idx = self.new(ishape, I64)
        n = math.prod(ishape)
        wrap = f" % {s[d]}" if r.random() < 0.8 else ""      # else maybe out of range
        self.emit(f"{idx.name} = torch.tensor(I({self.data}, it, {n}, {s[d]}), "
                  f"dtype=torch.int64).reshape({ishape!r}){wrap}")
        kind = r.choice(["gather", "take_along_dim", "scatter_add"])
        spelled = d - nd if r.random() < 0.4 else d
        if kind == "gather":
            text, shape = f"torch.gather({a.name}, {spelled}, {idx.name})", ishape
        elif kind == "take_along_dim":
            if ishape != tuple(x if i == d else s[i] for i, x in enumerate(ishape)):
                return            # (take_along_dim broadcasts the other dims)
            text, shape = f"torch.take_along_dim({a.name}, {idx.name}, dim={spelled})", ishape
        else:
            src = self.pick(lambda v: v.shape == ishape and v.dtype == a.dtype)
            if src is None:
                return
            text, shape = f"{a.name}.scatter_add({spelled}, {idx.name}, {src.name})", s
        grad = a.grad or (kind == "scatter_add" and src.grad)
        if not wrap:
            self.attempt([f"rec('gather', {text})"])
            return
        v = self.new(shape, a.dtype, grad)
        self.emit(f"{v.name} = {text}")
        self.emit(f"rec('gather', {v.name})")

    def s_where_scalar(self):
        m = self.pick(lambda v: v.dtype == BOOL and v.shape is not None)
        if m is None:
            return
        r = self.r
        a = self.pick(lambda v: v.shape == m.shape and v.dtype != BOOL)
        x = r.choice(["1", "0.5"] + ([a.name] if a is not None else []))
        y = r.choice(["0", "-1.5"])
        out = a.dtype if x == getattr(a, "name", None) and a.dtype in FLOATS else \
            (F32 if "." in x + y else I64)
        v = self.new(m.shape, out, x == getattr(a, "name", None) and a.grad and out in FLOATS)
        self.emit(f"{v.name} = torch.where({m.name}, {x}, {y})")
        self.emit(f"rec('where', {v.name})")

    # ---- autograd corner cases
    def s_autograd_corner(self):
        r = self.r
        kind = r.choice(["nonscalar", "nonleaf_grad", "retain_grad", "detach_write",
                         "saved_changed", "no_grad_fn", "unused", "bad_grad", "flag",
                         "bad_gradient"])
        g = self.pick(lambda v: v.grad and v.shape is not None and not v.leaf)
        leaves = ", ".join(v.name for v in self.leaves)
        if kind == "nonscalar" and g is not None and g.shape != ():
            self.attempt([f"{g.name}.backward()", "rec('accepted', None)"])
        elif kind == "nonleaf_grad" and g is not None:
            self.emit(f"rec('nonleaf .grad', {g.name}.grad)")
            self.emit(f"rec('is_leaf', ({g.name}.is_leaf, {g.name}.requires_grad))")
        elif kind == "retain_grad" and g is not None:
            self.emit(f"{g.name}.retain_grad()")
            self.retained.append(g)
        elif kind == "detach_write":
            a = self.pick(lambda v: v.dtype in FLOATS and v.shape is not None and
                          not v.expanded)
            if a is None:
                return
            d = self.new(a.shape, a.dtype)
            self.emit(f"{d.name} = {a.name}.detach()")
            self.emit(f"{d.name}.mul_(2)")            # shows in a (and bumps its version)
            self.emit(f"rec('detach_write', {a.name})")
        elif kind == "saved_changed" and self.leaves:
            leaf = r.choice(self.leaves)
            f = r.choice(["torch.exp({})", "torch.sigmoid({})", "torch.tanh({})",
                          "{}.relu()", "{} * 2", "{}.pow(2)"])
            v = self.new(leaf.shape, leaf.dtype, True)
            self.emit(f"{v.name} = {f.format(leaf.name)}")
            self.emit(f"{v.name}.add_(1)")
            self.attempt([f"gs = torch.autograd.grad({v.name}.sum(), [{leaves}], "
                          "allow_unused=True, retain_graph=True)", "rec('grads', list(gs))"])
        elif kind == "no_grad_fn":
            a = self.pick(lambda v: not v.grad and v.dtype in FLOATS and v.shape == ())
            if a is not None:
                self.attempt([f"{a.name}.backward()", "rec('accepted', None)"])
        elif kind == "unused" and len(self.leaves) >= 1 and g is not None:
            self.attempt([f"gs = torch.autograd.grad({g.name}.sum(), [{leaves}], "
                          "retain_graph=True)", "rec('grads', list(gs))"])
        elif kind == "bad_grad" and self.leaves:
            leaf = r.choice(self.leaves)
            wrong = r.choice([f"torch.zeros({math.prod(leaf.shape) + 1})",
                              f"torch.zeros({list(leaf.shape)}, dtype=torch.int64)"])
            self.attempt([f"{leaf.name}.grad = {wrong}", "rec('accepted', None)"])
        elif kind == "flag" and g is not None:
            self.attempt([f"{g.name}.requires_grad = False", "rec('accepted', None)"])
        elif kind == "bad_gradient" and g is not None:
            self.attempt([f"{g.name}.backward(gradient=torch.ones({math.prod(g.shape) + 1}), "
                          "retain_graph=True)", "rec('accepted', None)"])
