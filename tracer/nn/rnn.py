"""Recurrent modules: RNN, LSTM, GRU (num_layers, batch_first, bidirectional, dropout between
layers) and their cells. Each layer and direction runs as one native loop: the input
projection for all steps is one matmul, then `scan` carries the hidden state through the
steps; the whole layer is one autograd node whose backward is the IR autodiff of the scan
(not an unrolled graph)."""
from __future__ import annotations

from tracer.creation import arange, empty, zeros

import math

import tracer.ops as ops
from tracer.control import scan
from tracer.nn import functional as F, init
from tracer.nn.module import Module, Parameter
from tracer.nn.packed import PackedSequence, pad_packed_sequence, repack
from tracer.ops.operands import user_error
from tracer.record import torch_op

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "RNNBase", "RNNCellBase"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _cell(mode: str, xw, h, c, w_hh_t, b_hh, w_hr_t=None):
    """One step: xw is the input projection (with b_ih), w_hh_t is W_hh transposed, w_hr_t
    the LSTM's projection W_hr transposed (proj_size); returns (h', c')."""
    hw = ops.matmul(h, w_hh_t)
    if b_hh is not None:
        hw = hw + b_hh
    if mode == "LSTM":
        i, f, g, o = ops.chunk(xw + hw, 4, -1)
        c2 = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h2 = ops.sigmoid(o) * ops.tanh(c2)
        return (h2 if w_hr_t is None else ops.matmul(h2, w_hr_t)), c2
    if mode == "GRU":
        xr, xz, xn = ops.chunk(xw, 3, -1)
        hr, hz, hn = ops.chunk(hw, 3, -1)
        r, z = ops.sigmoid(xr + hr), ops.sigmoid(xz + hz)
        n = ops.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h, None
    pre = xw + hw
    return (ops.tanh(pre) if mode == "RNN_TANH" else ops.relu(pre)), None


def _project(x, w_ih, b_ih):
    xw = ops.matmul(x, ops.t(w_ih))
    return xw if b_ih is None else xw + b_ih


def _layer(mode: str, reverse: bool):
    """The scan over one layer in one direction, as one autograd node."""
    @torch_op("Rnn" if mode != "LSTM" else "Lstm")
    def run(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None, mask=None):
        xw = _project(x, w_ih, b_ih)                       # (L, N, gates): one matmul
        # NOTE: the weights ride in the carry, unchanged, rather than being closed over: a
        # closed-over lazy tensor (a parameter after .double()) is traced back to its leaves
        # and recomputed inside the loop, and its gradient would miss this node's input
        consts = {"w_hh_t": ops.t(w_hh)}
        if b_hh is not None:
            consts["b_hh"] = b_hh
        if w_hr is not None:
            consts["w_hr_t"] = ops.t(w_hr)

        def step(carry, inputs):
            h, c, weights = carry
            xw_t, m_t = inputs if mask is not None else (inputs, None)
            h2, c2 = _cell(mode, xw_t, h, c, weights["w_hh_t"], weights.get("b_hh"),
                           weights.get("w_hr_t"))
            c2 = c if c2 is None else c2
            if m_t is not None:        # a packed batch: past its length a sequence's state
                h2, c2 = ops.where(m_t, h2, h), ops.where(m_t, c2, c)     # stays as it is
            return (h2, c2, weights), h2
        xs = xw if mask is None else (xw, mask)
        (h_n, c_n, _), ys = scan(step, (h0, c0, consts), xs, reverse=reverse)
        return ys, h_n, c_n
    return run


_RUNNERS = {(m, r): _layer(m, r) for m in _GATES for r in (False, True)}


class RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        gate = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        dirs = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                size_in = input_size if layer == 0 else real_hidden * dirs
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                shapes = [("weight_ih", (gate, size_in)), ("weight_hh", (gate, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate,)), ("bias_hh", (gate,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                for name, shape in shapes:
                    setattr(self, name + sfx, Parameter(empty(*shape, dtype=dtype)))
                    self._flat_weights_names.append(name + sfx)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    @property
    def all_weights(self):
        dirs = 2 if self.bidirectional else 1
        per = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i * per:(i + 1) * per]]
                for i in range(self.num_layers * dirs)]

    def _weights(self, layer: int, d: int):
        sfx = f"_l{layer}" + ("_reverse" if d else "")

        def get(name):
            return getattr(self, name + sfx, None)
        return (get("weight_ih"), get("weight_hh"), get("bias_ih") if self.bias else None,
                get("bias_hh") if self.bias else None, get("weight_hr"))

    def _check_input(self, x):
        if x.ndim not in (2, 3):
            kind = "tensor instead" if self.mode not in ("LSTM", "GRU") else "instead"
            raise user_error(ValueError, f"{self.mode if self.mode in ('LSTM', 'GRU') else 'RNN'}"
                                         f": Expected input to be 2D or 3D, got {x.ndim}D {kind}")
        if x.shape[-1] != self.input_size:
            raise user_error(RuntimeError, f"input.size(-1) must be equal to input_size. "
                                           f"Expected {self.input_size}, got {x.shape[-1]}")

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            padded, lengths = pad_packed_sequence(input)
            steps = arange(padded.shape[0]).reshape(-1, 1, 1)
            mask = ops.lt(steps, lengths.reshape(1, -1, 1))       # (T, N, 1): valid steps
            out, state = self._forward(padded, hx, mask, batch_first=False)
            return repack(out, input), state
        return self._forward(input, hx, None, self.batch_first)

    def _forward(self, input, hx, mask, batch_first: bool):
        x = input
        self._check_input(x)
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif batch_first:
            x = ops.transpose(x, 0, 1)
        n = x.shape[1]
        dirs = 2 if self.bidirectional else 1
        lstm = self.mode == "LSTM"
        state_shape = (self.num_layers * dirs, n, self.proj_size or self.hidden_size)
        cell_shape = (self.num_layers * dirs, n, self.hidden_size)
        if hx is None:
            h0 = zeros(*state_shape, dtype=x.dtype)
            c0 = zeros(*cell_shape, dtype=x.dtype) if lstm else None
        else:
            h0, c0 = hx if lstm else (hx, None)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            named = (("hidden[0]", h0, state_shape), ("hidden[1]", c0, cell_shape)) if lstm \
                else (("hidden", h0, state_shape),)
            for name, t, want in named:
                if tuple(t.shape) != want:
                    raise user_error(RuntimeError, f"Expected {name} size {want}, got "
                                                   f"{list(t.shape)}")
        h_out, c_out = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                c_init = c0[k] if lstm else zeros(n, self.hidden_size, dtype=x.dtype)
                ys, h_n, c_n = _RUNNERS[(self.mode, bool(d))](
                    x, h0[k], c_init, *self._weights(layer, d), mask=mask)
                outs.append(ys)
                h_out.append(h_n)
                c_out.append(c_n)
            x = outs[0] if dirs == 1 else ops.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = ops.stack(h_out, 0)
        c_n = ops.stack(c_out, 0) if lstm else None
        if unbatched:
            x = x.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if lstm else None
        elif batch_first:
            x = ops.transpose(x, 0, 1)
        return x, ((h_n, c_n) if lstm else h_n)

    def flatten_parameters(self) -> None:
        """PyTorch packs cuDNN weights into one buffer here; gradjit's weights need no
        packing, so this does nothing (scripts call it after loading a model)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """LSTM; gates i, f, g, o; returns (output, (h_n, c_n))."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """GRU; gates r, z, n; returns (output, h_n)."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(empty(num_chunks * hidden_size, input_size, dtype=dtype))
        self.weight_hh = Parameter(empty(num_chunks * hidden_size, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _step(self, input, h, c, mode: str):
        if input.ndim not in (1, 2):
            raise user_error(ValueError, f"{type(self).__name__}: Expected input to be 1D or "
                                         f"2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise user_error(RuntimeError, f"input has inconsistent input_size: got "
                                           f"{input.shape[-1]} expected {self.input_size}")
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        shape = (x.shape[0], self.hidden_size)
        h = zeros(*shape, dtype=x.dtype) if h is None else (h.unsqueeze(0) if unbatched else h)
        if mode == "LSTM":
            c = zeros(*shape, dtype=x.dtype) if c is None else (
                c.unsqueeze(0) if unbatched else c)
        xw = _project(x, self.weight_ih, self.bias_ih)
        h2, c2 = _cell(mode, xw, h, c, ops.t(self.weight_hh), self.bias_hh)
        if unbatched:
            h2 = h2.squeeze(0)
            c2 = c2.squeeze(0) if c2 is not None else None
        return h2, c2

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        return s


class RNNCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        return self._step(input, hx, None, mode)[0]


class LSTMCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype=dtype)

    def forward(self, input, hx=None):
        h, c = (None, None) if hx is None else hx
        return self._step(input, h, c, "LSTM")


class GRUCell(RNNCellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step(input, hx, None, "GRU")[0]
