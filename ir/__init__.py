"""gradjit's IR: types, SSA values and ops, the primitive registry, and what works on them."""
from ir.core import (DTYPES, FLOAT_DTYPES, INT_DTYPES, Function, Op, TensorType, Value,
                     dtype_of_numpy, is_float, walk_ops)
from ir.primitives import PRIMITIVES, Primitive, ShapeError
from ir.builder import Builder
from ir.parser import ParseError, parse
from ir.verify import VerifyError, verify

__all__ = ["DTYPES", "FLOAT_DTYPES", "INT_DTYPES", "Function", "Op", "TensorType", "Value",
           "dtype_of_numpy", "is_float", "walk_ops", "PRIMITIVES", "Primitive", "ShapeError",
           "Builder", "ParseError", "parse", "VerifyError", "verify"]
