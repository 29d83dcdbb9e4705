"""Helpers shared by the followed-backward tests (test_backward_follow.py,
test_follow_code.py, test_lean_recording.py): every check follow_code generates, run beside
the loop it replaces (follow._check) with the answers compared, and the small MLP those
tests train."""

import gradjit as gj
from tracer.autograd import follow, follow_code


def compare_checks(monkeypatch) -> dict:
    """Wraps follow_code.make_check so that each generated check also runs follow._check on
    the same root and the two answers must be the same; returns the counts of answers
    compared ("same", "refused") and the (shape, code) of every check made ("made")."""
    calls = {"same": 0, "refused": 0, "made": []}
    make = follow_code.make_check

    def checked_make(shape, *fns):
        code = make(shape, *fns)
        if code is None:
            return None
        calls["made"].append((shape, code))

        def both(root):
            got, want = code(root), follow._check(shape, root)
            assert_same_check(got, want)
            calls["refused" if isinstance(got, str) else "same"] += 1
            return got
        return both
    monkeypatch.setattr(follow_code, "make_check", checked_make)
    return calls


def assert_same_check(got, want):
    """The same plan, the same Exprs at the same walk positions, the same targets and nodes
    (the same objects), or the same reason."""
    assert type(got) is type(want)
    if isinstance(want, str):
        assert got == want
        return
    plan, exprs, targets, executed = want
    assert got[0] is plan
    assert got[1].keys() == exprs.keys()
    assert all(got[1][p] is e for p, e in exprs.items())
    assert len(got[2]) == len(targets)
    for (edge_g, t_g), (edge_w, t_w) in zip(got[2], targets):
        assert edge_g[0] is edge_w[0] and edge_g[1] == edge_w[1] and t_g is t_w
    assert len(got[3]) == len(executed) and all(a is b for a, b in zip(got[3], executed))


def mlp(rng, sizes, dtype):
    """Linear-ReLU-Linear of sizes (in, hidden, out) in dtype, weights drawn from rng."""
    d, h, o = sizes
    model = gj.nn.Sequential(gj.nn.Linear(d, h), gj.nn.ReLU(), gj.nn.Linear(h, o))
    if dtype == "float64":
        model = model.double()
    with gj.no_grad():
        for p in model.parameters():
            p.copy_(gj.tensor(rng.standard_normal(p.shape) * 0.3, dtype=p.dtype))
    return model
