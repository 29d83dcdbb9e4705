"""Threefry-2x32 keys as values (jax.random's key, split, fold_in, random bits), in IR.

A key is an int32 tensor of shape (2,) holding the bits of JAX's uint32[2] key (gradjit has
no unsigned dtype: int32 add wraps and the shifts are logical, so the bits are the same;
`np.asarray(key).view(np.uint32)` is JAX's key). Every function records IR primitives, so
inside `jit` the numbers are computed per call from the key, natively or in the interpreter,
with identical bits. Derivation follows JAX's "partitionable" Threefry (its default since
0.5): split(key, n)[i] == fold_in(key, i) == threefry(key, (0, i)), and the bits of an array
of shape s are threefry(key, (hi, lo) of each element's flat index), xored.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from tracer.ops.operands import cast, constant, dtype_of, to_tensor, user_error
from tracer.ops.shape import stack
from tracer.record import apply
from tracer.tensor import Tensor

__all__ = ["key", "PRNGKey", "split", "fold_in", "key_data"]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _i32(v: int) -> int:
    """The int32 holding the 32 bits of v."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _const(v: int, like: Tensor) -> Tensor:
    return constant(_i32(v), "i32", like.shape)


def _rotl(x: Tensor, r: int) -> Tensor:
    return apply("bitwise_or", apply("shift_left", x, _const(r, x)),
                 apply("shift_right_logical", x, _const(32 - r, x)))


def threefry2x32(k0: Tensor, k1: Tensor, c0: Tensor, c1: Tensor) -> tuple[Tensor, Tensor]:
    """Threefry-2x32 with 20 rounds (Random123) of counters (c0, c1) under key (k0, k1); the
    key words are 0-d and broadcast over the counters' shape."""
    shape = tuple(c0.shape)
    ks = [apply("broadcast_in_dim", k, shape=shape, dims=()) for k in (k0, k1)]
    ks.append(apply("bitwise_xor", apply("bitwise_xor", ks[0], ks[1]), _const(_PARITY, c0)))
    x0, x1 = apply("add", c0, ks[0]), apply("add", c1, ks[1])
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = apply("add", x0, x1)
            x1 = apply("bitwise_xor", _rotl(x1, r), x0)
        x0 = apply("add", x0, ks[(block + 1) % 3])
        x1 = apply("add", apply("add", x1, ks[(block + 2) % 3]), _const(block + 1, x1))
    return x0, x1


def as_key(k) -> Tensor:
    """k as an int32[2] key tensor (a uint32 NumPy key, as JAX's, is read as its bits)."""
    if isinstance(k, np.ndarray) and k.dtype == np.uint32:
        k = k.view(np.int32)
    t = to_tensor(k)
    if tuple(t.shape) != (2,) or dtype_of(t) != "i32":
        raise user_error(TypeError, f"a random key is an int32 tensor of shape (2,) (from "
                                    f"gj.random.key(seed)), got {dtype_of(t)}{list(t.shape)}"
                                    "; map over a batch of keys with vmap")
    return t


def _words(k: Tensor) -> tuple[Tensor, Tensor]:
    w = [apply("reshape", apply("slice", k, start=(i,), limit=(i + 1,), stride=(1,)), shape=())
         for i in (0, 1)]
    return w[0], w[1]


def key(seed) -> Tensor:
    """A key from an integer seed (jax.random.key / PRNGKey): [0, seed] for a 32-bit seed,
    [high word, low word] for a 64-bit one. A traced int seed is allowed."""
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        seed = int(seed)
        if -(1 << 31) <= seed < 1 << 31:
            words = [0, _i32(seed)]
        elif -(1 << 63) <= seed < 1 << 64:
            words = [_i32(seed >> 32), _i32(seed)]
        else:
            raise user_error(OverflowError, f"seed {seed} does not fit in 64 bits")
        return to_tensor(np.array(words, np.int32))
    t = to_tensor(seed)
    if t.ndim != 0 or dtype_of(t) not in ("i32", "i64"):
        raise user_error(TypeError, f"a seed is an integer scalar, got {dtype_of(t)}"
                                    f"{list(t.shape)}")
    if dtype_of(t) == "i32":
        return stack([constant(0, "i32"), t])
    high = apply("shift_right_logical", t, constant(32, "i64"))
    return stack([cast(high, "i32"), cast(t, "i32")])


PRNGKey = key


def key_data(k) -> Tensor:
    """The key's words (a key is its data here: jax.random.key_data)."""
    return as_key(k)


def _flat_counters(shape) -> tuple[Tensor, Tensor]:
    """(high, low) words of each element's flat index, in C order (JAX's iota_2x32_shape)."""
    n = math.prod(shape)
    if n >= 1 << 31:
        raise user_error(ValueError, f"random arrays of {n} elements are not supported")
    low = apply("reshape", apply("iota", dtype="i32", shape=(n,), dim=0), shape=tuple(shape))
    return constant(0, "i32", shape), low


def threefry_at(k, shape) -> tuple[Tensor, Tensor]:
    """Both Threefry output words for every element of an array of the given shape."""
    k0, k1 = _words(as_key(k))
    return threefry2x32(k0, k1, *_flat_counters(shape))


def split(k, num=2) -> Tensor:
    """num new keys (num an int or a shape), stacked: shape (*num, 2)."""
    shape = (num,) if isinstance(num, (numbers.Integral, np.integer)) else tuple(num)
    b0, b1 = threefry_at(k, shape)
    return stack([b0, b1], len(shape))


def fold_in(k, data) -> Tensor:
    """A new key from k and an integer (a Python int or a traced int scalar)."""
    k0, k1 = _words(as_key(k))
    if isinstance(data, (numbers.Integral, np.integer)):
        d = constant(_i32(int(data)), "i32")
    else:
        d = to_tensor(data)
        if d.ndim != 0 or dtype_of(d) not in ("i32", "i64"):
            raise user_error(TypeError, "fold_in data must be an integer scalar")
        d = cast(d, "i32")
    b0, b1 = threefry2x32(k0, k1, constant(0, "i32"), d)
    return stack([b0, b1])


def random_bits(k, bit_width: int, shape) -> Tensor:
    """Random bits (JAX's _random_bits): int32 words for 32, int64 for 64."""
    b0, b1 = threefry_at(k, shape)
    if bit_width == 32:
        return apply("bitwise_xor", b0, b1)
    high = apply("shift_left", cast(b0, "i64"), constant(32, "i64", b0.shape))
    low = apply("bitwise_and", cast(b1, "i64"), constant(0xFFFFFFFF, "i64", b1.shape))
    return apply("bitwise_or", high, low)
