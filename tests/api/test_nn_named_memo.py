"""Module.parameters()/named_parameters()/named_buffers() remembered per module tree while
no module's tables change (nn.module.GENERATION): every change is seen at the next call."""
import copy

import numpy as np

import gradjit as gj
from tracer.nn import module as module_mod


def _walked(model, table="_parameters"):
    """The pairs without the memo: a fresh walk of the tree."""
    return model._walk_named(table, "", True)


def _same(model):
    for table, named in (("_parameters", model.named_parameters),
                         ("_buffers", model.named_buffers)):
        got, want = list(named()), _walked(model, table)
        assert [n for n, _ in got] == [n for n, _ in want]
        assert all(a is b for (_, a), (_, b) in zip(got, want))
    assert [id(p) for p in model.parameters()] == [id(t) for _, t in _walked(model)]


def test_every_change_of_the_tree_is_seen():
    model = gj.nn.Sequential(gj.nn.Linear(3, 4), gj.nn.ReLU(), gj.nn.Linear(4, 2))
    _same(model)
    generation = module_mod.GENERATION[0]
    list(model.parameters())
    assert module_mod.GENERATION[0] == generation          # reading changes nothing
    model[0].weight = gj.nn.Parameter(gj.randn(4, 3))      # replaced
    _same(model)
    model[2].extra = gj.nn.Parameter(gj.zeros(2))          # added
    _same(model)
    del model[2].extra                                     # removed
    _same(model)
    model[2].bias = None
    _same(model)
    model.append(gj.nn.Linear(2, 2))                       # a new child
    _same(model)
    model[1].register_buffer("scale", gj.ones(3))
    _same(model)
    model[3].weight = model[0].weight                      # shared: listed once
    _same(model)
    assert len(list(model.parameters())) == len({id(p) for p in model.parameters()})
    clone = copy.deepcopy(model)
    _same(clone)
    assert all(a is not b for a, b in zip(clone.parameters(), model.parameters()))
    with gj.no_grad():                                     # values are not the memo's business
        model[0].weight.mul_(2.0)
    np.testing.assert_array_equal(dict(model.named_parameters())["0.weight"].detach().numpy(),
                                  model[0].weight.detach().numpy())


def test_prefix_and_recurse_are_kept_apart():
    model = gj.nn.Sequential(gj.nn.Linear(2, 2), gj.nn.Sequential(gj.nn.Linear(2, 1)))
    assert [n for n, _ in model.named_parameters(prefix="m")][:1] == ["m.0.weight"]
    assert [n for n, _ in model.named_parameters()][:1] == ["0.weight"]
    assert list(model.named_parameters(recurse=False)) == []
    assert len(list(model[1].parameters())) == 2
