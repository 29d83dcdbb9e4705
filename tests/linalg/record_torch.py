"""Records PyTorch 2.13's error texts, grad_fn names and output conventions of torch.linalg
into recorded.json (run with /tmp/torchvenv/bin/python; the tests never import torch)."""
import json
import os

import torch

LA = torch.linalg


def error(fn):
    try:
        fn()
    except Exception as e:          # noqa: BLE001 - we record whatever PyTorch raises
        return [type(e).__name__, str(e)]
    return None


def fields(result):
    return list(type(result).__match_args__)


def main():
    eye = torch.eye(3, dtype=torch.float64)
    sing = torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=torch.float64)
    notpd = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64)
    rect = torch.ones(2, 3, dtype=torch.float64)
    batch_notpd = torch.stack([torch.eye(2, dtype=torch.float64), notpd])
    errors = {
        "cholesky_not_pd": error(lambda: LA.cholesky(notpd)),
        "cholesky_not_pd_batched": error(lambda: LA.cholesky(batch_notpd)),
        "cholesky_not_square": error(lambda: LA.cholesky(rect)),
        "inv_singular": error(lambda: LA.inv(sing)),
        "inv_not_square": error(lambda: LA.inv(rect)),
        "solve_singular": error(lambda: LA.solve(sing, torch.ones(2, dtype=torch.float64))),
        "solve_not_square": error(lambda: LA.solve(rect, torch.ones(2, dtype=torch.float64))),
        "det_not_square": error(lambda: LA.det(rect)),
        "slogdet_not_square": error(lambda: LA.slogdet(rect)),
        "eigh_not_square": error(lambda: LA.eigh(rect)),
        "qr_vector": error(lambda: LA.qr(torch.ones(3))),
        "svd_vector": error(lambda: LA.svd(torch.ones(3))),
        "matrix_power_not_square": error(lambda: LA.matrix_power(rect, 2)),
        "cross_not_3": error(lambda: LA.cross(torch.ones(2), torch.ones(2))),
        "solve_triangular_singular": None,
        "matrix_norm_vector": error(lambda: LA.matrix_norm(torch.ones(3))),
        "norm_bad_ord": error(lambda: LA.matrix_norm(eye, ord=3)),
        "int_input": error(lambda: LA.inv(torch.eye(2, dtype=torch.int64))),
    }
    x = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    spd = x @ x.T + 3 * torch.eye(3, dtype=torch.float64)
    b = torch.randn(3, 2, dtype=torch.float64)
    nodes = {
        "solve": LA.solve(spd, b), "inv": LA.inv(spd), "det": LA.det(spd),
        "slogdet": LA.slogdet(spd)[1], "cholesky": LA.cholesky(spd),
        "solve_triangular": LA.solve_triangular(spd, b, upper=True),
        "qr": LA.qr(x)[0], "eigh": LA.eigh(spd)[0], "svd": LA.svd(x)[1],
        "svdvals": LA.svdvals(x),
        "norm": LA.norm(x), "vector_norm": LA.vector_norm(x), "matrix_norm": LA.matrix_norm(x),
        "matrix_norm_2": LA.matrix_norm(x, ord=2), "pinv": LA.pinv(x),
        "lstsq": LA.lstsq(x, b).solution, "cross": LA.cross(x, x),
        "matrix_power": LA.matrix_power(x, 3), "matrix_power_neg": LA.matrix_power(spd, -2),
        "eigvalsh": LA.eigvalsh(spd),
    }
    names = {k: type(v.grad_fn).__name__ for k, v in nodes.items()}
    a = torch.arange(12.0, dtype=torch.float64).reshape(4, 3) ** 1.5
    conventions = {
        "lstsq_fields": fields(LA.lstsq(a, torch.ones(4, 1, dtype=torch.float64))),
        "lstsq_residuals_shape": list(LA.lstsq(a, torch.ones(4, 1, dtype=torch.float64))
                                      .residuals.shape),
        "lstsq_rank": LA.lstsq(a, torch.ones(4, 1, dtype=torch.float64)).rank.tolist(),
        "slogdet_fields": fields(LA.slogdet(spd)),
        "slogdet_singular": [float(v) for v in LA.slogdet(sing)],
        "det_singular": float(LA.det(sing)),
        "qr_fields": fields(LA.qr(x)), "eigh_fields": fields(LA.eigh(spd)),
        "svd_fields": fields(LA.svd(x)),
        "norm_default_matrix": float(LA.norm(a)), "matrix_norm_2": float(LA.matrix_norm(a, 2)),
    }
    out = {"errors": errors, "grad_fn": names, "conventions": conventions,
           "torch": torch.__version__}
    path = os.path.join(os.path.dirname(__file__), "recorded.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
