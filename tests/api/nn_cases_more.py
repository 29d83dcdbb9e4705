"""More nn cases (transposed convolution, adaptive max pooling, the transformer decoder, ...)
registered into tests/api/nn_cases.py's CASES and nn_cases_text.py's REPRS (the same
recording and checking path: record_nn.py, nn_check.py). Never imports torch."""
from __future__ import annotations

from tests.api.nn_cases import case, normal, normals
from tests.api.nn_cases_text import ERRORS, REPRS

# ---- transposed convolution, adaptive max pooling ------------------------------------------

case("F.conv_transpose1d", "conv_transpose", normals((2, 4, 5), (4, 3, 3), (3,)),
     lambda t, x, w, b: t.nn.functional.conv_transpose1d(x, w, b, stride=2, padding=1,
                                                         output_padding=1))
case("F.conv_transpose1d_unbatched", "conv_transpose", normals((4, 5), (4, 2, 2)),
     lambda t, x, w: t.nn.functional.conv_transpose1d(x, w, stride=3))
case("F.conv_transpose2d_groups", "conv_transpose", normals((1, 4, 4, 3), (4, 3, 3, 2), (6,)),
     lambda t, x, w, b: t.nn.functional.conv_transpose2d(
         x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2,
         dilation=(1, 2)))
case("F.conv_transpose2d_crop", "conv_transpose", normals((1, 2, 3, 3), (2, 2, 2, 2)),
     lambda t, x, w: t.nn.functional.conv_transpose2d(x, w, padding=1))
case("nn.ConvTranspose2d", "conv_transpose", normal(2, 3, 4, 4),
     module=lambda t: t.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1))
case("nn.ConvTranspose1d_groups", "conv_transpose", normal(2, 4, 5),
     module=lambda t: t.nn.ConvTranspose1d(4, 6, 3, groups=2, bias=False, dilation=2))
case("nn.ConvTranspose2d_output_size", "conv_transpose", normal(1, 2, 4, 4),
     lambda t, m, x: m(x, output_size=[8, 8]),
     module=lambda t: t.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1))
case("nn.AdaptiveMaxPool1d", "conv_transpose", normal(2, 3, 7),
     module=lambda t: t.nn.AdaptiveMaxPool1d(3))
case("nn.AdaptiveMaxPool2d", "conv_transpose", normal(1, 2, 5, 7),
     module=lambda t: t.nn.AdaptiveMaxPool2d((2, 3)))
case("F.adaptive_max_pool2d_none", "conv_transpose", normal(2, 5, 4),
     lambda t, x: t.nn.functional.adaptive_max_pool2d(x, (3, None)))

REPRS.update({
    "ConvTranspose2d": lambda t: t.nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1,
                                                      output_padding=1),
    "ConvTranspose1d": lambda t: t.nn.ConvTranspose1d(4, 6, 3, groups=2, bias=False,
                                                      output_padding=1, stride=2),
    "AdaptiveMaxPool2d": lambda t: t.nn.AdaptiveMaxPool2d((2, 3)),
})
ERRORS.update({
    "conv_transpose_channels": lambda t: t.nn.functional.conv_transpose2d(
        t.ones(1, 3, 4, 4), t.ones(2, 3, 3, 3)),
    "conv_transpose_output_size": lambda t: t.nn.ConvTranspose2d(2, 3, 3, stride=2)(
        t.ones(1, 2, 4, 4), output_size=[20, 20]),
})
