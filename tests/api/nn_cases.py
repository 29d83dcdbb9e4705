"""The nn cases, shared by tests/api/recorded/record_nn.py (run under real PyTorch 2.13) and
tests/api/test_nn_*.py (run under gradjit): each case builds its inputs from a seeded NumPy
generator, calls a function or a module (parameters overwritten from the generator), and
differentiates sum(output * fixed cotangent) with respect to the float inputs and the
parameters. `run_case(torch, case)` takes the torch-like module, so one body serves both.
This file never imports torch."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Case:
    name: str
    subject: str
    inputs: object                 # rng -> list of arrays (float64 ones get requires_grad)
    fn: object                     # (torch, *tensors) or (torch, module, *tensors) -> output
    module: object = None          # torch -> nn.Module
    train: bool = True
    scale: float = 0.5             # parameters ~ N(0, scale^2)
    grad: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())


CASES: dict[str, Case] = {}


def case(name, subject, inputs, fn=None, **kw):
    if fn is None:
        def fn(torch, m, *xs):
            return m(*xs)
    CASES[name] = Case(name, subject, inputs, fn, **kw)


def normal(*shape):
    return lambda r: [r.standard_normal(shape)]


def normals(*shapes):
    return lambda r: [r.standard_normal(s) for s in shapes]


def _flatten(out, acc):
    if out is None:
        return acc
    if isinstance(out, (tuple, list)):
        for o in out:
            _flatten(o, acc)
    else:
        acc.append(out)
    return acc


def run_case(torch, c: Case) -> dict:
    """Runs case c with `torch` (PyTorch or gradjit); returns plain lists."""
    r = np.random.default_rng(c.seed)
    arrays = c.inputs(r)
    xs = [torch.tensor(a, requires_grad=bool(c.grad and a.dtype == np.float64))
          for a in arrays]
    params = []
    if c.module is not None:
        m = c.module(torch).double()
        pr = np.random.default_rng(c.seed + 1)
        with torch.no_grad():
            for _, p in m.named_parameters():
                p.copy_(torch.tensor(pr.standard_normal(tuple(p.shape)) * c.scale))
        m.train(c.train)
        out = c.fn(torch, m, *xs)
        params = [p for _, p in m.named_parameters()]
    else:
        m = None
        out = c.fn(torch, *xs)
    leaves = _flatten(out, [])
    result = {"out": [leaf.tolist() for leaf in leaves],
              "dtype": [str(leaf.dtype) for leaf in leaves]}
    wrt = [x for x in xs if x.requires_grad] + [p for p in params if p.requires_grad]
    cr = np.random.default_rng(c.seed + 2)
    terms = [(leaf * torch.tensor(cr.standard_normal(tuple(leaf.shape)))).sum()
             for leaf in leaves if leaf.dtype == torch.float64 and leaf.requires_grad]
    if c.grad and terms and wrt:
        loss = terms[0]
        for t in terms[1:]:
            loss = loss + t
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        result["grads"] = [None if g is None else g.tolist() for g in grads]
    if m is not None:
        result["state_dict"] = {k: v.tolist() for k, v in m.state_dict().items()}
    return result


# ---- activations ---------------------------------------------------------------------------

F = "nn.functional"
for _name, _call in {
    "gelu": lambda t, x: t.nn.functional.gelu(x),
    "gelu_tanh": lambda t, x: t.nn.functional.gelu(x, approximate="tanh"),
    "elu": lambda t, x: t.nn.functional.elu(x, alpha=0.7),
    "selu": lambda t, x: t.nn.functional.selu(x),
    "celu": lambda t, x: t.nn.functional.celu(x, alpha=1.3),
    "softplus_beta": lambda t, x: t.nn.functional.softplus(x, beta=2.0, threshold=3.0),
    "mish": lambda t, x: t.nn.functional.mish(x),
    "hardtanh": lambda t, x: t.nn.functional.hardtanh(x, -0.5, 0.8),
    "relu6": lambda t, x: t.nn.functional.relu6(x * 4),
    "hardsigmoid": lambda t, x: t.nn.functional.hardsigmoid(x * 4),
    "hardswish": lambda t, x: t.nn.functional.hardswish(x * 4),
    "logsigmoid": lambda t, x: t.nn.functional.logsigmoid(x * 3),
    "softsign": lambda t, x: t.nn.functional.softsign(x),
    "glu": lambda t, x: t.nn.functional.glu(x, 0),
    "softmin": lambda t, x: t.nn.functional.softmin(x, 1),
    "leaky_relu": lambda t, x: t.nn.functional.leaky_relu(x, 0.2),
}.items():
    case("F." + _name, "activation", normal(4, 6), _call)

for _name, _make in {
    "GELU": lambda t: t.nn.GELU(), "GELU_tanh": lambda t: t.nn.GELU("tanh"),
    "ELU": lambda t: t.nn.ELU(0.5), "SiLU": lambda t: t.nn.SiLU(),
    "Softplus": lambda t: t.nn.Softplus(beta=0.5), "Mish": lambda t: t.nn.Mish(),
    "Hardtanh": lambda t: t.nn.Hardtanh(-0.3, 0.3), "LeakyReLU": lambda t: t.nn.LeakyReLU(0.1),
    "Softmax": lambda t: t.nn.Softmax(dim=-1), "LogSoftmax": lambda t: t.nn.LogSoftmax(dim=0),
    "Flatten": lambda t: t.nn.Flatten(), "Unflatten": lambda t: t.nn.Unflatten(1, (2, 3)),
    "Identity": lambda t: t.nn.Identity(), "ReLU6": lambda t: t.nn.ReLU6(),
    "SELU": lambda t: t.nn.SELU(), "CELU": lambda t: t.nn.CELU(0.9),
    "LogSigmoid": lambda t: t.nn.LogSigmoid(), "Hardswish": lambda t: t.nn.Hardswish(),
}.items():
    case("nn." + _name, "activation", normal(4, 6), module=_make)

# ---- normalisation, embedding --------------------------------------------------------------

case("F.layer_norm", "norm", normals((3, 4, 5), (4, 5), (4, 5)),
     lambda t, x, w, b: t.nn.functional.layer_norm(x, (4, 5), w, b, eps=1e-3))
case("F.layer_norm_plain", "norm", normal(3, 6),
     lambda t, x: t.nn.functional.layer_norm(x, (6,)))
case("F.rms_norm", "norm", normals((3, 5), (5,)),
     lambda t, x, w: t.nn.functional.rms_norm(x, (5,), w))
case("F.group_norm", "norm", normals((2, 6, 3, 2), (6,), (6,)),
     lambda t, x, w, b: t.nn.functional.group_norm(x, 3, w, b))
case("F.batch_norm_train", "norm", lambda r: [r.standard_normal((5, 3, 4)),
                                              np.zeros(3), np.ones(3)],
     lambda t, x, rm, rv: (t.nn.functional.batch_norm(x, rm.detach(), rv.detach(), None, None,
                                                      True, 0.3), ), grad=True)
case("F.batch_norm_eval", "norm", lambda r: [r.standard_normal((5, 3)), r.standard_normal(3),
                                             r.uniform(0.5, 2.0, 3), r.standard_normal(3)],
     lambda t, x, rm, rv, w: t.nn.functional.batch_norm(x, rm.detach(), rv.detach(), w, None,
                                                        False))
case("F.instance_norm", "norm", normal(2, 3, 5),
     lambda t, x: t.nn.functional.instance_norm(x))
case("F.normalize", "norm", normal(3, 4), lambda t, x: t.nn.functional.normalize(x, dim=1))
case("F.normalize_p1", "norm", normal(3, 4),
     lambda t, x: t.nn.functional.normalize(x, p=1, dim=0))
case("nn.LayerNorm", "norm", normal(2, 3, 4), module=lambda t: t.nn.LayerNorm(4))
case("nn.LayerNorm_2d_nobias", "norm", normal(2, 3, 4),
     module=lambda t: t.nn.LayerNorm((3, 4), bias=False))
case("nn.RMSNorm", "norm", normal(2, 3, 4), module=lambda t: t.nn.RMSNorm(4, eps=1e-6))
case("nn.GroupNorm", "norm", normal(2, 4, 3), module=lambda t: t.nn.GroupNorm(2, 4))
case("nn.BatchNorm1d_train", "norm", normal(6, 3), module=lambda t: t.nn.BatchNorm1d(3))
case("nn.BatchNorm1d_3d", "norm", normal(4, 3, 5),
     module=lambda t: t.nn.BatchNorm1d(3, momentum=0.5))
case("nn.BatchNorm2d_train", "norm", normal(3, 2, 4, 4), module=lambda t: t.nn.BatchNorm2d(2))


def _bn_twice_then_eval(torch, m, x):
    m(x)
    y = m(x * 2.0 + 1.0)
    m.eval()
    return y, m(x)


case("nn.BatchNorm2d_train_eval", "norm", normal(3, 2, 3, 3),
     _bn_twice_then_eval, module=lambda t: t.nn.BatchNorm2d(2))
case("nn.BatchNorm1d_cumulative", "norm", normal(5, 3), _bn_twice_then_eval,
     module=lambda t: t.nn.BatchNorm1d(3, momentum=None))
case("nn.BatchNorm1d_untracked", "norm", normal(5, 3), _bn_twice_then_eval,
     module=lambda t: t.nn.BatchNorm1d(3, track_running_stats=False, affine=False))
case("nn.Embedding", "embedding", lambda r: [r.integers(0, 7, (3, 4))],
     module=lambda t: t.nn.Embedding(7, 5))
case("nn.Embedding_padding", "embedding", lambda r: [np.array([[1, 2, 0], [0, 2, 2]])],
     module=lambda t: t.nn.Embedding(4, 3, padding_idx=2))
case("F.embedding", "embedding", lambda r: [np.array([3, 0, 3, 1]), r.standard_normal((4, 2))],
     lambda t, i, w: t.nn.functional.embedding(i, w, padding_idx=-1))
case("nn.Embedding.from_pretrained", "embedding", lambda r: [np.array([1, 0, 1]),
                                                             r.standard_normal((2, 3))],
     lambda t, i, w: t.nn.Embedding.from_pretrained(w, freeze=False)(i))
case("F.one_hot", "embedding", lambda r: [np.array([[0, 3], [2, 1]])],
     lambda t, i: t.nn.functional.one_hot(i, 5))
case("F.one_hot_infer", "embedding", lambda r: [np.array([0, 3, 2])],
     lambda t, i: t.nn.functional.one_hot(i))

# ---- dropout in eval, shapes, padding, interpolation ---------------------------------------

case("nn.Dropout_eval", "misc", normal(3, 4), module=lambda t: t.nn.Dropout(0.7), train=False)
case("nn.Dropout2d_eval", "misc", normal(2, 3, 2, 2), module=lambda t: t.nn.Dropout2d(0.4),
     train=False)
case("F.dropout_p0", "misc", normal(3, 4), lambda t, x: t.nn.functional.dropout(x, 0.0))
for _mode in ("constant", "reflect", "replicate", "circular"):
    case(f"F.pad_{_mode}", "misc", normal(2, 3, 4, 5),
         lambda t, x, _m=_mode: t.nn.functional.pad(x, (1, 2, 2, 1), mode=_m))
case("F.pad_value_1d", "misc", normal(2, 3),
     lambda t, x: t.nn.functional.pad(x, (2, 1), value=-1.5))
case("F.pad_crop", "misc", normal(3, 5),
     lambda t, x: t.nn.functional.pad(x, (-1, 2, 1, 0)))
case("F.pad_reflect_1d", "misc", normal(1, 2, 5),
     lambda t, x: t.nn.functional.pad(x, (3, 2), mode="reflect"))
for _kw in ({"scale_factor": 2, "mode": "nearest"}, {"size": (5, 3), "mode": "nearest"},
            {"size": (5, 7), "mode": "bilinear", "align_corners": False},
            {"size": (5, 7), "mode": "bilinear", "align_corners": True},
            {"scale_factor": 0.5, "mode": "bilinear"},
            {"scale_factor": 1.5, "mode": "bilinear", "align_corners": False},
            {"size": (2, 3), "mode": "area"}):
    case("F.interpolate_" + "_".join(f"{k}{v}" for k, v in _kw.items()), "misc",
         normal(2, 2, 4, 6), lambda t, x, _k=_kw: t.nn.functional.interpolate(x, **_k))
case("F.interpolate_linear", "misc", normal(2, 3, 5),
     lambda t, x: t.nn.functional.interpolate(x, size=8, mode="linear"))
case("F.interpolate_linear_ac", "misc", normal(2, 3, 5),
     lambda t, x: t.nn.functional.interpolate(x, scale_factor=3, mode="linear",
                                              align_corners=True))
case("F.interpolate_nearest_1d", "misc", normal(1, 2, 5),
     lambda t, x: t.nn.functional.interpolate(x, size=3))

# ---- convolution and pooling ---------------------------------------------------------------

for _name, _kw in {"plain": {}, "stride": {"stride": 2}, "pad": {"padding": 1},
                   "same": {"padding": "same"}, "dil": {"dilation": 2, "padding": 2},
                   "groups": {"groups": 2, "stride": (2, 1)}, "asym": {"padding": (2, 0)}}.items():
    case(f"F.conv2d_{_name}", "conv", normals((2, 4, 7, 6), (6, 4 // _kw.get("groups", 1), 3, 3),
                                              (6,)),
         lambda t, x, w, b, _k=_kw: t.nn.functional.conv2d(x, w, b, **_k))
case("F.conv2d_nobias_rect", "conv", normals((1, 3, 5, 6), (2, 3, 2, 4)),
     lambda t, x, w: t.nn.functional.conv2d(x, w))
case("F.conv2d_unbatched", "conv", normals((3, 5, 5), (2, 3, 3, 3)),
     lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1))
case("F.conv1d", "conv", normals((2, 3, 9), (4, 3, 3), (4,)),
     lambda t, x, w, b: t.nn.functional.conv1d(x, w, b, stride=2, padding=1))
case("F.conv1d_same_dil", "conv", normals((2, 4, 8), (4, 2, 4)),
     lambda t, x, w: t.nn.functional.conv1d(x, w, padding="same", dilation=2, groups=2))
case("nn.Conv2d", "conv", normal(2, 3, 6, 6), module=lambda t: t.nn.Conv2d(3, 4, 3))
case("nn.Conv2d_opts", "conv", normal(2, 4, 7, 7),
     module=lambda t: t.nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2),
                                  groups=2, bias=False))
case("nn.Conv2d_reflect", "conv", normal(1, 2, 5, 5),
     module=lambda t: t.nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"))
case("nn.Conv2d_same_circular", "conv", normal(1, 2, 5, 4),
     module=lambda t: t.nn.Conv2d(2, 2, 4, padding="same", padding_mode="circular"))
case("nn.Conv1d", "conv", normal(2, 3, 10), module=lambda t: t.nn.Conv1d(3, 5, 4, stride=3))
case("F.max_pool2d", "conv", normal(2, 3, 6, 7), lambda t, x: t.nn.functional.max_pool2d(x, 2))
case("F.max_pool2d_opts", "conv", normal(2, 2, 7, 7),
     lambda t, x: t.nn.functional.max_pool2d(x, 3, stride=2, padding=1, dilation=1))
case("F.max_pool2d_ceil", "conv", normal(1, 2, 7, 6),
     lambda t, x: t.nn.functional.max_pool2d(x, 2, ceil_mode=True))
case("F.max_pool2d_dil_idx", "conv", normal(1, 2, 7, 7),
     lambda t, x: t.nn.functional.max_pool2d(x, 2, stride=2, dilation=2, padding=1,
                                             return_indices=True))
case("F.max_pool1d", "conv", normal(2, 3, 9),
     lambda t, x: t.nn.functional.max_pool1d(x, 3, stride=2))
case("F.avg_pool2d", "conv", normal(2, 3, 6, 6), lambda t, x: t.nn.functional.avg_pool2d(x, 2))
case("F.avg_pool2d_pad", "conv", normal(1, 2, 5, 5),
     lambda t, x: t.nn.functional.avg_pool2d(x, 3, 2, 1))
case("F.avg_pool2d_pad_exclude", "conv", normal(1, 2, 5, 5),
     lambda t, x: t.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False))
case("F.avg_pool2d_ceil", "conv", normal(1, 2, 5, 6),
     lambda t, x: t.nn.functional.avg_pool2d(x, 2, ceil_mode=True, padding=1))
case("F.avg_pool2d_divisor", "conv", normal(1, 1, 4, 4),
     lambda t, x: t.nn.functional.avg_pool2d(x, 2, divisor_override=3))
case("F.avg_pool1d", "conv", normal(2, 3, 7),
     lambda t, x: t.nn.functional.avg_pool1d(x, 2))
case("F.adaptive_avg_pool2d", "conv", normal(2, 3, 7, 5),
     lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, (3, 2)))
case("F.adaptive_avg_pool2d_none", "conv", normal(1, 2, 6, 5),
     lambda t, x: t.nn.functional.adaptive_avg_pool2d(x, (None, 1)))
case("F.adaptive_avg_pool1d", "conv", normal(2, 3, 7),
     lambda t, x: t.nn.functional.adaptive_avg_pool1d(x, 4))
case("nn.MaxPool2d", "conv", normal(1, 2, 6, 6), module=lambda t: t.nn.MaxPool2d(3, 2))
case("nn.AvgPool2d", "conv", normal(1, 2, 6, 6), module=lambda t: t.nn.AvgPool2d((2, 3)))
case("nn.AdaptiveAvgPool2d", "conv", normal(1, 2, 6, 6),
     module=lambda t: t.nn.AdaptiveAvgPool2d(1))
case("F.unfold", "conv", normal(1, 2, 4, 5),
     lambda t, x: t.nn.functional.unfold(x, (2, 3), padding=1, stride=(1, 2)))

# ---- losses --------------------------------------------------------------------------------

def _probs(*shapes):
    return lambda r: [r.uniform(0.05, 0.95, s) for s in shapes]


for _red in ("mean", "sum", "none"):
    case(f"F.binary_cross_entropy_{_red}", "loss", _probs((3, 4), (3, 4)),
         lambda t, x, y, _r=_red: t.nn.functional.binary_cross_entropy(x, y, reduction=_r))
    case(f"F.bce_with_logits_{_red}", "loss",
         lambda r: [r.standard_normal((3, 4)) * 3, r.uniform(0, 1, (3, 4))],
         lambda t, x, y, _r=_red: t.nn.functional.binary_cross_entropy_with_logits(
             x, y, reduction=_r))
    case(f"F.smooth_l1_loss_{_red}", "loss", lambda r: [r.standard_normal((4, 3)) * 2,
                                                        r.standard_normal((4, 3))],
         lambda t, x, y, _r=_red: t.nn.functional.smooth_l1_loss(x, y, reduction=_r, beta=0.7))
    case(f"F.huber_loss_{_red}", "loss", lambda r: [r.standard_normal((4, 3)) * 2,
                                                    r.standard_normal((4, 3))],
         lambda t, x, y, _r=_red: t.nn.functional.huber_loss(x, y, reduction=_r, delta=0.8))
    case(f"F.kl_div_{_red}", "loss", lambda r: [np.log(r.dirichlet(np.ones(5), 3)),
                                                r.dirichlet(np.ones(5), 3)],
         lambda t, x, y, _r=_red: t.nn.functional.kl_div(x, y, reduction=_r))
case("F.kl_div_batchmean_log_target", "loss", lambda r: [np.log(r.dirichlet(np.ones(4), 3)),
                                                         np.log(r.dirichlet(np.ones(4), 3))],
     lambda t, x, y: t.nn.functional.kl_div(x, y, reduction="batchmean", log_target=True))
case("F.kl_div_zero_target", "loss", lambda r: [r.standard_normal((2, 3)),
                                                np.array([[0.0, 0.4, 0.6], [1.0, 0.0, 0.0]])],
     lambda t, x, y: t.nn.functional.kl_div(x, y.detach(), reduction="sum"))
case("F.bce_with_logits_pos_weight", "loss",
     lambda r: [r.standard_normal((3, 4)) * 2, r.uniform(0, 1, (3, 4)), r.uniform(0.5, 3, 4),
                r.uniform(0.5, 2, (3, 4))],
     lambda t, x, y, pw, w: t.nn.functional.binary_cross_entropy_with_logits(
         x, y, weight=w.detach(), pos_weight=pw.detach()))
case("F.bce_weight", "loss", lambda r: [r.uniform(0.05, 0.95, (3, 2)), r.uniform(0, 1, (3, 2)),
                                        r.uniform(0.5, 2, 2)],
     lambda t, x, y, w: t.nn.functional.binary_cross_entropy(x, y, weight=w.detach()))
case("F.bce_saturated", "loss", lambda r: [np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0])],
     lambda t, x, y: t.nn.functional.binary_cross_entropy(x.detach(), y), grad=False)
case("F.smooth_l1_beta0", "loss", normals((3, 3), (3, 3)),
     lambda t, x, y: t.nn.functional.smooth_l1_loss(x, y, beta=0.0))
case("F.cosine_similarity", "loss", normals((3, 5), (3, 5)),
     lambda t, x, y: t.nn.functional.cosine_similarity(x, y))
for _name, _make in {"BCELoss": lambda t: t.nn.BCELoss(reduction="sum"),
                     "SmoothL1Loss": lambda t: t.nn.SmoothL1Loss(beta=0.5),
                     "HuberLoss": lambda t: t.nn.HuberLoss(reduction="none", delta=1.5),
                     "KLDivLoss": lambda t: t.nn.KLDivLoss(reduction="batchmean")}.items():
    case("nn." + _name, "loss", _probs((4, 3), (4, 3)), module=_make)


def _bce_logits_module(torch, m, x, y):
    return torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([0.5, 2.0, 3.0]))(x, y)


case("nn.BCEWithLogitsLoss", "loss", lambda r: [r.standard_normal((4, 3)),
                                                r.uniform(0, 1, (4, 3))],
     lambda t, x, y: _bce_logits_module(t, None, x, y))

# ---- recurrent -----------------------------------------------------------------------------

case("nn.RNN", "rnn", normal(5, 2, 3), module=lambda t: t.nn.RNN(3, 4))
case("nn.RNN_relu_2layers_bf", "rnn", normal(2, 4, 3),
     module=lambda t: t.nn.RNN(3, 4, num_layers=2, nonlinearity="relu", batch_first=True),
     scale=0.3)
case("nn.LSTM", "rnn", normal(6, 2, 3), module=lambda t: t.nn.LSTM(3, 4))
case("nn.LSTM_bidir_2layers", "rnn", normal(2, 5, 3),
     module=lambda t: t.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True))
case("nn.LSTM_h0", "rnn", normals((4, 2, 3), (1, 2, 5), (1, 2, 5)),
     lambda t, m, x, h, c: m(x, (h, c)), module=lambda t: t.nn.LSTM(3, 5))
case("nn.LSTM_unbatched_nobias", "rnn", normal(4, 3),
     module=lambda t: t.nn.LSTM(3, 2, bias=False))
case("nn.GRU", "rnn", normal(5, 2, 3), module=lambda t: t.nn.GRU(3, 4))
case("nn.GRU_bidir_h0", "rnn", normals((4, 3, 2), (2, 3, 3)),
     lambda t, m, x, h: m(x, h), module=lambda t: t.nn.GRU(2, 3, bidirectional=True))
case("nn.RNNCell", "rnn", normals((3, 4), (3, 5)), lambda t, m, x, h: m(x, h),
     module=lambda t: t.nn.RNNCell(4, 5))
case("nn.LSTMCell", "rnn", normals((3, 4), (3, 2), (3, 2)), lambda t, m, x, h, c: m(x, (h, c)),
     module=lambda t: t.nn.LSTMCell(4, 2))
case("nn.LSTMCell_nohx", "rnn", normal(4), module=lambda t: t.nn.LSTMCell(4, 3))
case("nn.GRUCell", "rnn", normals((3, 4), (3, 2)), lambda t, m, x, h: m(x, h),
     module=lambda t: t.nn.GRUCell(4, 2))

# ---- attention -----------------------------------------------------------------------------

case("F.sdpa", "attention", normals((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 4)),
     lambda t, q, k, v: t.nn.functional.scaled_dot_product_attention(q, k, v))
case("F.sdpa_causal", "attention", normals((2, 5, 4), (2, 5, 4), (2, 5, 3)),
     lambda t, q, k, v: t.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
case("F.sdpa_bool_mask_scale", "attention",
     lambda r: [r.standard_normal((2, 3, 4)), r.standard_normal((2, 5, 4)),
                r.standard_normal((2, 5, 4)), r.uniform(0, 1, (3, 5)) > 0.3],
     lambda t, q, k, v, m: t.nn.functional.scaled_dot_product_attention(
         q, k, v, attn_mask=m | t.tensor([True, False, False, False, False]), scale=0.3))
case("F.sdpa_float_mask", "attention", normals((1, 3, 4), (1, 3, 4), (1, 3, 4), (3, 3)),
     lambda t, q, k, v, m: t.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m))
case("nn.MultiheadAttention", "attention", normals((4, 2, 6), (5, 2, 6), (5, 2, 6)),
     lambda t, m, q, k, v: m(q, k, v), module=lambda t: t.nn.MultiheadAttention(6, 2))
case("nn.MultiheadAttention_self_bf_masks", "attention",
     lambda r: [r.standard_normal((2, 4, 6)), np.array([[False, False, False, True],
                                                       [False, False, False, False]])],
     lambda t, m, x, kpm: m(x, x, x, key_padding_mask=kpm,
                            attn_mask=t.triu(t.ones(4, 4, dtype=t.bool), 1)
                            if hasattr(t, "triu") else
                            t.tensor(np.triu(np.ones((4, 4), dtype=bool), 1))),
     module=lambda t: t.nn.MultiheadAttention(6, 3, batch_first=True))
case("nn.MultiheadAttention_no_weights_float_mask", "attention",
     normals((3, 2, 4), (3, 3)),
     lambda t, m, x, mask: m(x, x, x, attn_mask=mask, need_weights=False),
     module=lambda t: t.nn.MultiheadAttention(4, 2))
case("nn.MultiheadAttention_per_head_weights", "attention", normal(3, 4),
     lambda t, m, x: m(x, x, x, average_attn_weights=False),
     module=lambda t: t.nn.MultiheadAttention(4, 2))
case("nn.MultiheadAttention_kdim", "attention", normals((3, 2, 4), (5, 2, 3), (5, 2, 2)),
     lambda t, m, q, k, v: m(q, k, v),
     module=lambda t: t.nn.MultiheadAttention(4, 2, kdim=3, vdim=2))
case("nn.TransformerEncoderLayer", "attention", normal(5, 2, 8),
     module=lambda t: t.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0))
case("nn.TransformerEncoderLayer_norm_first_gelu_bf", "attention",
     lambda r: [r.standard_normal((2, 5, 8)), np.array([[False] * 5, [False] * 3 + [True] * 2])],
     lambda t, m, x, kpm: m(x, src_key_padding_mask=kpm),
     module=lambda t: t.nn.TransformerEncoderLayer(8, 4, 12, dropout=0.0, activation="gelu",
                                                   batch_first=True, norm_first=True))
case("nn.TransformerEncoder", "attention", normals((4, 2, 8), (4, 4)),
     lambda t, m, x, mask: m(x, mask=mask),
     module=lambda t: t.nn.TransformerEncoder(
         t.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, norm=t.nn.LayerNorm(8)))
case("nn.TransformerEncoder_eval", "attention", normal(3, 2, 8),
     module=lambda t: t.nn.TransformerEncoder(
         t.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5), 2), train=False)

# ---- containers and modules ----------------------------------------------------------------


def _param_containers(torch, m, x):
    plist = torch.nn.ParameterList([torch.nn.Parameter(x * 0 + 1.5), x.detach() * 2])
    pdict = torch.nn.ParameterDict({"a": torch.nn.Parameter(x.detach() + 1)})
    return [p * 1 for p in plist] + [pdict["a"] * 3, x * len(plist) + len(pdict)]


case("ParameterList_ParameterDict", "misc", normal(2, 2),
     lambda t, x: _param_containers(t, None, x), grad=False)
case("nn.Linear_3d", "misc", normal(2, 3, 4), module=lambda t: t.nn.Linear(4, 2))
case("nn.Sequential_cnn", "misc", normal(2, 1, 8, 8),
     module=lambda t: t.nn.Sequential(
         t.nn.Conv2d(1, 4, 3, padding=1), t.nn.BatchNorm2d(4), t.nn.ReLU(), t.nn.MaxPool2d(2),
         t.nn.Conv2d(4, 4, 3, padding=1), t.nn.GELU(), t.nn.AdaptiveAvgPool2d(1),
         t.nn.Flatten(), t.nn.Linear(4, 3)))


from tests.api import nn_cases_more  # noqa: E402,F401  (registers more cases)
