"""TensorType caches its hash (it is a dict key on every hot path): the cached value must
equal the fields' hash, and must never travel in a pickle or copy (str hashes are salted
per process, so a stale one would break dict lookups in another process)."""
import copy
import os
import pickle
import subprocess
import sys

from ir.core import TensorType


def test_hash_is_the_fields_hash_and_equal_types_collide():
    a, b = TensorType("f32", (2, 3)), TensorType("f32", [2, 3])
    assert a == b and hash(a) == hash(b) == hash(("f32", (2, 3)))
    assert {a: 1}[b] == 1


def test_pickle_and_copy_rebuild_through_the_constructor():
    a = TensorType("i64", (4,))
    data = pickle.dumps(a)
    assert b"_hash" not in data
    assert pickle.dumps(TensorType("i64", (4,))) == data    # same bytes for equal types
    for b in (pickle.loads(data), copy.copy(a), copy.deepcopy(a)):
        assert b == a and hash(b) == hash(a) and {a: 1}[b] == 1
    assert repr(a) == "TensorType(dtype='i64', shape=(4,))"


def test_a_pickle_from_another_hash_seed_is_rehashed_here():
    code = ("import pickle, sys; from ir.core import TensorType; "
            "sys.stdout.buffer.write(pickle.dumps(TensorType('f32', (3, 5))))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=root)
    data = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env,
                          check=True, cwd=root).stdout
    t = pickle.loads(data)
    assert hash(t) == hash(("f32", (3, 5)))
    assert {TensorType("f32", (3, 5)): "here"}[t] == "here"
