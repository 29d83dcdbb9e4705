"""torch.special (and jax.scipy.special's common names) for gradjit: the same functions as the
top-level ops (tracer/ops/special.py, special_math.py), under the names torch.special uses."""
from tracer.ops import (digamma, erf, erfc, erfinv, exp2, expit, expm1, lgamma, log1p,
                        log_softmax, logit, logsumexp, polygamma, sinc, softmax, xlogy)

from gradjit._missing import missing_names

gammaln = lgamma
psi = digamma

__all__ = ["erf", "erfc", "erfinv", "expit", "logit", "xlogy", "log1p", "expm1", "sinc",
           "gammaln", "digamma", "psi", "polygamma", "exp2", "logsumexp", "softmax",
           "log_softmax"]

__getattr__ = missing_names("torch.special", __name__)
