"""Dropout layers: inverted scaling, eval identity, edge probabilities, masks, gradients."""

import numpy as np
import pytest

import npcnn
from conftest import noncontiguous
from npcnn.functional.dropout import dropout_forward, dropout_naive
from npcnn.gradcheck import check_module
from npcnn.nn.dropout import Dropout, Dropout2d


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_is_inverted_mean_preserved(p):
    x = np.full((400, 500), 3.0, dtype=np.float32)
    out = Dropout(p)(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 3.0 / (1 - p), rtol=1e-6)  # survivors are scaled up
    assert abs(kept.mean() - (1 - p)) < 0.01  # 200k draws: std of the fraction ~ 1e-3
    assert abs(out.mean() - 3.0) < 0.05


def test_dropout2d_is_inverted_and_drops_whole_channels():
    x = np.ones((200, 100, 3, 4))
    out = Dropout2d(0.3)(x)
    per_channel = out.reshape(200, 100, -1)
    assert (per_channel == per_channel[:, :, :1]).all()  # a channel is kept or dropped as a whole
    assert set(np.unique(per_channel)) == {0.0, 1 / 0.7}
    assert abs(out.mean() - 1.0) < 0.03
    out3 = Dropout2d(0.5)(np.ones((50, 40, 6)))  # (N, C, L): one draw per (n, c), as PyTorch
    assert (out3 == out3[:, :, :1]).all()


@pytest.mark.parametrize("layer_cls", [Dropout, Dropout2d])
def test_eval_is_identity(layer_cls, rng):
    x = rng.standard_normal((2, 3, 4, 4))
    layer = layer_cls(0.5).eval()
    np.testing.assert_array_equal(layer(x), x)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dout), dout)


@pytest.mark.parametrize("layer_cls", [Dropout, Dropout2d])
def test_p_zero_identity_and_p_one_zeros(layer_cls, rng):
    x = rng.standard_normal((2, 3, 4, 4))
    layer = layer_cls(0.0)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)
    layer = layer_cls(1.0)
    with np.errstate(all="raise"):  # no division by zero, no NaN
        out = layer(x)
        dx = layer.backward(np.ones_like(x))
    assert not out.any() and not dx.any()


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_p_outside_unit_interval_is_an_error(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a finite number with 0.0 <= p <= 1.0, got"):
        Dropout(p)
    with pytest.raises(ValueError, match="Dropout2d"):
        Dropout2d(p)


def test_backward_uses_the_forward_mask(rng):
    x = rng.standard_normal((3, 5, 2, 2))
    for layer in (Dropout(0.4), Dropout2d(0.4)):
        out = layer(x)
        dx = layer.backward(np.ones_like(x))
        np.testing.assert_allclose(dx * x, out, atol=1e-15)  # dx = keep / (1 - p) = out / x


def test_mask_is_small_and_seeded(rng):
    x = rng.standard_normal((4, 6))
    npcnn.manual_seed(7)
    first, (keep, scale) = dropout_forward(x, 0.5)
    assert keep.dtype == np.bool_
    npcnn.manual_seed(7)
    again, _ = dropout_forward(x, 0.5)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, dropout_naive(x, keep, 0.5), atol=1e-15)
    assert not np.array_equal(first, dropout_forward(x, 0.5)[0])  # the generator moves on


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 2, 3, 3)])
def test_gradcheck(shape, rng):
    # check_module reseeds npcnn's generator before every forward, so each evaluation sees one mask
    check_module(Dropout(0.3), rng.standard_normal(shape)).assert_ok()
    check_module(Dropout2d(0.5), rng.standard_normal(shape)).assert_ok()
    check_module(Dropout(0.3), noncontiguous(rng.standard_normal(shape))).assert_ok()
    check_module(Dropout2d(0.5), noncontiguous(rng.standard_normal(shape))).assert_ok()


def test_float32_stays_float32(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    for layer in (Dropout(0.3), Dropout2d(0.3), Dropout(1.0)):
        out = layer(x)
        assert out.dtype == np.float32 and layer.backward(np.ones_like(x)).dtype == np.float32


def test_errors(rng):
    with pytest.raises(ValueError, match=r"Dropout2d: expected input of shape \(N, C, H, W\)"):
        Dropout2d()(rng.standard_normal((3, 4)))
    with pytest.raises(TypeError, match="Dropout: expected a floating-point input"):
        Dropout()(np.ones(3, dtype=np.int64))
