"""Recurrent modules: RNN/LSTM/GRU (layers, batch_first, bidirectional, dropout between
layers) and their cells; each layer runs as one scan (one autograd node, one native loop),
equal to PyTorch 2.13 and to finite differences."""
import numpy as np
import pytest

import gradjit as gj
from tests.api.nn_cases_text import REPRS
from tests.api.nn_check import RECORDED, check_case, check_error, names
from tests.gradcheck import check_grads
from tracer.nn.rnn import _RUNNERS

nn = gj.nn


@pytest.mark.parametrize("name", names("rnn"))
def test_matches_pytorch(name):
    check_case(name)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
@pytest.mark.parametrize("reverse", [False, True])
def test_layer_scan_finite_differences(mode, reverse):
    gates = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1}[mode] * 3
    r = np.random.default_rng(6)
    args = [r.standard_normal(s) * 0.5 for s in
            [(4, 2, 2), (2, 3), (2, 3), (gates, 2), (gates, 3), (gates,), (gates,)]]
    run = _RUNNERS[(mode, reverse)]
    fn = gj.make_ir(lambda *a: run(*a))(*args)
    assert str(fn).count(" scan ") == 1
    check_grads(fn, args, modes=("rev",))


def test_one_node_per_layer_and_direction_not_unrolled():
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    out, (h, c) = lstm(gj.randn(7, 2, 3))
    seen, stack, nodes = set(), [out.grad_fn, h.grad_fn, c.grad_fn], []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        nodes.append(type(node).__name__)
        stack += [n for n, _ in node.next_functions]
    assert nodes.count("LstmBackward0") == 4           # 2 layers x 2 directions, any length
    short = str(gj.make_ir(lambda x: lstm(x)[0])(np.ones((3, 2, 3), np.float32)))
    long = str(gj.make_ir(lambda x: lstm(x)[0])(np.ones((50, 2, 3), np.float32)))
    assert long.count(" scan ") == short.count(" scan ") == 4
    assert len(long.splitlines()) == len(short.splitlines())


def test_training_through_an_lstm_reduces_the_loss():
    gj.manual_seed(0)
    lstm, head = nn.LSTM(2, 8, batch_first=True), nn.Linear(8, 1)
    params = list(lstm.parameters()) + list(head.parameters())
    opt = gj.optim.Adam(params, lr=0.05)
    x = gj.randn(4, 6, 2)
    target = x.sum((1, 2)).unsqueeze(1)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        out, _ = lstm(x)
        loss = ((head(out[:, -1]) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_dropout_between_layers_only_in_training():
    gj.manual_seed(1)
    gru = nn.GRU(3, 5, num_layers=2, dropout=0.5)
    x = gj.randn(4, 2, 3)
    gru.eval()
    a, b = gru(x)[0].tolist(), gru(x)[0].tolist()
    assert a == b
    gru.train()
    assert gru(x)[0].tolist() != a


def test_state_dict_names():
    keys = list(nn.LSTM(3, 4, num_layers=2, bidirectional=True).state_dict())
    assert keys[:8] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse",
                        "bias_hh_l0_reverse"]
    assert keys[8] == "weight_ih_l1" and tuple(nn.LSTM(3, 4, num_layers=2, bidirectional=True)
                                                .weight_ih_l1.shape) == (16, 8)
    assert list(nn.GRUCell(2, 3).state_dict()) == ["weight_ih", "weight_hh", "bias_ih",
                                                   "bias_hh"]


@pytest.mark.parametrize("name", ["lstm_input_size", "rnn_nonlinearity"])
def test_error_texts(name):
    check_error(name)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN", "LSTMCell", "GRUCell"])
def test_repr(name):
    assert repr(REPRS[name](gj)) == RECORDED["reprs"][name]
