"""Normalization layers: gradient checks (train and eval), running statistics, PyTorch agreement."""

import numpy as np
import pytest

from conftest import noncontiguous, torch_or_skip
from npcnn.functional import norm as Fn
from npcnn.gradcheck import check_module
from npcnn.nn.norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, LocalResponseNorm


def randomize_affine(layer, rng):
    """Non-trivial gamma/beta so their gradients and the gamma factor in dx are exercised."""
    for param in layer.parameters():
        param.data = rng.standard_normal(param.shape).astype(param.dtype)
    return layer


def randomize_running(layer, rng):
    layer.running_mean = rng.standard_normal(layer.num_features).astype(layer.running_mean.dtype)
    layer.running_var = rng.uniform(0.5, 2.0, layer.num_features).astype(layer.running_var.dtype)
    return layer


# ----------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 2, 3, 5), (3, 4, 1, 1)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm2d_gradcheck_train(shape, affine, rng, float64):
    layer = randomize_affine(BatchNorm2d(shape[1], affine=affine), rng)
    check_module(layer, rng.standard_normal(shape) * 2 + 1).assert_ok()


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 2, 3, 5)])
def test_batchnorm2d_gradcheck_eval(shape, rng, float64):
    layer = randomize_running(randomize_affine(BatchNorm2d(shape[1]), rng), rng).eval()
    check_module(layer, rng.standard_normal(shape)).assert_ok()


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 7), (3, 3, 1)])  # (2, C) would give xhat = +-1, dx ~ 0
def test_batchnorm1d_gradcheck(shape, rng, float64):
    layer = randomize_affine(BatchNorm1d(shape[1]), rng)
    check_module(layer, rng.standard_normal(shape)).assert_ok()
    check_module(randomize_running(layer, rng).eval(), rng.standard_normal(shape)).assert_ok()


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval(rng, float64):
    layer = randomize_affine(BatchNorm2d(3, track_running_stats=False), rng).eval()
    x = rng.standard_normal((4, 3, 2, 3))
    plain = BatchNorm2d(3, affine=False, track_running_stats=False)(x)
    expected = plain * layer.weight.data.reshape(1, 3, 1, 1) + layer.bias.data.reshape(1, 3, 1, 1)
    np.testing.assert_allclose(layer(x), expected, atol=1e-12)
    check_module(layer, x).assert_ok()
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_batchnorm_noncontiguous(rng, float64):
    x = noncontiguous(rng.standard_normal((3, 2, 4, 5)))
    check_module(randomize_affine(BatchNorm2d(2), rng), x).assert_ok()
    check_module(BatchNorm1d(2), noncontiguous(rng.standard_normal((3, 2, 5)))).assert_ok()


def test_batchnorm2d_normalizes_each_channel_over_n_h_w(rng, float64):
    # channels with very different scales: each must come out with mean 0 and variance 1 over (N, H, W)
    scale, shift = np.array([1.0, 10.0, 0.1]).reshape(1, 3, 1, 1), np.array([0.0, 5.0, -3.0]).reshape(1, 3, 1, 1)
    x = rng.standard_normal((4, 3, 5, 6)) * scale + shift
    out = BatchNorm2d(3, eps=1e-30)(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1.0, atol=1e-12)
    # not per sample and not per position: those statistics are not normalized
    assert np.abs(out.mean(axis=(1, 2, 3))).max() > 1e-3
    np.testing.assert_allclose(out, Fn.batch_norm_naive(x, None, None, 1e-30), atol=1e-12)


def test_batchnorm_loop_twin(rng, float64):
    x = rng.standard_normal((3, 4, 2, 5))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    out, *_ = Fn.batch_norm_train_forward(x, gamma, beta, 1e-5)
    np.testing.assert_allclose(out, Fn.batch_norm_naive(x, gamma, beta, 1e-5), atol=1e-12)


def test_running_stats_use_unbiased_variance_and_momentum(rng, float64):
    layer = BatchNorm2d(2, momentum=0.25)
    x = rng.standard_normal((3, 2, 2, 2)) * 3 + 1
    layer(x)
    mean = x.mean(axis=(0, 2, 3))
    unbiased = x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(layer.running_mean, 0.75 * 0.0 + 0.25 * mean, atol=1e-14)
    np.testing.assert_allclose(layer.running_var, 0.75 * 1.0 + 0.25 * unbiased, atol=1e-14)
    assert layer.num_batches_tracked.dtype == np.int64 and int(layer.num_batches_tracked) == 1


