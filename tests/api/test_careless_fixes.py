"""What the careless-program sweep (test_careless_programs.py) found and session 21 fixed, one
test per fix, with PyTorch 2.13's classes, texts and values. The file passes under real
PyTorch with the import swapped; under gradjit each error also names this file's line."""
import os
import re
import warnings
from contextlib import contextmanager

import numpy as np
import pytest

import gradjit as torch

nn, F = torch.nn, torch.nn.functional
HERE = os.path.basename(__file__)
GRADJIT = torch.__name__ != "torch"


@contextmanager
def raises(cls, text):
    """PyTorch's class and first line; under gradjit, also the user's line (this file)."""
    with pytest.raises(cls) as info:
        yield
    message = str(info.value)
    assert message.startswith(text) or message.startswith(repr(text)), message
    if GRADJIT and cls is not KeyError:
        assert re.search(rf"\(at {HERE}:\d+\)$", message.splitlines()[0]) or \
            "(at " not in message, message


@contextmanager
def warns_here(text):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    hits = [w for w in caught if str(w.message).startswith(text)]
    assert len(hits) == 1, [str(w.message) for w in caught]
    if GRADJIT:
        assert os.path.basename(hits[0].filename) == HERE


# ---- modules -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value, cls, text", [
    ("a.b", torch.ones(1), KeyError, 'buffer name can\'t contain "."'),
    ("", torch.ones(1), KeyError, 'buffer name can\'t be empty string ""'),
    ("a", 3, TypeError, "cannot assign 'int' object to buffer 'a' (torch Tensor or None "
                        "required)"),
    ("training", torch.ones(1), KeyError, "attribute 'training' already exists"),
])
def test_register_buffer_checks_the_name_and_the_value(name, value, cls, text):
    with raises(cls, text):
        nn.Module().register_buffer(name, value)


def test_register_parameter_wants_a_parameter():
    with raises(TypeError, "cannot assign 'torch.FloatTensor' object to parameter 'w' "
                           "(torch.nn.Parameter or None required)"):
        nn.Module().register_parameter("w", torch.ones(1))
    m = nn.Module()
    m.register_parameter("w", nn.Parameter(torch.ones(1)))
    assert [n for n, _ in m.named_parameters()] == ["w"]


def test_load_state_dict_refuses_a_list_and_returns_a_named_pair():
    m = nn.Linear(2, 3)
    with raises(TypeError, "Expected state_dict to be dict-like, got <class 'list'>."):
        m.load_state_dict([1, 2])
    sd = m.state_dict()
    del sd["bias"]
    sd["extra"] = torch.ones(1)
    missing, unexpected = result = m.load_state_dict(sd, strict=False)
    assert (missing, unexpected) == (["bias"], ["extra"])
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]


