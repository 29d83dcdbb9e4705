"""L-BFGS (torch/optim/lbfgs.py, ported to NumPy): closure-driven, optional strong Wolfe.

The two-loop recursion and the line search are small sequential scalar work between
closure calls, so they run in NumPy on the flattened parameters (in their dtype); the
closure (forward and backward) is the user's gradjit code.
"""
from __future__ import annotations

import numpy as np

from tracer.autograd.grad_mode import enable_grad, no_grad
from tracer.creation import tensor
from tracer.optim.base import Optimizer
from tracer.optim.wolfe import strong_wolfe

__all__ = ["LBFGS"]


class LBFGS(Optimizer):
    """Limited-memory BFGS over one parameter group; step(closure) runs up to max_iter
    iterations, each evaluating closure (which must zero the grads, compute and backpropagate
    the loss, and return it)."""

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval=None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn=None):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self) -> np.ndarray:
        flat = []
        for p in self._params:
            dtype = p.detach().numpy().dtype
            flat.append(np.zeros(p.numel(), dtype) if p._grad is None
                        else np.asarray(p._grad.detach().numpy(), dtype).ravel())
        return np.concatenate(flat)

    def _flat_params(self) -> np.ndarray:
        return np.concatenate([p.detach().numpy().ravel() for p in self._params]).copy()

    def _set_flat(self, flat: np.ndarray):
        offset = 0
        for p in self._params:
            n = p.numel()
            value = tensor(flat[offset:offset + n].reshape(p.shape), dtype=p.dtype)
            with no_grad():
                p.copy_(value)
            offset += n

    def _evaluate(self, closure) -> float:
        with enable_grad():
            return float(closure())

    def step(self, closure):
        """One L-BFGS step (up to max_iter iterations); returns the first loss evaluated."""
        self._opt_called = True
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if np.abs(flat_grad).max() <= group["tolerance_grad"]:
            return orig_loss
        run = _Run(self, group, state, closure)
        run.iterate(loss, flat_grad)
        return orig_loss


class _Run:
    """The iterations of one LBFGS.step: PyTorch's loop, state carried in `state`."""

    def __init__(self, opt: LBFGS, group: dict, state: dict, closure):
        self.opt, self.group, self.state, self.closure = opt, group, state, closure

    def direction(self, flat_grad):
        st, history = self.state, self.group["history_size"]
        if st["n_iter"] == 1:
            st.update(old_dirs=[], old_stps=[], ro=[], H_diag=1.0)
            return -flat_grad
        y = flat_grad - st["prev_flat_grad"]
        s = st["d"] * st["t"]
        ys = y.dot(s)
        if ys > 1e-10:
            if len(st["old_dirs"]) == history:
                for key in ("old_dirs", "old_stps", "ro"):
                    st[key].pop(0)
            st["old_dirs"].append(y)
            st["old_stps"].append(s)
            st["ro"].append(1.0 / ys)
            st["H_diag"] = ys / y.dot(y)
        dirs, stps, ro = st["old_dirs"], st["old_stps"], st["ro"]
        al = [None] * len(dirs)
        q = -flat_grad
        for i in range(len(dirs) - 1, -1, -1):
            al[i] = stps[i].dot(q) * ro[i]
            q = q - al[i] * dirs[i]
        r = q * st["H_diag"]
        for i in range(len(dirs)):
            be_i = dirs[i].dot(r) * ro[i]
            r = r + (al[i] - be_i) * stps[i]
        return r

    def evaluate_at(self, x, t, d):
        self.opt._set_flat(x + t * d)
        loss = self.opt._evaluate(self.closure)
        flat_grad = self.opt._flat_grad()
        self.opt._set_flat(x)
        return loss, flat_grad

    def iterate(self, loss: float, flat_grad):
        g, st, opt = self.group, self.state, self.opt
        current_evals, n_iter = 1, 0
        while n_iter < g["max_iter"]:
            n_iter += 1
            st["n_iter"] += 1
            d = self.direction(flat_grad)
            st["prev_flat_grad"], st["prev_loss"] = flat_grad.copy(), loss
            prev_loss = loss
            if st["n_iter"] == 1:
                t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * g["lr"]
            else:
                t = g["lr"]
            st["d"], st["t"] = d, t
            gtd = flat_grad.dot(d)
            if gtd > -g["tolerance_change"]:
                break
            ls_evals = 0
            if g["line_search_fn"] is not None:
                x = opt._flat_params()
                loss, flat_grad, t, ls_evals = strong_wolfe(
                    self.evaluate_at, x, t, d, loss, flat_grad, gtd,
                    max_ls=g["max_eval"] - current_evals)
                st["t"] = t
                opt._set_flat(x + t * d)
                opt_cond = np.abs(flat_grad).max() <= g["tolerance_grad"]
            else:
                opt._set_flat(opt._flat_params() + t * d)
                opt_cond = False
                if n_iter != g["max_iter"]:
                    loss = opt._evaluate(self.closure)
                    flat_grad = opt._flat_grad()
                    opt_cond = np.abs(flat_grad).max() <= g["tolerance_grad"]
                    ls_evals = 1
            current_evals += ls_evals
            st["func_evals"] += ls_evals
            if (n_iter == g["max_iter"] or current_evals >= g["max_eval"] or opt_cond
                    or np.abs(d * t).max() <= g["tolerance_change"]
                    or abs(loss - prev_loss) < g["tolerance_change"]):
                break
