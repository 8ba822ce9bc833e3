"""Residual, Add, Concat and SqueezeExcitation: gradient sums over branches, shapes, PyTorch."""

import numpy as np
import pytest

from conftest import noncontiguous, torch_or_skip
from npcnn.gradcheck import check_module
from npcnn.nn import Identity, Linear, Module, ReLU, Sequential
from npcnn.nn.blocks import SqueezeExcitation
from npcnn.nn.composition import Add, Concat, Residual
from npcnn.nn.dropout import Dropout, Dropout2d
from npcnn.nn.norm import BatchNorm2d, GroupNorm, LayerNorm, LocalResponseNorm
from npcnn.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, LPPool2d, MaxPool2d


class Scale(Module):
    """out = c x (a test body with a known derivative c)."""

    def __init__(self, c):
        super().__init__()
        self.c = c

    def forward(self, x):
        self.save_for_backward(True)
        return self.c * x

    def backward(self, dout):
        self.pop_saved()
        return self.c * dout


# ----------------------------------------------------------------------------- Residual


def test_residual_identity_adds_one_to_the_body_gradient(rng):
    x, dout = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    for c in (0.0, 1e-8, 2.5):  # even a vanishing body gradient leaves the "+1" path
        block = Residual(Scale(c))
        np.testing.assert_allclose(block(x), c * x + x)
        np.testing.assert_allclose(block.backward(dout), dout * (c + 1.0))


def test_residual_with_shortcut_sums_both_paths(rng):
    x, dout = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    block = Residual(Scale(2.0), shortcut=Scale(-0.5))
    np.testing.assert_allclose(block(x), 1.5 * x)
    np.testing.assert_allclose(block.backward(dout), 1.5 * dout)
    assert [name for name, _ in block.named_children()] == ["body", "shortcut"]


def test_residual_gradcheck(rng, float64):
    body = Sequential(BatchNorm2d(3), ReLU(), MaxPool2d(3, 1, 1))
    x = rng.standard_normal((2, 3, 5, 4))
    check_module(Residual(body), x).assert_ok()
    check_module(Residual(body, shortcut=BatchNorm2d(3)), noncontiguous(x)).assert_ok()
    check_module(Residual(Sequential(Linear(4, 6), ReLU(), Linear(6, 4)), Linear(4, 4)),
                 rng.standard_normal((1, 4))).assert_ok()


def test_residual_shape_mismatch_is_an_error(rng):
    with pytest.raises(ValueError, match="Residual: body output of shape"):
        Residual(MaxPool2d(2))(rng.standard_normal((1, 1, 4, 4)))


# ----------------------------------------------------------------------------- Add and Concat


def test_add_gradcheck_with_broadcasting(rng):
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 1))
    out = Add()(a, b)
    np.testing.assert_array_equal(out, a + b)
    check_module(Add(), a, b).assert_ok()
    layer = Add()
    layer(a, b)
    da, db = layer.backward(np.ones((2, 3, 4)))
    np.testing.assert_array_equal(db, np.full((3, 1), 8.0))
    assert da.shape == a.shape


def test_concat_splits_dout_and_sums_branch_gradients(rng):
    x = rng.standard_normal((2, 3, 4))
    block = Concat(Scale(2.0), Identity(), Scale(-1.0))
    out = block(x)
    assert out.shape == (2, 9, 4)
    np.testing.assert_array_equal(out[:, 3:6], x)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(block.backward(dout), 2 * dout[:, :3] + dout[:, 3:6] - dout[:, 6:])


def test_concat_gradcheck(rng, float64):
    x = rng.standard_normal((2, 4, 5, 5))
    inception = Concat(MaxPool2d(3, 1, 1), AvgPool2d(3, 1, 1, count_include_pad=False),
                       Sequential(BatchNorm2d(4), ReLU()), GroupNorm(2, 4))
    check_module(inception, x).assert_ok()
    dense = Concat(Identity(), Sequential(LocalResponseNorm(3), Dropout2d(0.3)))  # DenseNet: x with new features
    check_module(dense, noncontiguous(x)).assert_ok()
    check_module(Concat(LayerNorm(5), Identity(), dim=-1), x[:1]).assert_ok()


