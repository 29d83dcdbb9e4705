"""The NaN-propagation cases of the select-based ops, written once for both fronts: `T` is
torch (when recording) or gradjit (in tests/api/test_wrong_answers.py), F its
nn.functional. Inputs hold NaN, a negative, 0, a positive and -inf."""
NAN, INF = float("nan"), float("inf")
X = [NAN, -1.0, 0.0, 2.0, -INF]
OTHER = [0.0, NAN, 1.0, NAN, 0.0]


def cases(T, F) -> dict:
    def vec(values):
        return T.tensor(values, dtype=T.float64)
    return {
        "relu": lambda x: T.relu(x),
        "clamp_0_1": lambda x: T.clamp(x, 0.0, 1.0),
        "clamp_min": lambda x: T.clamp(x, min=0.5),
        "clamp_max": lambda x: T.clamp(x, max=0.5),
        "clamp_nanmin": lambda x: T.clamp(x, min=vec([NAN] * 5)),
        "clamp_nanmax": lambda x: T.clamp(x, max=vec([NAN] * 5)),
        "clamp_scalar_nanmin": lambda x: T.clamp(x, min=NAN),
        "maximum": lambda x: T.maximum(x, vec(OTHER)),
        "minimum": lambda x: T.minimum(x, vec(OTHER)),
        "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
        "softmax": lambda x: T.softmax(x, 0),
        "log_softmax": lambda x: T.log_softmax(x, 0),
        "logsumexp": lambda x: T.logsumexp(x, 0).reshape(1),
        "amax0": lambda x: T.amax(x.reshape(1, 5), 1),
        "amin0": lambda x: T.amin(x.reshape(1, 5), 1),
        "max_all": lambda x: T.max(x).reshape(1),
        "min_all": lambda x: T.min(x).reshape(1),
    }