def test_named_parameters_lists_shared_ones_again_without_remove_duplicate():
    a = nn.Linear(2, 2)
    m = nn.Sequential(a, nn.ReLU(), a)
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in m.named_parameters(remove_duplicate=False)] == [
        "0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in m.named_modules(remove_duplicate=False)] == ["", "0", "1", "2"]


def test_a_module_list_takes_only_modules():
    with raises(TypeError, "int is not a Module subclass"):
        nn.ModuleList().append(3)


# ---- layers --------------------------------------------------------------------------------

@pytest.mark.parametrize("x, bias, text", [
    (torch.ones(2, 4, dtype=torch.long), True,
     "mat1 and mat2 must have the same dtype, but got Long and Float"),
    (torch.ones(2, 4, dtype=torch.float64), True,
     "mat1 and mat2 must have the same dtype, but got Double and Float"),
    (torch.ones(2, 4, dtype=torch.float64), False,
     "expected m1 and m2 to have the same dtype, but got: double != float"),
    (torch.ones(2, 2, 4, dtype=torch.long), True,
     "mat1 and mat2 must have the same dtype, but got Long and Float"),
    (torch.ones(4, dtype=torch.float64), True,
     "mat1 and mat2 must have the same dtype, but got Double and Float"),
    (torch.ones(2, 2, 4, dtype=torch.long), False,
     "expected m1 and m2 to have the same dtype, but got: long int != float"),
])
def test_linear_refuses_an_input_of_another_dtype(x, bias, text):
    """gradjit computed these with type promotion."""
    with raises(RuntimeError, text):
        nn.Linear(4, 3, bias=bias)(x)


def test_linear_refuses_a_0d_input():
    with raises(RuntimeError, "both arguments to linear need to be at least 1D, but they are "
                              "0D and 2D"):
        nn.Linear(1, 3)(torch.tensor(1.0))


@pytest.mark.parametrize("pool, shape, text", [
    (nn.MaxPool2d(4), (1, 1, 3, 3),
     "Given input size: (1x3x3). Calculated output size: (1x0x0). Output size is too small"),
    (nn.MaxPool2d(2, stride=1, dilation=3), (1, 1, 3, 3),
     "Given input size: (1x3x3). Calculated output size: (1x0x0). Output size is too small"),
    (nn.AvgPool2d(4), (2, 3, 3), "Given input size: (2x3x3). Calculated output size: "
                                 "(2x0x0). Output size is too small"),
    (nn.AvgPool1d(4), (1, 1, 3),
     "Given input size: (1x1x3). Calculated output size: (1x1x0). Output size is too small"),
    (nn.MaxPool1d(4), (1, 1, 3), "max_pool1d() Invalid computed output size: 0"),
])
def test_a_pooling_window_larger_than_the_input_is_refused(pool, shape, text):
    """gradjit returned an empty tensor."""
    with raises(RuntimeError, text):
        pool(torch.ones(*shape))
    nd = 1 if "1d" in type(pool).__name__ else 2
    fits = pool(torch.ones(*shape[:-nd], *(4,) * nd))                # a window that just fits
    assert tuple(fits.shape[-nd:]) == (1,) * nd


@pytest.mark.parametrize("kwargs, cls, text", [
    (dict(attn_mask=torch.zeros(3, 3, dtype=torch.long)), AssertionError,
     "only bool and floating types of attn_mask are supported"),
    (dict(key_padding_mask=torch.zeros(1, 3, dtype=torch.long)), AssertionError,
     "only bool and floating types of key_padding_mask are supported"),
    (dict(key_padding_mask=torch.zeros(2, 3, dtype=torch.bool)), AssertionError,
     "Expected key_padded_mask.shape[0] to be 1, but got 2"),
    (dict(key_padding_mask=torch.zeros(1, 2, dtype=torch.bool)), AssertionError,
     "Expected key_padded_mask.shape[1] to be 3, but got 2"),
    (dict(attn_mask=torch.zeros(5, 3, 3)), RuntimeError,
     "The shape of the 3D attn_mask is torch.Size([5, 3, 3]), but should be (2, 3, 3)."),
    (dict(attn_mask=torch.zeros(3, dtype=torch.bool)), AssertionError,
     "For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found 1-D "
     "tensor instead"),
])
def test_multihead_attention_checks_its_masks(kwargs, cls, text):
    """An integer mask was added to the scores; a mask of a wrong shape raised a reshape
    error."""
    m = nn.MultiheadAttention(4, 2)
    x = torch.ones(3, 1, 4)
    with raises(cls, text):
        m(x, x, x, **kwargs)


def test_multihead_attention_still_takes_a_float_3d_mask():
    torch.manual_seed(0)
    m = nn.MultiheadAttention(4, 2)
    x = torch.randn(3, 1, 4)
    mask = torch.zeros(2, 3, 3)
    mask[:, :, 2] = float("-inf")                   # no query sees the third key
    out, weights = m(x, x, x, attn_mask=mask)
    assert np.abs(weights[0, :, 2].detach().numpy()).max() == 0
    two_keys, _ = m(x, x[:2], x[:2])
    assert np.allclose(out.detach().numpy(), two_keys.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("bn, shape", [(nn.BatchNorm2d(3), (2, 5, 2, 2)),
                                       (nn.BatchNorm1d(3).eval(), (4, 5))])
def test_batch_norm_with_a_wrong_channel_count(bn, shape):
    with raises(RuntimeError, "running_mean should contain 5 elements not 3"):
        bn(torch.ones(*shape))


def test_recurrent_layers_name_the_hidden_state_and_the_rank():
    h, c = torch.zeros(1, 1, 4), torch.zeros(1, 1, 5)
    with raises(RuntimeError, "Expected hidden[1] size (1, 1, 4), got [1, 1, 5]"):
        nn.LSTM(3, 4)(torch.ones(2, 1, 3), (h, c))
    with raises(RuntimeError, "Expected hidden[0] size (1, 1, 4), got [1, 1, 5]"):
        nn.LSTM(3, 4)(torch.ones(2, 1, 3), (c, h))
    with raises(RuntimeError, "Expected hidden size (1, 1, 4), got [1, 2, 4]"):
        nn.GRU(3, 4)(torch.ones(2, 1, 3), torch.zeros(1, 2, 4))
    with raises(ValueError, "LSTM: Expected input to be 2D or 3D, got 4D instead"):
        nn.LSTM(3, 4)(torch.ones(2, 1, 3, 1))
    with raises(ValueError, "RNN: Expected input to be 2D or 3D, got 4D tensor instead"):
        nn.RNN(3, 4)(torch.ones(2, 1, 3, 1))


# ---- losses --------------------------------------------------------------------------------

LOGITS = [[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]


def test_label_smoothing_above_1_is_refused_and_a_negative_one_ignored():
    x, t = torch.tensor(LOGITS), torch.tensor([1, 0])
    with raises(RuntimeError, "label_smoothing must be between 0.0 and 1.0. Got: 1.5"):
        F.cross_entropy(x, t, label_smoothing=1.5)
    plain = F.cross_entropy(x, t).item()
    assert F.cross_entropy(x, t, label_smoothing=-0.5).item() == pytest.approx(plain, 1e-6)
    probs = x.softmax(1)
    assert F.cross_entropy(x, probs, label_smoothing=-0.1).item() == \
        pytest.approx(F.cross_entropy(x, probs).item(), 1e-6)
    # a smoothing in range still counts: -(0.8 log p_t + 0.2 mean_c log p_c)
    logp = np.log(np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True))
    want = -(0.8 * logp[[0, 1], [1, 0]] + 0.2 * logp.mean(1)).mean()
    assert F.cross_entropy(x, t, label_smoothing=0.2).item() == pytest.approx(want, 1e-5)


@pytest.mark.parametrize("x, t, cls, text", [
    (torch.ones(2, 3), torch.tensor([0, 1], dtype=torch.int32), RuntimeError,
     "expected target dtype to be Long or Byte, but got Int"),
    (torch.ones(2, 3), torch.ones(2), RuntimeError,
     "expected target dtype to be Long or Byte, but got Float"),
    (torch.ones(2, 3), torch.ones(2, 4), RuntimeError,
     "0D or 1D target tensor expected, multi-target not supported"),
    (torch.ones(2, 3), torch.tensor([0, 1, 2]), ValueError,
     "Expected input batch_size (2) to match target batch_size (3)."),
    (torch.ones(2, 3, 4), torch.ones(2, 5, dtype=torch.long), RuntimeError,
     "Expected target size [2, 4], got [2, 5]"),
    (torch.ones(3), torch.ones(2, dtype=torch.long), ValueError,
     "For 1D input, 1D target must have size 1, but got target size: 2"),
    (torch.ones(2, 3), torch.ones(2, 3, dtype=torch.long), RuntimeError,
     "Expected floating point type for target with class probabilities, got Long"),
    (torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 1]), NotImplementedError,
     "\"log_softmax_lastdim_kernel_impl\" not implemented for 'Long'"),
])
def test_cross_entropy_targets_and_inputs_of_a_wrong_kind(x, t, cls, text):
    """Integer inputs and int32 targets were computed; the rest raised gradjit's own
    classes and texts."""
    with raises(cls, text):
        F.cross_entropy(x, t)


