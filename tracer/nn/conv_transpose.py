"""Transposed convolution and adaptive max pooling modules: ConvTranspose1d/2d (stride,
padding, output_padding or forward's output_size, groups, dilation, bias),
AdaptiveMaxPool1d/2d."""
from __future__ import annotations

from tracer.creation import empty
from tracer.dtypes import Size
from tracer.nn import functional as F
from tracer.nn.conv import _ConvNd, _ntuple
from tracer.nn.module import Module, Parameter
from tracer.ops.operands import user_error

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "MaxUnpool1d", "MaxUnpool2d"]


class _ConvTransposeNd(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__} does not support a padding string")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)
        nd = self._nd
        self.output_padding, self.transposed = _ntuple(output_padding, nd), True
        # weight (C_in, C_out/groups, *k): registered anew over _ConvNd's layout
        self.weight = Parameter(empty(in_channels, out_channels // groups, *self.kernel_size,
                                      dtype=dtype))
        self._parameters.move_to_end("weight", last=False)    # state_dict: weight, bias
        self.reset_parameters()

    def _output_padding(self, input, output_size):
        """PyTorch's rule: the output_padding that makes the output output_size."""
        if output_size is None:
            return self.output_padding
        nd = self._nd
        sizes = [int(v) for v in list(output_size)[-nd:]]
        spatial = Size(input.shape[input.ndim - nd:])
        lows = [(spatial[d] - 1) * self.stride[d] - 2 * self.padding[d]
                + self.dilation[d] * (self.kernel_size[d] - 1) + 1 for d in range(nd)]
        highs = [lo + max(s, d) - 1 for lo, s, d in zip(lows, self.stride, self.dilation)]
        if any(not lo <= v <= hi for v, lo, hi in zip(sizes, lows, highs)):
            raise user_error(ValueError, f"requested an output size of {sizes}, but valid sizes "
                             f"range from {lows} to {highs} (for an input of {spatial})")
        pad = [v - lo for v, lo in zip(sizes, lows)]
        return tuple(pad)

    def forward(self, input, output_size=None):
        conv = F.conv_transpose1d if self._nd == 1 else F.conv_transpose2d
        return conv(input, self.weight, self.bias, self.stride, self.padding,
                    self._output_padding(input, output_size), self.groups, self.dilation)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.output_padding != (0,) * self._nd:
            marker = ", groups=" if self.groups != 1 else (", bias=False" if self.bias is None
                                                          else None)
            text = f", output_padding={self.output_padding}"
            s = s.replace(marker, text + marker, 1) if marker and marker in s else s + text
        return s


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-d convolution of (N, C_in, L) input; weight (C_in, C_out/groups, K)."""
    _nd = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-d convolution of (N, C_in, H, W) input; weight
    (C_in, C_out/groups, KH, KW)."""
    _nd = 2


class _AdaptiveMaxPoolNd(Module):
    def __init__(self, output_size, return_indices: bool = False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class _MaxUnpoolNd(Module):
    _nd = 0

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        nd = self._nd
        self.kernel_size = _ntuple(kernel_size, nd)
        self.stride = _ntuple(stride if stride is not None else kernel_size, nd)
        self.padding = _ntuple(padding, nd)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The inverse of MaxPool1d(return_indices=True): forward(input, indices, output_size)."""
    _nd = 1

    def forward(self, input, indices, output_size=None):
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)


class MaxUnpool2d(_MaxUnpoolNd):
    """The inverse of MaxPool2d(return_indices=True): forward(input, indices, output_size)."""
    _nd = 2

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)
