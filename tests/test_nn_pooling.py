"""Pooling layers: gradient checks, PyTorch agreement, dtypes, errors."""

import numpy as np
import pytest

import npcnn
from conftest import noncontiguous, torch_or_skip
from npcnn.gradcheck import check_module
from npcnn.nn.pooling import (
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool2d,
    LPPool1d,
    LPPool2d,
    MaxPool1d,
    MaxPool2d,
)


def distinct(shape, rng, spacing=0.01):
    """Inputs without ties for max pooling: a permutation spaced by 0.01 >> eps = 1e-6, so the
    arg-max is unique and stays put under the gradcheck's perturbations."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * spacing


MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1)),
    dict(kernel_size=2, stride=1, dilation=2, ceil_mode=True),
]
AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), ceil_mode=True, count_include_pad=False),
]
SHAPES = [(2, 3, 7, 8), (1, 2, 5, 5)]  # odd sizes, batch 1


# ----------------------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("kwargs", MAX2D)
@pytest.mark.parametrize("shape", SHAPES)
def test_maxpool2d_gradcheck(kwargs, shape, rng):
    check_module(MaxPool2d(**kwargs), distinct(shape, rng)).assert_ok()


@pytest.mark.parametrize("kwargs", AVG2D)
@pytest.mark.parametrize("shape", SHAPES)
def test_avgpool2d_gradcheck(kwargs, shape, rng):
    check_module(AvgPool2d(**kwargs), rng.standard_normal(shape)).assert_ok()


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1, dilation=2),
                                    dict(kernel_size=2, ceil_mode=True), dict(kernel_size=3, stride=1)])
def test_maxpool1d_gradcheck(kwargs, rng):
    check_module(MaxPool1d(**kwargs), distinct((2, 3, 11), rng)).assert_ok()


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                                    dict(kernel_size=2, ceil_mode=True), dict(kernel_size=4, stride=1, padding=2)])
def test_avgpool1d_gradcheck(kwargs, rng):
    check_module(AvgPool1d(**kwargs), rng.standard_normal((2, 3, 11))).assert_ok()


@pytest.mark.parametrize("norm_type, kwargs", [(2, dict(kernel_size=2)),
                                               (3, dict(kernel_size=3, stride=2, ceil_mode=True)),
                                               (1.5, dict(kernel_size=(2, 3), stride=1))])
def test_lppool2d_gradcheck(norm_type, kwargs, rng):
    x = rng.uniform(0.5, 2.0, (2, 3, 7, 8))  # positive: x^p real and the window sums away from 0
    check_module(LPPool2d(norm_type, **kwargs), x).assert_ok()


@pytest.mark.parametrize("size", [1, 3, (2, 5), (None, 3), (7, 8)])
def test_adaptive_avgpool2d_gradcheck(size, rng):
    check_module(AdaptiveAvgPool2d(size), rng.standard_normal((2, 3, 7, 8))).assert_ok()


def test_global_avgpool2d_gradcheck(rng):
    check_module(GlobalAvgPool2d(), rng.standard_normal((2, 3, 5, 7))).assert_ok()
    check_module(GlobalAvgPool2d(), rng.standard_normal((1, 1, 1, 1))).assert_ok()


def test_noncontiguous_inputs(rng):
    x = distinct((2, 3, 7, 8), rng)
    for layer, data in [(MaxPool2d(3, 2, 1), x), (AvgPool2d(3, 2, 1), x), (AdaptiveAvgPool2d(3), x),
                        (GlobalAvgPool2d(), x), (LPPool2d(2, 2), x + 100.0), (MaxPool2d(2), x)]:
        view = noncontiguous(data)
        check_module(layer, view).assert_ok()
        np.testing.assert_array_equal(layer(view), layer(np.ascontiguousarray(view)))
    check_module(MaxPool1d(3, 2, 1), noncontiguous(distinct((2, 3, 9), rng))).assert_ok()
    check_module(AvgPool1d(3, 2, 1), noncontiguous(rng.standard_normal((2, 3, 9)))).assert_ok()


# ----------------------------------------------------------------------------- PyTorch agreement


def _torch_compare(torch, layer, t_layer, x, rng, tol):
    xt = torch.tensor(x, requires_grad=True)
    out = layer(x)
    t_out = t_layer(xt)
    if isinstance(t_out, tuple):
        np.testing.assert_array_equal(out[1], t_out[1].numpy())
        out, t_out = out[0], t_out[0]
    assert out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(x.dtype)
    t_out.backward(torch.tensor(dout))
    dx = layer.backward(dout)
    assert dx.dtype == x.dtype
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_pooling_matches_pytorch(dtype, tol, rng):
    torch = torch_or_skip()
    nn = torch.nn
    x = distinct((2, 3, 9, 7), rng).astype(dtype)
    for kwargs in MAX2D:
        _torch_compare(torch, MaxPool2d(**kwargs, return_indices=True), nn.MaxPool2d(**kwargs, return_indices=True),
                       x, rng, tol)
    for kwargs in AVG2D:
        _torch_compare(torch, AvgPool2d(**kwargs), nn.AvgPool2d(**kwargs), x, rng, tol)
    for size in [1, 3, (2, 5), (None, 4), (9, 7), (4, 3)]:
        _torch_compare(torch, AdaptiveAvgPool2d(size), nn.AdaptiveAvgPool2d(size), x, rng, tol)
    _torch_compare(torch, GlobalAvgPool2d(), nn.AdaptiveAvgPool2d(1), x, rng, tol)
    positive = (x - x.min() + 0.5).astype(dtype)
    for norm_type, kwargs in [(2, dict(kernel_size=2)), (3, dict(kernel_size=3, stride=2, ceil_mode=True)),
                              (1.5, dict(kernel_size=(2, 3), stride=1))]:
        _torch_compare(torch, LPPool2d(norm_type, **kwargs), nn.LPPool2d(norm_type, **kwargs), positive, rng, tol)
    x1 = x.reshape(2, 3, 63)
    for kwargs in [dict(kernel_size=3, stride=2, padding=1, dilation=2), dict(kernel_size=4, ceil_mode=True)]:
        _torch_compare(torch, MaxPool1d(**kwargs, return_indices=True), nn.MaxPool1d(**kwargs, return_indices=True),
                       x1, rng, tol)
    for kwargs in [dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                   dict(kernel_size=4, ceil_mode=True)]:
        _torch_compare(torch, AvgPool1d(**kwargs), nn.AvgPool1d(**kwargs), x1, rng, tol)


# ----------------------------------------------------------------------------- dtype, layout, errors


def test_float32_stays_float32(rng):
    x = distinct((2, 3, 8, 8), rng).astype(np.float32)
    for layer in [MaxPool2d(2), MaxPool2d(3, 2, 1), AvgPool2d(2), AvgPool2d(3, 2, 1), LPPool2d(2, 2),
                  AdaptiveAvgPool2d((3, 5)), GlobalAvgPool2d()]:
        data = np.abs(x) + 1 if isinstance(layer, LPPool2d) else x
        out = layer(data)
        assert out.dtype == np.float32, type(layer).__name__
        assert layer.backward(np.ones_like(out)).dtype == np.float32, type(layer).__name__
    x1 = x.reshape(2, 3, 64)
    for layer in [MaxPool1d(3, 2, 1), AvgPool1d(3, 2, 1)]:
        out = layer(x1)
        assert out.dtype == np.float32 and layer.backward(np.ones_like(out)).dtype == np.float32


def test_layout_is_nchw_pooling_over_the_last_two_axes(rng):
    x = rng.standard_normal((2, 3, 4, 6))
    out = MaxPool2d(2)(x)
    assert out.shape == (2, 3, 2, 3)
    np.testing.assert_array_equal(out, x.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5)))
    assert MaxPool1d(2)(x[:, :, 0]).shape == (2, 3, 3)


def test_return_indices_format(rng):
    x = distinct((1, 1, 4, 4), rng)
    out, index = MaxPool2d(2, return_indices=True)(x)
    np.testing.assert_array_equal(x.reshape(1, 1, 16)[0, 0, index.reshape(-1)], out.reshape(-1))
    assert index.dtype == np.int64


def test_errors_name_the_layer(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"MaxPool2d: expected input of shape \(N, C, H, W\)"):
        MaxPool2d(2)(x[0])
    with pytest.raises(ValueError, match="MaxPool1d"):
        MaxPool1d(2)(x)
    with pytest.raises(ValueError, match="AvgPool2d: input of spatial size"):
        AvgPool2d(5)(x)  # kernel larger than the (padded) input
    with pytest.raises(ValueError, match="MaxPool2d: .*smaller than the"):
        MaxPool2d(3, dilation=2)(x)  # dilated kernel spans 5 > 4
    with pytest.raises(ValueError, match="at most half the kernel"):
        AvgPool2d(2, padding=2)(x)
    with pytest.raises(TypeError, match="AvgPool2d: expected a floating-point input"):
        AvgPool2d(2)(np.ones((1, 1, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d"):
        AdaptiveAvgPool2d(2)(x[0])


def test_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="MaxPool2d.backward"):
        MaxPool2d(2).backward(np.zeros((1, 1, 1, 1)))


def test_no_parameters_and_pytorch_attributes():
    layer = MaxPool2d(3)
    assert layer.stride == 3 and layer.padding == 0 and layer.dilation == 1 and not layer.ceil_mode
    assert list(layer.state_dict()) == [] and npcnn.nn.Module.num_parameters(layer) == 0


# ----------------------------------------------------------------------------- regressions (issue 14)


@pytest.mark.parametrize("kwargs,shape,noncontig", [
    (dict(kernel_size=3, stride=4, padding=1, dilation=3, ceil_mode=True), (2, 5, 5, 2), False),
    (dict(kernel_size=3, stride=3, padding=1, dilation=2, ceil_mode=True), (3, 3, 6, 1), True),
])
def test_max_pool_window_without_input_passes_no_gradient(float64, rng, kwargs, shape, noncontig):
    """ceil_mode + dilation can give windows whose taps all fall in the padding: output -inf,
    index -1, no gradient (the loop twin used to add it to the last pixel; PyTorch sends it to an
    index outside the window)."""
    from npcnn.functional.pooling import max_pool2d_backward_naive, max_pool2d_naive

    x = rng.standard_normal(shape)
    if noncontig:
        x = noncontiguous(x)
    layer = MaxPool2d(**kwargs, return_indices=True)
    out, index = layer(x)
    ref, ref_index = max_pool2d_naive(x, **kwargs)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(index, ref_index)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx, max_pool2d_backward_naive(dout, ref_index, x.shape))
    empty = np.isneginf(out)
    assert empty.any() and np.all(index[empty] == -1)
    assert not dx.any() if empty.all() else dx.any()


# ----------------------------------------------------------------------------- constructor checks (issue 15)


@pytest.mark.parametrize("error,make,message", [
    (ValueError, lambda: MaxPool2d(0), r"MaxPool2d: kernel_size must be >= 1, got 0"),
    (ValueError, lambda: MaxPool2d(-2), r"MaxPool2d: kernel_size must be >= 1, got -2"),
    (TypeError, lambda: MaxPool2d(2, stride=2.5), r"MaxPool2d: stride must be an int or a tuple of 2 ints, got 2.5"),
    (ValueError, lambda: MaxPool2d(2, stride=0), r"MaxPool2d: stride must be >= 1, got 0"),
    (ValueError, lambda: MaxPool2d(3, padding=-1), r"MaxPool2d: padding must be >= 0, got -1"),
    (ValueError, lambda: MaxPool2d(3, padding=2), r"MaxPool2d: padding \(2, 2\) must be at most half the kernel size"),
    (ValueError, lambda: MaxPool2d(3, dilation=0), r"MaxPool2d: dilation must be >= 1, got 0"),
    (TypeError, lambda: MaxPool2d("3"), r"MaxPool2d: kernel_size must be an int or a tuple of 2 ints, got '3'"),
    (ValueError, lambda: MaxPool1d((2, 2)), r"MaxPool1d: kernel_size must be an int, got \(2, 2\)"),
    (ValueError, lambda: MaxPool1d(2, stride=0), r"MaxPool1d: stride must be >= 1, got 0"),
    (ValueError, lambda: AvgPool2d(0), r"AvgPool2d: kernel_size must be >= 1, got 0"),
    (TypeError, lambda: AvgPool2d(2, stride=1.5), r"AvgPool2d: stride must be an int or a tuple of 2 ints"),
    (ValueError, lambda: AvgPool2d(2, padding=2), r"AvgPool2d: padding \(2, 2\) must be at most half"),
    (ValueError, lambda: AvgPool1d(3, padding=-1), r"AvgPool1d: padding must be >= 0, got -1"),
    (ValueError, lambda: LPPool2d(2, 0), r"LPPool2d: kernel_size must be >= 1, got 0"),
    (ValueError, lambda: LPPool2d(0, 2), r"LPPool2d: norm_type must be a finite number with 0 < norm_type, got 0"),
    (ValueError, lambda: LPPool2d(float("nan"), 2), r"LPPool2d: norm_type must be a finite .* got nan"),
    (ValueError, lambda: LPPool1d(2, 3, stride=-1), r"LPPool1d: stride must be >= 1, got -1"),
    (ValueError, lambda: AdaptiveAvgPool2d(0), r"AdaptiveAvgPool2d: output_size must be an int >= 1"),
    (ValueError, lambda: AdaptiveAvgPool2d((2, -1)), r"AdaptiveAvgPool2d: output_size must be an int >= 1"),
    (TypeError, lambda: AdaptiveAvgPool2d(2.5), r"AdaptiveAvgPool2d: output_size must be an int >= 1"),
    (ValueError, lambda: AdaptiveAvgPool2d((1, 2, 3)), r"AdaptiveAvgPool2d: output_size must be an int >= 1"),
])
def test_constructor_errors_name_class_argument_and_allowed_values(error, make, message):
    with pytest.raises(error, match=message):
        make()


def test_lppool1d_gradcheck_and_float32(rng):
    x = np.abs(rng.standard_normal((2, 3, 9))) + 0.5
    for layer in (LPPool1d(2, 3), LPPool1d(1.5, 2, stride=1, ceil_mode=True), LPPool1d(3, 4, 3, ceil_mode=True)):
        check_module(layer, x).assert_ok()
    out = LPPool1d(2, 2)(x.astype(np.float32))
    assert out.dtype == np.float32 and out.shape == (2, 3, 4)


@pytest.mark.parametrize("make", [
    lambda t: t.MaxPool2d(2), lambda t: t.MaxPool2d((3, 2), stride=(2, 1), padding=1, dilation=2, ceil_mode=True),
    lambda t: t.MaxPool1d(3, 2, 1), lambda t: t.AvgPool2d(3, 2, 1), lambda t: t.AvgPool2d((2, 3)),
    lambda t: t.AvgPool1d(3), lambda t: t.AvgPool1d(4, 2, 1, ceil_mode=True), lambda t: t.LPPool2d(2, 3),
    lambda t: t.LPPool2d(1.5, (2, 3), stride=1), lambda t: t.LPPool1d(2, 3, 2),
    lambda t: t.AdaptiveAvgPool2d((None, 4)), lambda t: t.AdaptiveAvgPool2d(1),
])
def test_repr_matches_pytorch(make):
    torch = torch_or_skip()
    assert repr(make(npcnn.nn)) == repr(make(torch.nn))
