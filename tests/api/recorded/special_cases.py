"""Edge-point cases of the special functions, written once for both fronts: `T` is torch
(when recording, tests/api/recorded/record_special.py) or gradjit (tests/api/test_special_math.py).
Each case: (inputs, f); the recorded value is f(x) and the gradient that of f(x).sum() in
float64, x = T.tensor(inputs). Inputs sit at 0, +-inf, nan and the ends of each domain."""
NAN, INF = float("nan"), float("inf")
GENERIC = [NAN, -INF, -2.5, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, INF]
UNIT = [NAN, -1.5, -1.0, -0.999, -0.5, -0.0, 0.0, 0.5, 0.999, 1.0, 1.5]
POSITIVE = [NAN, -1.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 2.0, 8.0, 1e300, INF]
GAMMA = [NAN, -INF, -3.0, -2.5, -1.0, -0.5, -0.0, 0.0, 1e-8, 0.5, 1.0, 1.4616321449683622,
         2.0, 10.5, 200.0, INF]
OTHER = [0.0, NAN, -0.0, 1.0, -1.0, 0.0, -2.0, INF, -INF, 3.0]   # partner of GENERIC


def cases(T) -> dict:
    def vec(values):
        return T.tensor(values, dtype=T.float64)
    return {
        "asin": (UNIT, T.asin), "acos": (UNIT, T.acos), "atan": (GENERIC, T.atan),
        "arcsin": (UNIT, T.arcsin), "arctanh": (UNIT, T.arctanh),
        "sinh": (GENERIC + [710.0, -710.0], T.sinh), "cosh": (GENERIC + [710.0], T.cosh),
        "asinh": (GENERIC + [1e300], T.asinh), "acosh": (POSITIVE, T.acosh),
        "atanh": (UNIT, T.atanh),
        "log2": (POSITIVE, T.log2), "log10": (POSITIVE + [1000.0], T.log10),
        "exp2": (GENERIC + [1024.0, -1074.0], T.exp2),
        "erfc": (GENERIC + [27.0, -30.0, 10.0], T.erfc), "erfinv": (UNIT, T.erfinv),
        "lgamma": (GAMMA, T.lgamma), "digamma": (GAMMA, T.digamma),
        "polygamma1": ([v for v in GAMMA if v not in (-3.0, -1.0)],
                       lambda x: T.polygamma(1, x)),
        "polygamma2": ([v for v in GAMMA if v > -0.1 and v == v and v != INF],
                       lambda x: T.polygamma(2, x)),
        "special_gammaln": (GAMMA[2:8], T.special.gammaln),
        "atan2": (GENERIC, lambda x: T.atan2(x, vec(OTHER))),
        "atan2_other": (OTHER, lambda x: T.atan2(vec(GENERIC), x)),
        "logaddexp": (GENERIC, lambda x: T.logaddexp(x, vec(OTHER))),
        "logaddexp2": (GENERIC, lambda x: T.logaddexp2(x, vec(OTHER))),
        "hypot": (GENERIC, lambda x: T.hypot(x, vec(OTHER))),
        "lerp": (GENERIC, lambda x: T.lerp(x, vec(OTHER), 0.25)),
        "lerp_weight": (GENERIC, lambda x: T.lerp(vec(OTHER), vec([1.0] * 10), x)),
        "sinc": (GENERIC + [1e-20, 2.0], T.sinc),
        "xlogy": (GENERIC, lambda x: T.xlogy(x, vec(OTHER))),
        "xlogy_other": (OTHER, lambda x: T.xlogy(vec(GENERIC), x)),
        "logit": (UNIT, T.logit), "logit_eps": (UNIT, lambda x: T.logit(x, eps=0.01)),
        "special_expit": (GENERIC, T.special.expit),
        "nan_to_num": (GENERIC, T.nan_to_num),
        "nan_to_num_args": (GENERIC, lambda x: T.nan_to_num(x, nan=1.5, posinf=9.0, neginf=-9.0)),
        "clip": (GENERIC, lambda x: T.clip(x, -1.0, 1.0)),
        # NaN semantics of the select-based ops beyond tests/api/recorded/nan_cases.py
        "abs": (GENERIC, T.abs),
        "clamp_tensor_bounds": (GENERIC, lambda x: T.clamp(vec(OTHER), x, vec([2.0] * 10))),
        "maximum_other": (OTHER, lambda x: T.maximum(vec(GENERIC), x)),
        "minimum_other": (OTHER, lambda x: T.minimum(vec(GENERIC), x)),
        "max_two_nans": ([1.0, NAN, 3.0, NAN], lambda x: T.max(x).reshape(1)),
        "min_ties": ([1.0, -2.0, -2.0, 5.0], lambda x: T.min(x).reshape(1)),
    }
