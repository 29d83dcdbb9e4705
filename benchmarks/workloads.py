"""The benchmark workloads: each builds the same value-and-gradient in every system.

Systems: gradjit (`gj.jit(gj.value_and_grad(f))`), NumPy (gradient by hand, where one is
short enough to write), JAX `jit(value_and_grad)` and PyTorch eager when installed.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import System, Workload, optional_import
from benchmarks.objectives import gmm_objective, lower_index, lstm_loss

jax = optional_import("jax")
torch = optional_import("torch")
if jax is not None:
    import jax.numpy as jnp
    import jax.scipy.special
    jax.config.update("jax_enable_x64", True)


def _flat(result):
    """(value, grads) -> [value, *grads] as NumPy arrays."""
    value, grads = result
    grads = grads if isinstance(grads, (tuple, list)) else (grads,)
    return [np.asarray(value)] + [np.asarray(g) for g in grads]


def _gradjit_system(gj, f, args, argnums):
    vg = gj.jit(gj.value_and_grad(f, argnums=argnums))

    def cold():
        fresh = gj.jit(gj.value_and_grad(lambda *a: f(*a), argnums=argnums))
        _clear_gradjit_caches()
        from runtime import config
        saved = config.value("GRADJIT_DISK_CACHE")
        config.set_value("GRADJIT_DISK_CACHE", "0")   # a true cold compile, not a disk hit
        try:
            t0 = time.perf_counter()
            _flat(fresh(*args))
            return time.perf_counter() - t0
        finally:
            config.set_value("GRADJIT_DISK_CACHE", saved)
    return System("gradjit", lambda: vg(*args), _flat, cold)


def _clear_gradjit_caches():
    """Forgets everything compiled: the caches and the JIT itself (a new engine, since the
    engine shares code by symbol and would not compile a kernel it has seen again)."""
    import runtime
    from runtime.engine import fresh_execution_engine
    from tracer import pipeline
    runtime.clear_cache()
    pipeline.clear_cache()
    fresh_execution_engine()


def _jax_system(f_jax, args, argnums):
    if jax is None:
        return None
    jargs = [jnp.asarray(a) for a in args]
    vg = jax.jit(jax.value_and_grad(f_jax, argnums=argnums))

    def run():
        out = vg(*jargs)
        jax.block_until_ready(out)
        return out

    def cold():
        fresh = jax.jit(jax.value_and_grad(lambda *a: f_jax(*a), argnums=argnums))
        t0 = time.perf_counter()
        jax.block_until_ready(fresh(*jargs))
        return time.perf_counter() - t0
    return System("jax", run, _flat, cold)


def _torch_system(f_torch, args, argnums):
    if torch is None:
        return None
    targs = [torch.tensor(a) for a in args]

    def run():
        leaves = [t.detach().requires_grad_(i in argnums) for i, t in enumerate(targs)]
        value = f_torch(*leaves)
        grads = torch.autograd.grad(value, [leaves[i] for i in argnums])
        return value.detach(), grads

    def to_numpy(result):
        value, grads = result
        return [value.numpy()] + [g.numpy() for g in grads]
    return System("torch", run, to_numpy)


def _systems(*candidates):
    return [s for s in candidates if s is not None]


# ---- chain: memory-bound elementwise gradient ------------------------------------------

def chain(gj, n: int) -> Workload:
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    args, argnums = (x, w, b), (0, 1, 2)

    def f(x, w, b, m=gj):
        return (m.tanh(x * w + b) ** 2 * 0.5 + m.exp(-x * x)).sum()

    def numpy_vg(x, w, b):
        t = np.tanh(x * w + b)
        e = np.exp(-x * x)
        du = t * (1 - t * t)
        return float((0.5 * t * t + e).sum(dtype=np.float64)), (du * w - 2 * x * e, du * x, du)

    systems = _systems(
        _gradjit_system(gj, f, args, argnums),
        System("numpy", lambda: numpy_vg(*args), _flat),
        _jax_system(lambda x, w, b: f(x, w, b, jnp), args, argnums) if jax else None,
        _torch_system(lambda x, w, b: f(x, w, b, torch), args, argnums) if torch else None)
    ideal = 24 * n / streaming_bandwidth()       # read x, w, b once; write three gradients
    return Workload(f"chain {n:.0e}", "sum(tanh(x*w+b)**2*0.5 + exp(-x*x)), f32, d/dx,w,b",
                    systems, rtol=2e-3, extra={"ideal_seconds": ideal})


def streaming_bandwidth() -> float:
    """Bytes per second of a plain NumPy copy of 64 MiB (read + write), the best of 7.

    The best, not the median: other processes only ever slow a copy down, and on a loaded
    2-core machine the median of 5 put chain 1e7's ideal anywhere from 17 to 37 ms."""
    src = np.ones(16 << 20, np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * src.nbytes / min(times)


# ---- mlp: GEMM-bound -------------------------------------------------------------------

def mlp(gj, batch: int = 256) -> Workload:
    rng = np.random.default_rng(1)
    w1 = (rng.standard_normal((784, 256)) * 0.05).astype(np.float32)
    b1 = np.zeros(256, np.float32)
    w2 = (rng.standard_normal((256, 10)) * 0.05).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    onehot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    args, argnums = (w1, b1, w2, b2, x, onehot), (0, 1, 2, 3)

    def f(w1, b1, w2, b2, x, onehot, relu=None, log_softmax=None):
        h = relu(x @ w1 + b1)
        logits = h @ w2 + b2
        return -(onehot * log_softmax(logits)).sum() / x.shape[0]

    def numpy_vg(w1, b1, w2, b2, x, onehot):
        pre = x @ w1 + b1
        h = np.maximum(pre, 0)
        logits = h @ w2 + b2
        z = logits - logits.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        loss = -(onehot * logp).sum() / len(x)
        dlogits = (np.exp(logp) - onehot) / len(x)
        dh = (dlogits @ w2.T) * (pre > 0)
        return loss, (x.T @ dh, dh.sum(0), h.T @ dlogits, dlogits.sum(0))

    gj_f = lambda *a: f(*a, relu=gj.relu, log_softmax=lambda z: gj.log_softmax(z, axis=1))
    systems = _systems(
        _gradjit_system(gj, gj_f, args, argnums),
        System("numpy", lambda: numpy_vg(*args), _flat),
        _jax_system(lambda *a: f(*a, relu=jax.nn.relu,
                                 log_softmax=lambda z: jax.nn.log_softmax(z, axis=1)),
                    args, argnums) if jax else None,
        _torch_system(lambda *a: f(*a, relu=torch.relu,
                                   log_softmax=lambda z: torch.log_softmax(z, dim=1)),
                      args, argnums) if torch else None)
    flops = 2 * batch * (784 * 256 * 2 + 256 * 10 * 3)
    return Workload(f"mlp b={batch}", "784-256-10 relu + softmax CE, f32, d/d(params)",
                    systems, rtol=1e-3, extra={"flops": flops})


# ---- tiny: per-call overhead ----------------------------------------------------------

def tiny(gj) -> Workload:
    x = np.float32(1.5)
    f = lambda x, m=gj: 3 * x ** 2
    systems = _systems(
        _gradjit_system(gj, f, (x,), (0,)),
        System("numpy", lambda: (3 * x * x, (6 * x,)), _flat),
        _jax_system(lambda x: f(x, jnp), (x,), (0,)) if jax else None,
        _torch_system(lambda x: f(x, torch), (x,), (0,)) if torch else None)
    return Workload("tiny", "3*x**2 on a 0-d f32: per-call overhead", systems)


# ---- gmm: ADBench's Gaussian mixture objective -----------------------------------------

def gmm(gj, quick: bool = False) -> list[Workload]:
    made = []
    for d in ((10,) if quick else (10, 64)):
        k, n = 25, 1000
        rng = np.random.default_rng(2)
        alphas = rng.standard_normal(k)
        means = rng.standard_normal((k, d))
        icf = rng.standard_normal((k, d + d * (d - 1) // 2)) * 0.1
        x = rng.standard_normal((n, d))
        idx = lower_index(d)
        args, argnums = (alphas, means, icf, x), (0, 1, 2)
        # NOTE: idx is bound per d (default argument): the lambdas outlive this loop iteration
        gj_f = lambda a, mu, q, x, idx=idx: gmm_objective(
            gj, lambda t, i: t[:, gj.tensor(i)], gj.logsumexp, a, mu, q, x, idx)
        systems = _systems(
            _gradjit_system(gj, gj_f, args, argnums),
            _jax_system(lambda a, mu, q, x, idx=idx: gmm_objective(
                jnp, lambda t, i: t[:, i], jax.scipy.special.logsumexp, a, mu, q, x, idx),
                        args, argnums) if jax else None,
            _torch_system(lambda a, mu, q, x, idx=idx: gmm_objective(
                torch, lambda t, i: t[:, torch.tensor(i)], torch.logsumexp, a, mu, q, x, idx),
                args, argnums) if torch else None)
        made.append(Workload(f"gmm d={d}", f"ADBench GMM objective k={k} n={n}, f64, d/d(params)",
                             systems, rtol=1e-8))
    return made


# ---- lstm: a recurrent loop written with scan ------------------------------------------

def lstm(gj, steps: int = 20, batch: int = 16, hidden: int = 64) -> Workload:
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((2 * hidden, 4 * hidden)) * 0.1
    w2 = rng.standard_normal((2 * hidden, 4 * hidden)) * 0.1
    b1, b2 = np.zeros(4 * hidden), np.zeros(4 * hidden)
    xs = rng.standard_normal((steps, batch, hidden))
    args, argnums = (w1, b1, w2, b2, xs), (0, 1, 2, 3)

    def torch_scan(f, carry, xs):
        ys = []
        for t in range(xs.shape[0]):
            carry, y = f(carry, xs[t])
            ys.append(y)
        return carry, torch.stack(ys)

    systems = _systems(
        _gradjit_system(gj, lambda *a: lstm_loss(gj, gj.scan, *a, hidden), args, argnums),
        _jax_system(lambda *a: lstm_loss(jnp, jax.lax.scan, *a, hidden), args, argnums)
        if jax else None,
        _torch_system(lambda *a: lstm_loss(torch, torch_scan, *a, hidden), args, argnums)
        if torch else None)
    return Workload(f"lstm T={steps}", f"2-layer LSTM, batch {batch}, hidden {hidden}, f64, scan",
                    systems, rtol=1e-8)


# ---- imperative: a PyTorch-style training loop ------------------------------------------

def imperative(gj, steps: int = 100) -> Workload:
    """`steps` SGD steps of the 784-256-10 MLP through the torch-style API (gradjit vs torch)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    init = [(rng.standard_normal((256, 784)) * 0.05).astype(np.float32), np.zeros(256, np.float32),
            (rng.standard_normal((10, 256)) * 0.05).astype(np.float32), np.zeros(10, np.float32)]

    def train(lib):
        model = lib.nn.Sequential(lib.nn.Linear(784, 256), lib.nn.ReLU(), lib.nn.Linear(256, 10))
        with lib.no_grad():
            for p, v in zip(model.parameters(), init):
                p.copy_(lib.tensor(v))
        opt = lib.optim.SGD(model.parameters(), lr=0.05)
        xt, yt = lib.tensor(x), lib.tensor(y)
        for _ in range(steps):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
        return [loss.item()] + [p.detach().numpy() for p in model.parameters()]

    systems = _systems(System("gradjit", lambda: train(gj), lambda r: r),
                       System("torch", lambda: train(torch), lambda r: r) if torch else None)
    return Workload(f"imperative {steps} steps", "torch-style MLP SGD loop (per loop)",
                    systems, rtol=1e-3)