def test_nll_loss_takes_a_1d_input_with_a_target_of_one_element():
    x = torch.tensor([-1.0, -2.0, -3.0])
    assert F.nll_loss(x, torch.tensor([1])).item() == 2.0
    assert F.nll_loss(x, torch.tensor(2)).item() == 3.0
    with raises(NotImplementedError, "\"nll_loss_out_frame\" not implemented for 'Long'"):
        F.nll_loss(torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 1]))


@pytest.mark.parametrize("x, t, cls, text", [
    (torch.tensor([0.5, 0.2]), torch.tensor([1, 0]), RuntimeError,
     "Found dtype Long but expected Float"),
    (torch.tensor([0.5, 0.2]), torch.tensor([1.0, 0.0], dtype=torch.float64), RuntimeError,
     "Found dtype Double but expected Float"),
    (torch.tensor([1, 0]), torch.tensor([1, 0]), NotImplementedError,
     "\"binary_cross_entropy\" not implemented for 'Long'"),
    (torch.tensor([1.5, 0.2]), torch.tensor([1.0, 0.0]), RuntimeError,
     "all elements of input should be between 0 and 1"),
    (torch.tensor([0.5, float("nan")]), torch.tensor([1.0, 0.0]), RuntimeError,
     "all elements of input should be between 0 and 1"),
    (torch.tensor([0.5, 0.2]), torch.tensor([1.5, 0.0]), RuntimeError,
     "all elements of target should be between 0 and 1"),
])
def test_binary_cross_entropy_checks_dtypes_and_known_values(x, t, cls, text):
    """A target of 1.5 gave a number, an input of 1.5 gave nan."""
    with raises(cls, text):
        F.binary_cross_entropy(x, t)


