"""The op surface (docs/api.md section 3): free functions, and Tensor operators and methods.

Free functions take Tensors, NumPy arrays and Python scalars; each records IR primitives
through tracer.record.apply and is wrapped in @torch_op with PyTorch's backward node name
(`fn.torch_name`). tracer/surface.py attaches them to Tensor as operators and methods.

    elementwise.py    arithmetic, unary math, maximum/minimum, where, clamp, pow
    compare.py        comparisons, logical ops
    bitwise.py        integer bit ops: bitwise_and/or/xor/not, shifts (& | ^ ~ << >>)
    convert.py        dtype conversions (.float(), .to(), .type_as()): Tensor methods
    reduce.py         sum mean max min prod var std logsumexp argmax amax ...
    linalg.py         matmul/@ mm bmm mv dot outer tensordot
    contraction.py    einsum over any number of operands
    shape.py          reshape view transpose permute expand squeeze cat stack split ...
    indexing.py       gather index_select index_add scatter_add (+ index helpers)
    getitem.py        x[key]: basic and advanced indexing
    nn_functional.py  softmax log_softmax cross_entropy nll_loss mse_loss ...
    rounding.py       floor ceil trunc round frac, // (floor_divide), % (remainder), fmod
    special.py        asin.. atanh, log2 log10 exp2, atan2, erfc erfinv lgamma digamma polygamma
    special_math.py   logaddexp hypot lerp heaviside sinc xlogy logit nan_to_num isclose clip
    structural.py     tril triu diag diagonal trace flip roll tile repeat meshgrid pad
    cumulative.py     cumsum cumprod cummax cummin logcumsumexp
    sorting.py        sort argsort msort topk kthvalue
    quantiles.py      median quantile nanquantile
    eager_only.py     nonzero argwhere unique masked_select bincount count_nonzero
    jax_nn.py         segment_sum one_hot gelu (JAX spellings), logsumexp's b= / return_sign=
    scatter_fill.py   scatter index_fill unfold rsub, Tensor.real / .imag
    operands.py       operands as Tensors: dtype promotion, broadcasting, axis checks, errors
    numpy_spellings.py  dot transpose split tensordot take_along_axis astype as NumPy spells them
                      (they replace their PyTorch namesakes, which they call for PyTorch's form)
"""
from tracer.ops import (bitwise, compare, contraction, cumulative, eager_only, elementwise,
                        getitem, indexing, jax_nn, linalg, nn_functional, numpy_spellings,
                        quantiles, reduce, rounding, scatter_fill, shape, sorting, special,
                        special_math, structural)
from tracer.ops.bitwise import *          # noqa: F401,F403
from tracer.ops.compare import *          # noqa: F401,F403
from tracer.ops.contraction import *      # noqa: F401,F403
from tracer.ops.cumulative import *       # noqa: F401,F403
from tracer.ops.eager_only import *       # noqa: F401,F403
from tracer.ops.elementwise import *      # noqa: F401,F403
from tracer.ops.indexing import *         # noqa: F401,F403
from tracer.ops.jax_nn import *           # noqa: F401,F403
from tracer.ops.linalg import *           # noqa: F401,F403
from tracer.ops.nn_functional import *    # noqa: F401,F403
from tracer.ops.quantiles import *         # noqa: F401,F403
from tracer.ops.reduce import *           # noqa: F401,F403
from tracer.ops.rounding import *         # noqa: F401,F403
from tracer.ops.shape import *            # noqa: F401,F403
from tracer.ops.sorting import *          # noqa: F401,F403
from tracer.ops.special import *          # noqa: F401,F403
from tracer.ops.special_math import *     # noqa: F401,F403
from tracer.ops.structural import *       # noqa: F401,F403
from tracer.ops.scatter_fill import *     # noqa: F401,F403
from tracer.ops.numpy_spellings import *  # noqa: F401,F403  (last: replaces namesakes)
from tracer.ops.operands import result_type  # noqa: F401

_MODULES = (elementwise, compare, bitwise, reduce, linalg, contraction, shape, indexing,
            nn_functional, rounding, structural, cumulative, sorting, quantiles, eager_only,
            jax_nn, special, special_math, scatter_fill, numpy_spellings)

# nn_functional re-exports relu/sigmoid/tanh/logsumexp; list each public name once
__all__ = list(dict.fromkeys(
    [name for m in _MODULES for name in m.__all__] + ["result_type"]))
assert getitem          # x[key] is Tensor.__getitem__ only, as in PyTorch