def test_concat_names_and_errors(rng):
    from collections import OrderedDict

    block = Concat(OrderedDict(branch1x1=BatchNorm2d(2), branch_pool=MaxPool2d(3, 1, 1)))
    assert list(block.state_dict())[:2] == ["branch1x1.weight", "branch1x1.bias"]
    with pytest.raises(ValueError, match="Concat: branch '1' output shape"):
        Concat(Identity(), MaxPool2d(2))(rng.standard_normal((1, 2, 4, 4)))


# ----------------------------------------------------------------------------- dout is never modified


def test_no_backward_modifies_dout_even_when_shared_by_branches(rng, float64):
    """One dout array feeds every layer of this area as parallel branches; all must leave it alone."""
    x = np.abs(rng.standard_normal((2, 4, 6, 6))) + 0.5
    layers = [MaxPool2d(3, 1, 1), MaxPool2d(1), AvgPool2d(3, 1, 1), AvgPool2d(1), LPPool2d(2, 1),
              AdaptiveAvgPool2d(6), BatchNorm2d(4), BatchNorm2d(4).eval(), GroupNorm(2, 4), LayerNorm(6),
              LocalResponseNorm(3), Dropout(0.5), Dropout(0.0), Dropout2d(0.5), Dropout2d(0.5).eval(),
              Residual(BatchNorm2d(4)), Residual(Identity()), SqueezeExcitation(4, 2),
              Concat(Identity(), Identity(), dim=0)]
    dout = rng.standard_normal(x.shape)
    original = dout.copy()
    for layer in layers:
        out = layer(x)
        shared = dout if out.shape == dout.shape else np.concatenate([dout, dout], axis=0)
        before = shared.copy()
        layer.backward(shared)
        np.testing.assert_array_equal(shared, before, err_msg=repr(layer))
    block = Concat(*[layer for layer in layers if not isinstance(layer, Concat)])
    out = block(x)
    dout_wide = rng.standard_normal(out.shape)
    kept = dout_wide.copy()
    block.backward(dout_wide)
    np.testing.assert_array_equal(dout_wide, kept)
    np.testing.assert_array_equal(dout, original)
    check_module(GlobalAvgPool2d(), x).assert_ok()  # check_module asserts the same for its dout


# ----------------------------------------------------------------------------- Squeeze-and-Excitation


@pytest.mark.parametrize("shape, reduction", [((2, 8, 5, 3), 4), ((1, 3, 2, 2), 16), ((2, 6, 1, 1), 2)])
def test_se_gradcheck(shape, reduction, rng, float64):
    layer = SqueezeExcitation(shape[1], reduction)
    check_module(layer, rng.standard_normal(shape)).assert_ok()
    check_module(layer, noncontiguous(rng.standard_normal(shape))).assert_ok()


def test_se_structure_and_gate(rng):
    layer = SqueezeExcitation(32, reduction=8)
    assert (layer.fc1.in_features, layer.fc1.out_features, layer.fc2.out_features) == (32, 4, 32)
    assert list(layer.state_dict()) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert SqueezeExcitation(3, reduction=16).fc1.out_features == 1  # at least one hidden unit
    x = rng.standard_normal((2, 32, 3, 3)).astype(np.float32)
    out = layer(x)
    ratio = out / x  # one gate in (0, 1) per (sample, channel)
    assert out.dtype == np.float32 and layer.backward(np.ones_like(x)).dtype == np.float32
    assert ((ratio > 0) & (ratio < 1)).all()
    np.testing.assert_allclose(ratio, ratio[:, :, :1, :1] * np.ones_like(ratio), rtol=1e-5)
    with pytest.raises(ValueError, match=r"SqueezeExcitation: expected channels \(dimension 1\) = 32"):
        layer(x[:, :16])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_se_matches_pytorch(dtype, tol, rng):
    torch = torch_or_skip()
    layer = SqueezeExcitation(8, reduction=2).to(dtype)
    w1, b1, w2, b2 = (torch.tensor(v, requires_grad=True) for v in layer.state_dict().values())
    x = rng.standard_normal((3, 8, 4, 5)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    s = torch.sigmoid(torch.relu(xt.mean(dim=(2, 3)) @ w1.T + b1) @ w2.T + b2)
    t_out = xt * s[:, :, None, None]
    out = layer(x)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.tensor(dout))
    np.testing.assert_allclose(layer.backward(dout), xt.grad.numpy(), rtol=tol, atol=tol)
    for param, t_param in zip(layer.parameters(), (w1, b1, w2, b2)):
        np.testing.assert_allclose(param.grad, t_param.grad.numpy(), rtol=tol, atol=tol)