def test_binary_cross_entropy_checks_the_values_of_every_call():
    """The second call of a loop, with bad values, is refused too (op memo / step replay)."""
    good = torch.tensor([0.25, 0.75])
    for step in range(4):
        target = torch.tensor([1.0, 0.0]) if step < 3 else torch.tensor([2.0, 0.0])
        if step < 3:
            want = -(np.log(0.25) + np.log(0.25)) / 2
            assert F.binary_cross_entropy(good, target).item() == pytest.approx(want, 1e-6)
        else:
            with raises(RuntimeError, "all elements of target should be between 0 and 1"):
                F.binary_cross_entropy(good, target)


def test_mse_loss_warns_of_broadcasting_at_every_call_site():
    for _ in range(3):                                       # also the replayed calls
        with warns_here("Using a target size (torch.Size([3])) that is different to the "
                        "input size (torch.Size([3, 1]))"):
            v = F.mse_loss(torch.ones(3, 1), torch.zeros(3))
        assert v.item() == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(torch.ones(3), torch.zeros(3))


# ---- optimizers ----------------------------------------------------------------------------

def test_a_parameter_listed_twice_warns_and_gradjit_refuses_its_step():
    w = nn.Parameter(torch.ones(2))
    with warns_here("optimizer contains a parameter group with duplicate parameters"):
        opt = torch.optim.SGD([w, w], lr=0.1)
    (w * w).sum().backward()
    if GRADJIT:          # PyTorch updates it once per listing; gradjit does not guess
        with raises(NotImplementedError, "gradjit's optimizers do not step a parameter "
                                         "listed twice"):
            opt.step()
        assert w.tolist() == [1.0, 1.0]


def test_a_scheduler_stepped_before_its_optimizer_warns_once():
    w = nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    with warns_here("Detected call of `lr_scheduler.step()` before `optimizer.step()`."):
        sched.step()
        sched.step()
    w2 = nn.Parameter(torch.ones(2))
    opt2 = torch.optim.Adam([w2], lr=0.1)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, 1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            (w2 * w2).sum().backward()
            opt2.step()
            sched2.step()
    assert opt2.param_groups[0]["lr"] == 0.0125


# ---- data, save and load -------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, -1, True, 2.0])
def test_a_data_loader_wants_a_positive_batch_size(size):
    with raises(ValueError, f"batch_size should be a positive integer value, but got "
                            f"batch_size={size}"):
        torch.utils.data.DataLoader(list(range(5)), batch_size=size)


def test_an_iterable_dataset_cannot_be_shuffled():
    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            return iter(range(3))
    with raises(ValueError, "DataLoader with IterableDataset: expected unspecified shuffle "
                            "option, but got shuffle=True"):
        torch.utils.data.DataLoader(Stream(), shuffle=True)
    assert [b.tolist() for b in torch.utils.data.DataLoader(Stream(), batch_size=2)] == \
        [[0, 1], [2]]


def test_default_collate_refuses_what_it_cannot_collate():
    with raises(TypeError, "default_collate: batch must contain tensors, numpy arrays, "
                           "numbers, dicts or lists; found <class 'NoneType'>"):
        next(iter(torch.utils.data.DataLoader([None, None], batch_size=2)))
    words = next(iter(torch.utils.data.DataLoader(["a", "b"], batch_size=2)))
    assert words == ["a", "b"]


@pytest.mark.parametrize("fractions, index", [([1.2, -0.2], 0), ([0.5, 0.75, -0.25], 2)])
def test_random_split_checks_its_fractions(fractions, index):
    with raises(ValueError, f"Fraction at index {index} is not between 0 and 1"):
        torch.utils.data.random_split(range(10), fractions)


def test_save_to_a_missing_directory_and_load_of_a_missing_file(tmp_path):
    target = tmp_path / "no" / "model.pt"
    with raises(RuntimeError, f"Parent directory {tmp_path / 'no'} does not exist."):
        torch.save({"a": torch.ones(1)}, str(target))
    with pytest.raises(FileNotFoundError):
        torch.load(str(tmp_path / "missing.pt"))
    torch.save({"a": torch.ones(1)}, str(tmp_path / "here.pt"))
    assert torch.load(str(tmp_path / "here.pt"))["a"].tolist() == [1.0]
