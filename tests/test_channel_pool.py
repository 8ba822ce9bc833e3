"""Max pooling across channels (MaxPoolChannels): kernel against its loop twin, float64
gradient checks, PyTorch agreement through an equivalent expression, dtypes, errors."""

import numpy as np
import pytest

import npcnn
from conftest import cupy_or_skip, noncontiguous, torch_or_skip
from npcnn.functional.channel_pool import (
    max_pool_channels_backward,
    max_pool_channels_backward_naive,
    max_pool_channels_forward,
    max_pool_channels_naive,
)
from npcnn.gradcheck import check_module
from npcnn.nn import MaxPoolChannels

# (shape, kernel_size, stride): tiling, overlapping, gapped windows, 2-D to 5-D, odd sizes, batch 1
CONFIGS = [
    ((2, 6, 4, 5), 2, None),
    ((2, 6, 3, 3), 3, None),
    ((1, 7, 3, 4), 3, 2),    # overlapping windows (channels 2 and 4 belong to two each)
    ((2, 8, 5), 2, 3),       # gaps between windows (stride > kernel), 1-D signals
    ((3, 9), 4, 1),          # (N, C) features, stride 1
    ((1, 4, 2, 3, 2), 2, 1), # (N, C, D, H, W)
    ((2, 5, 3, 3), 5, None), # one window over all channels
]


def distinct(shape, seed=0, spacing=0.01):
    """Inputs without ties, spaced by 0.01 >> eps, so each arg-max stays put under the gradcheck."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size).reshape(shape) - size / 2) * spacing


@pytest.mark.parametrize("shape,k,s", CONFIGS)
def test_forward_and_backward_match_the_loop_twins(shape, k, s):
    x = distinct(shape)
    out, cache = max_pool_channels_forward(x, k, s)
    np.testing.assert_array_equal(out, max_pool_channels_naive(x, k, s), err_msg=f"{shape} k={k} s={s}")
    dout = np.random.default_rng(1).standard_normal(out.shape)
    np.testing.assert_allclose(max_pool_channels_backward(dout, cache),
                               max_pool_channels_backward_naive(dout, x, k, s), rtol=0, atol=1e-15,
                               err_msg=f"{shape} k={k} s={s}")


def test_ties_go_to_the_first_channel_and_overlapping_windows_add_up():
    x = np.zeros((1, 3, 1, 1))                      # all tied: channel 0 wins window 0, channel 1 window 1
    out, cache = max_pool_channels_forward(x, 2, 1)
    dx = max_pool_channels_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx[0, :, 0, 0], [1.0, 1.0, 0.0])
    x = np.array([0.0, 5.0, 1.0]).reshape(1, 3, 1, 1)  # channel 1 is the max of both windows
    out, cache = max_pool_channels_forward(x, 2, 1)
    np.testing.assert_array_equal(max_pool_channels_backward(np.array([2.0, 3.0]).reshape(1, 2, 1, 1), cache)
                                  [0, :, 0, 0], [0.0, 5.0, 0.0])


@pytest.mark.parametrize("shape,k,s", CONFIGS)
def test_gradcheck_float64(shape, k, s):
    check_module(MaxPoolChannels(k, s), distinct(shape)).assert_ok()


def test_gradcheck_noncontiguous_input():
    check_module(MaxPoolChannels(2), noncontiguous(distinct((2, 4, 3, 4)))).assert_ok()


def test_the_gradcheck_catches_a_wrong_backward():
    """A test that cannot fail is a defect: route the gradient to the wrong channel and it fails."""
    layer = MaxPoolChannels(2)
    original = layer.backward
    layer.backward = lambda dout: original(dout)[:, ::-1]
    assert not check_module(layer, distinct((2, 4, 3, 3)), copy_module=False).ok


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("shape,k,s", [c for c in CONFIGS if len(c[0]) == 4])
def test_matches_torch_max_pool3d_over_the_channel_axis(shape, k, s, dtype, tol):
    torch = torch_or_skip()
    x = distinct(shape).astype(dtype)
    layer = MaxPoolChannels(k, s)
    out = layer(x)
    dout = np.random.default_rng(2).standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    stride = k if s is None else s
    ref = torch.nn.functional.max_pool3d(xt.unsqueeze(1), (k, 1, 1), (stride, 1, 1)).squeeze(1)
    ref.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


def test_matches_torch_amax_for_maxout_groups():
    torch = torch_or_skip()
    x = distinct((2, 6, 3, 3))
    ref = torch.tensor(x).view(2, 3, 2, 3, 3).amax(2).numpy()
    np.testing.assert_array_equal(MaxPoolChannels(2)(x), ref)


def test_nan_wins_its_window():
    x = np.array([1.0, np.nan, 3.0, 2.0]).reshape(1, 4, 1, 1)
    out = MaxPoolChannels(2)(x)
    assert np.isnan(out[0, 0, 0, 0]) and out[0, 1, 0, 0] == 3.0
    np.testing.assert_array_equal(np.isnan(max_pool_channels_naive(x, 2)), np.isnan(out))


def test_float32_stays_float32():
    layer = MaxPoolChannels(3, 2)
    x = distinct((2, 7, 3, 3)).astype(np.float32)
    out = layer(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == np.float32 and dx.dtype == np.float32 and out.shape == (2, 3, 3, 3)


def test_bad_input_and_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="MaxPoolChannels: kernel_size and stride must be >= 1"):
        MaxPoolChannels(0)
    with pytest.raises(ValueError, match="MaxPoolChannels: input has 2 channels, fewer than the window of 3"):
        MaxPoolChannels(3)(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="MaxPoolChannels: expected input of shape"):
        MaxPoolChannels(2)(np.zeros(4))
    with pytest.raises(TypeError, match="MaxPoolChannels: expected a floating-point input"):
        MaxPoolChannels(2)(np.zeros((1, 4, 2, 2), dtype=np.int64))
    with pytest.raises(RuntimeError):
        MaxPoolChannels(2).backward(np.zeros((1, 2, 2, 2)))


def test_repr():
    assert repr(MaxPoolChannels(3, 2)) == "MaxPoolChannels(kernel_size=3, stride=2)"


@pytest.mark.gpu
def test_on_cupy_matches_numpy():
    cupy = cupy_or_skip()
    x = distinct((2, 7, 3, 4)).astype(np.float32)
    dout = np.random.default_rng(3).standard_normal((2, 3, 3, 4)).astype(np.float32)
    layer = MaxPoolChannels(3, 2)
    expected_out, expected_dx = layer(x), layer.backward(dout)
    with npcnn.use_backend("cupy"):
        out = layer(cupy.asarray(x))
        dx = layer.backward(cupy.asarray(dout))
    assert isinstance(out, cupy.ndarray) and isinstance(dx, cupy.ndarray) and dx.dtype == np.float32
    np.testing.assert_array_equal(cupy.asnumpy(out), expected_out)
    np.testing.assert_array_equal(cupy.asnumpy(dx), expected_dx)
