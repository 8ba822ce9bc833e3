"""Guided backpropagation and plain input gradients for a chosen layer and channel
(npcnn.viz.guided_backprop(layer=, channel=, position=), npcnn.viz.saliency.activation_gradient)."""

import numpy as np
import pytest

import npcnn
from npcnn import nn, viz
from npcnn.gradcheck import numerical_gradient
from npcnn.viz.saliency import activation_gradient


def _cnn(seed=0):
    """conv3 -> ReLU -> conv3 -> ReLU -> flatten -> linear(4), float64, 1 x 9 x 9 input."""
    npcnn.manual_seed(seed)
    with npcnn.backend.default_dtype(np.float64):
        return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(2 * 5 * 5, 4))


def _activation(model, x, upto):
    """The output of model[upto] by running the layers one at a time (no hooks, no caches)."""
    with npcnn.no_grad():
        for layer in list(model)[:upto + 1]:
            x = layer(x)
    return x


@pytest.mark.parametrize("layer, channel, position", [(0, 2, (3, 4)), (2, 1, (0, 0)), (2, 0, (4, 2)), (3, 1, (2, 2))])
def test_plain_activation_gradient_is_the_numerical_one(layer, channel, position, rng):
    model = _cnn()
    x = rng.standard_normal((2, 1, 9, 9))
    grad = activation_gradient(model, x, str(layer), channel, position)
    index = (slice(None), channel) + position

    numeric = numerical_gradient(lambda: float(_activation(model, x, layer)[index].sum()), x, np.arange(x.size))
    np.testing.assert_allclose(grad.ravel(), numeric, atol=1e-7)


def test_sum_is_the_gradient_of_the_channel_sum(rng):
    model = _cnn()
    x = rng.standard_normal((1, 1, 9, 9))
    grad = activation_gradient(model, x, "2", 1, "sum")
    numeric = numerical_gradient(lambda: float(_activation(model, x, 2)[:, 1].sum()), x, np.arange(x.size))
    np.testing.assert_allclose(grad.ravel(), numeric, atol=1e-7)


def test_max_takes_each_images_most_active_neuron(rng):
    model = _cnn()
    x = rng.standard_normal((3, 1, 9, 9))
    a = _activation(model, x, 2)[:, 0]
    grads = activation_gradient(model, x, model[2], 0)  # the module itself, position "max"
    for i in range(3):
        y, xx = np.unravel_index(int(np.argmax(a[i])), a[i].shape)
        expected = activation_gradient(model, x[i:i + 1], "2", 0, (int(y), int(xx)))
        np.testing.assert_array_equal(grads[i:i + 1], expected)


def test_guided_at_a_layer_by_hand(rng):
    """conv0 -> relu1 -> conv2: seed at conv2 channel 1 (2, 3), back through conv2 plainly, through
    relu1 as dout [x > 0] [dout > 0], then conv0 — layer by layer, without hooks."""
    model = _cnn()
    x = rng.standard_normal((1, 1, 9, 9))
    h0 = model[0](x)
    h1 = model[1](h0)
    h2 = model[2](h1)
    seed = np.zeros_like(h2)
    seed[0, 1, 2, 3] = 1.0
    g1 = model[2].backward(seed)
    g0 = g1 * (h0 > 0) * (g1 > 0)
    model[1].pop_saved()
    expected = model[0].backward(g0)
    guided = viz.guided_backprop(model, x, layer="2", channel=1, position=(2, 3))
    np.testing.assert_allclose(guided, expected, atol=1e-14)
    plain = activation_gradient(model, x, "2", 1, (2, 3))
    assert not np.allclose(plain, guided)  # the guidance changed something


def test_guided_on_the_last_linear_channel_is_the_class_score_version(rng):
    model = _cnn()
    x = rng.standard_normal((2, 1, 9, 9))
    np.testing.assert_allclose(viz.guided_backprop(model, x, layer="5", channel=3),
                               viz.guided_backprop(model, x, target=3), atol=1e-14)


def test_one_image_in_one_gradient_out_and_nested_names(rng):
    npcnn.manual_seed(0)
    with npcnn.backend.default_dtype(np.float64):
        body = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU())
        model = nn.Sequential(body, nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 5 * 5, 4))
    x = rng.standard_normal((1, 9, 9))
    g = viz.guided_backprop(model, x, layer="0.1", channel=2)
    assert g.shape == (1, 9, 9)
    np.testing.assert_array_equal(g, viz.guided_backprop(model, x[None], layer=body[1], channel=2)[0])


def test_model_state_is_left_as_it_was(rng):
    model = _cnn()
    model.train()
    model[0].weight.requires_grad = False
    viz.guided_backprop(model, rng.standard_normal((2, 1, 9, 9)), layer="3", channel=0)
    assert model.training and all(m.training for m in model.modules())
    assert model[0].weight.requires_grad is False and model[2].weight.requires_grad is True
    assert all(p.grad is None for p in model.parameters())
    assert all("backward" not in m.__dict__ for m in model.modules())  # no hook or injection left
    assert all(getattr(m, "_saved", None) is None for m in model.modules() if not isinstance(m, nn.Sequential))


@pytest.mark.parametrize("kwargs, words", [
    (dict(layer="2"), "needs channel="),
    (dict(channel=1), "channel= needs layer="),
    (dict(layer="2", channel=1, target=0), "not both"),
    (dict(layer="2", channel=2), "channel must be an int in [0, 2)"),
    (dict(layer="2", channel=-1), "channel must be an int"),
    (dict(layer="2", channel=1.0), "channel must be an int"),
    (dict(layer="2", channel=0, position=(5, 0)), "position must be"),
    (dict(layer="2", channel=0, position="mean"), "position must be"),
    (dict(layer="nope", channel=0), "is not part of"),
])
def test_bad_arguments_are_clear_errors(kwargs, words, rng):
    model = _cnn()
    with pytest.raises(ValueError) as info:
        viz.guided_backprop(model, rng.standard_normal((1, 1, 9, 9)), **kwargs)
    assert words in str(info.value)
    assert all("backward" not in m.__dict__ for m in model.modules())


def test_float32_stays_float32(rng):
    npcnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.ReLU())
    g = viz.guided_backprop(model, rng.standard_normal((1, 1, 9, 9)).astype(np.float32), layer="2", channel=0)
    assert g.dtype == np.float32


@pytest.mark.gpu
def test_layer_guided_backprop_on_cupy_matches_numpy(rng):
    """The same maps on the CuPy backend (the fake CuPy in the default run)."""
    from conftest import cupy_or_skip

    cupy_or_skip()
    npcnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.ReLU())
    x = rng.standard_normal((2, 1, 9, 9)).astype(np.float32)
    expected = {pos: viz.guided_backprop(model, x, layer="2", channel=1, position=pos) for pos in ("max", (1, 2))}
    with npcnn.use_backend("cupy"):
        model.to()
        for pos, cpu in expected.items():
            gpu = viz.guided_backprop(model, npcnn.backend.asarray(x), layer="2", channel=1, position=pos)
            np.testing.assert_allclose(npcnn.backend.to_numpy(gpu), cpu, rtol=1e-5, atol=1e-6)