def test_momentum_none_is_a_cumulative_average(rng, float64):
    layer = BatchNorm1d(3, momentum=None)
    batches = [rng.standard_normal((5, 3)) + i for i in range(4)]
    for x in batches:
        layer(x)
    np.testing.assert_allclose(layer.running_mean, np.mean([b.mean(axis=0) for b in batches], axis=0), atol=1e-12)
    np.testing.assert_allclose(layer.running_var, np.mean([b.var(axis=0, ddof=1) for b in batches], axis=0), atol=1e-12)
    assert int(layer.num_batches_tracked) == 4


def test_eval_uses_running_stats_and_does_not_update_them(rng, float64):
    layer = randomize_running(BatchNorm2d(2), rng).eval()
    before = layer.running_mean.copy(), layer.running_var.copy()
    x = rng.standard_normal((2, 2, 3, 3))
    out = layer(x)
    expected = (x - before[0].reshape(1, 2, 1, 1)) / np.sqrt(before[1].reshape(1, 2, 1, 1) + 1e-5)
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, before[0])
    assert int(layer.num_batches_tracked) == 0
    # eval-mode backward is the affine map dout * gamma / sqrt(running_var + eps)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout), dout / np.sqrt(before[1].reshape(1, 2, 1, 1) + 1e-5), atol=1e-12)


def test_batchnorm_state_dict_keys_match_pytorch():
    layer = BatchNorm2d(4)
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(BatchNorm2d(4, affine=False).state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    torch = torch_or_skip()
    t_state = torch.nn.BatchNorm2d(4).state_dict()
    assert list(t_state) == list(layer.state_dict())
    for key, value in t_state.items():
        assert tuple(value.shape) == tuple(layer.state_dict()[key].shape)
    layer.load_state_dict({k: v.numpy() for k, v in t_state.items()})


@pytest.mark.parametrize("cls, shape", [("BatchNorm2d", (4, 3, 5, 6)), ("BatchNorm1d", (6, 3)),
                                        ("BatchNorm1d", (4, 3, 7))])
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_batchnorm_matches_pytorch_over_steps(cls, shape, momentum, dtype, tol, rng):
    torch = torch_or_skip()
    layer = randomize_affine({"BatchNorm2d": BatchNorm2d, "BatchNorm1d": BatchNorm1d}[cls](3, momentum=momentum), rng)
    layer.to(dtype)
    t_layer = getattr(torch.nn, cls)(3, momentum=momentum).to(torch.float64 if dtype == np.float64 else torch.float32)
    t_layer.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    for step in range(3):
        for mode in ("train", "eval") if step == 2 else ("train",):
            layer.train(mode == "train"), t_layer.train(mode == "train")
            x = (rng.standard_normal(shape) * 2 + step).astype(dtype)
            xt = torch.tensor(x, requires_grad=True)
            out, t_out = layer(x), t_layer(xt)
            np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
            dout = rng.standard_normal(shape).astype(dtype)
            t_out.backward(torch.tensor(dout))
            layer.zero_grad()
            dx = layer.backward(dout)
            assert dx.dtype == dtype and layer.weight.grad.dtype == dtype
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)
            np.testing.assert_allclose(layer.weight.grad, t_layer.weight.grad.numpy(), rtol=tol, atol=tol * 10)
            np.testing.assert_allclose(layer.bias.grad, t_layer.bias.grad.numpy(), rtol=tol, atol=tol * 10)
            t_layer.zero_grad()
    for key, value in t_layer.state_dict().items():
        np.testing.assert_allclose(layer.state_dict()[key], value.numpy(), rtol=tol, atol=tol)
    assert layer.running_mean.dtype == dtype


