"""gj.random: counter-based random numbers as values, as jax.random (Threefry-2x32 in IR).

    keys.py         key/PRNGKey, split, fold_in, key_data; Threefry and the random bits
    continuous.py   uniform, normal, truncated_normal, gumbel
    discrete.py     bernoulli, randint, categorical
    shuffle.py      permutation, choice
"""
from tracer.random import continuous, discrete, keys, shuffle
from tracer.random.continuous import *    # noqa: F401,F403
from tracer.random.discrete import *      # noqa: F401,F403
from tracer.random.keys import *          # noqa: F401,F403
from tracer.random.shuffle import *       # noqa: F401,F403

__all__ = keys.__all__ + continuous.__all__ + discrete.__all__ + shuffle.__all__