def test_batchnorm_errors(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected num_features \(dimension 1\) = 4"):
        BatchNorm2d(4)(x)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input of shape \(N, C, H, W\)"):
        BatchNorm2d(3)(x[0])
    with pytest.raises(ValueError, match="BatchNorm1d"):
        BatchNorm1d(3)(x)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm1d(3)(x[:1, :, 0, 0])
    with pytest.raises(TypeError, match="BatchNorm2d: input dtype float64"):
        BatchNorm2d(3)(x.astype(np.float64))
    out = BatchNorm1d(3).eval()(x[:1, :, 0, 0])  # one sample is fine in eval mode
    assert out.shape == (1, 3)


# ----------------------------------------------------------------------------- layer norm, group norm


@pytest.mark.parametrize("shape, normalized", [((2, 3, 4, 5), (4, 5)), ((3, 7), 7), ((1, 2, 3, 5), (2, 3, 5))])
def test_layernorm_gradcheck(shape, normalized, rng, float64):
    layer = randomize_affine(LayerNorm(normalized), rng)
    check_module(layer, rng.standard_normal(shape)).assert_ok()
    check_module(LayerNorm(normalized, elementwise_affine=False), noncontiguous(rng.standard_normal(shape))).assert_ok()
    check_module(randomize_affine(LayerNorm(normalized, bias=False), rng), rng.standard_normal(shape)).assert_ok()


@pytest.mark.parametrize("groups, channels, shape", [(3, 6, (2, 6, 4, 5)), (1, 4, (1, 4, 3, 3)), (4, 4, (2, 4, 5)),
                                                     (2, 6, (3, 6))])
def test_groupnorm_gradcheck(groups, channels, shape, rng, float64):
    layer = randomize_affine(GroupNorm(groups, channels), rng)
    check_module(layer, rng.standard_normal(shape)).assert_ok()
    check_module(GroupNorm(groups, channels, affine=False), noncontiguous(rng.standard_normal(shape))).assert_ok()


def test_layer_and_group_norm_loop_twins(rng, float64):
    x = rng.standard_normal((2, 6, 3, 4))
    gamma, beta = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    out, _ = Fn.layer_norm_forward(x, 2, gamma, beta, 1e-5)
    np.testing.assert_allclose(out, Fn.layer_norm_naive(x, 2, gamma, beta, 1e-5), atol=1e-12)
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    out, _ = Fn.group_norm_forward(x, 3, gamma, beta, 1e-5)
    np.testing.assert_allclose(out, Fn.group_norm_naive(x, 3, gamma, beta, 1e-5), atol=1e-12)


# ----------------------------------------------------------------------------- local response norm


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_lrn_gradcheck_and_twin(size, rng, float64):
    layer = LocalResponseNorm(size, alpha=0.5, beta=0.75, k=2.0)  # large alpha: the cross terms matter
    x = rng.standard_normal((2, 6, 3, 4))
    check_module(layer, x).assert_ok()
    np.testing.assert_allclose(layer(x), Fn.local_response_norm_naive(x, size, 0.5, 0.75, 2.0), atol=1e-12)
    check_module(layer, noncontiguous(rng.standard_normal((1, 3, 5)))).assert_ok()


def test_norms_match_pytorch(rng):
    torch = torch_or_skip()
    nn = torch.nn
    for dtype, tol in [(np.float64, 1e-10), (np.float32, 1e-5)]:
        tdtype = torch.float64 if dtype == np.float64 else torch.float32
        x = rng.standard_normal((2, 6, 4, 5)).astype(dtype)
        pairs = [(LayerNorm((4, 5)), nn.LayerNorm((4, 5))), (LayerNorm(5, bias=False), nn.LayerNorm(5, bias=False)),
                 (GroupNorm(3, 6), nn.GroupNorm(3, 6)),
                 (GroupNorm(2, 6, affine=False), nn.GroupNorm(2, 6, affine=False)),
                 (LocalResponseNorm(5), nn.LocalResponseNorm(5)),
                 (LocalResponseNorm(4, alpha=0.5, beta=0.6, k=1.5), nn.LocalResponseNorm(4, 0.5, 0.6, 1.5))]
        for layer, t_layer in pairs:
            randomize_affine(layer, rng).to(dtype)
            t_layer = t_layer.to(tdtype)
            assert list(layer.state_dict()) == list(t_layer.state_dict())
            t_layer.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
            xt = torch.tensor(x, requires_grad=True)
            out, t_out = layer(x), t_layer(xt)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=tol, atol=tol)
            dout = rng.standard_normal(out.shape).astype(dtype)
            t_out.backward(torch.tensor(dout))
            dx = layer.backward(dout)
            assert dx.dtype == dtype
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)
            for name, param in layer.named_parameters():
                assert param.grad.dtype == dtype
                np.testing.assert_allclose(param.grad, dict(t_layer.named_parameters())[name].grad.numpy(),
                                           rtol=tol, atol=tol * 10)


def test_norms_float32_stays_float32(rng):
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    for layer in [BatchNorm2d(4), BatchNorm2d(4).eval(), LayerNorm((3, 3)), GroupNorm(2, 4), LocalResponseNorm(3)]:
        out = layer(x)
        assert out.dtype == np.float32, type(layer).__name__
        assert layer.backward(np.ones_like(out)).dtype == np.float32, type(layer).__name__
        assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    layer = BatchNorm1d(4)
    layer(x[:, :, 0, 0])
    assert layer.running_mean.dtype == np.float32 and layer.running_var.dtype == np.float32


def test_norm_errors(rng):
    x = rng.standard_normal((2, 6, 4, 5)).astype(np.float32)
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by num_groups \(4\)"):
        GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"GroupNorm: expected num_channels \(dimension 1\) = 8"):
        GroupNorm(4, 8)(x)
    with pytest.raises(ValueError, match=r"LayerNorm: expected the last dimensions to be \(4, 4\)"):
        LayerNorm((4, 4))(x)
    with pytest.raises(ValueError, match="LocalResponseNorm"):
        LocalResponseNorm(3)(x[0, 0])
