"""The saved-state rule of Module: one record per forward call, backward consumes them newest
first; a backward that would use state from another forward is an error naming the module;
dout must have the output's shape; nothing is recorded under no_grad."""

import numpy as np
import pytest

import npcnn
from npcnn import nn


class Twice(nn.Module):
    """out = f(f(x)) with one module f (weight sharing, as an unrolled RNN does)."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return self.f(self.f(x))

    def backward(self, dout):
        return self.f.backward(self.f.backward(dout))


def _tied_copies(layer):
    """Two independent copies of ``layer`` holding the same values."""
    a, b = type(layer)(3, 3), type(layer)(3, 3)
    for copy in (a, b):
        copy.load_state_dict(layer.state_dict())
    return a, b


@pytest.mark.parametrize("make", [lambda: nn.Sequential(nn.Linear(3, 3), nn.Tanh()),
                                  lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.LayerNorm(3))])
def test_weight_sharing_equals_two_tied_copies(rng, make):
    with npcnn.backend.default_dtype(np.float64):
        npcnn.manual_seed(0)
        shared = make()
        first, second = make(), make()
    first.load_state_dict(shared.state_dict())
    second.load_state_dict(shared.state_dict())
    x, dout = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    model = Twice(shared)
    out = model(x)
    dx = model.backward(dout)
    out_ref = second(first(x))
    dx_ref = first.backward(second.backward(dout))
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    for (name, p), p1, p2 in zip(shared.named_parameters(), first.parameters(), second.parameters()):
        np.testing.assert_allclose(p.grad, p1.grad + p2.grad, rtol=1e-12, atol=1e-12, err_msg=name)


def test_weight_sharing_passes_the_gradient_check(rng):
    with npcnn.backend.default_dtype(np.float64):
        model = Twice(nn.Sequential(nn.Linear(3, 3), nn.Tanh()))
    npcnn.gradcheck.check_module(model, rng.standard_normal((2, 3))).assert_ok()


def test_a_module_called_twice_from_user_code_before_backward_keeps_the_newest():
    """Each call from user code starts a forward pass; a new pass drops the unconsumed state of
    the previous one, so a forward that is never backpropagated (logging) costs no memory."""
    layer = nn.Linear(3, 2)
    for _ in range(5):
        layer(np.ones((1, 3), np.float32))
    assert len(layer._calls) == 1
    layer.backward(np.ones((1, 2), np.float32))
    with pytest.raises(RuntimeError, match="dropped when Linear was called again"):
        layer.backward(np.ones((1, 2), np.float32))


def test_backward_with_the_gradient_of_an_earlier_forward_is_an_error(rng):
    """The issue's case: loss of batch 1, a logging forward of batch 2, backward of batch 1."""
    npcnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    loss_fn = nn.CrossEntropyLoss()
    x1, x2 = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    loss_fn(model(x1), y)
    g = loss_fn.backward()
    model(x2)
    with pytest.raises(RuntimeError, match=r"Sequential.backward: the gradient it was given comes from the output "
                                           r"of forward #\d+, but Sequential was called again"):
        model.backward(g)
    # logging the loss of another batch between the loss's backward and the model's: the same error
    loss_fn(model(x1), y)
    g = loss_fn.backward()
    loss_fn(model(x2), y)
    with pytest.raises(RuntimeError, match="Sequential.backward: the gradient it was given comes from"):
        model.backward(g)
    # the same steps in the right order are fine, and no_grad logging in between is fine too
    loss_fn(model(x1), y)
    g = loss_fn.backward()
    with npcnn.no_grad():
        model(x2)
    model.backward(g)


def test_a_child_called_again_between_forward_and_backward_is_an_error():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    out = model(np.ones((2, 3), np.float32))
    model[0](np.ones((2, 3), np.float32))  # a new forward pass through the first layer only
    with pytest.raises(RuntimeError, match=r"Linear.backward: its saved state comes from forward #\d+, but the "
                                           r"backward running is that of forward #\d+"):
        model.backward(np.ones_like(out))


def test_two_stage_pipeline_called_from_user_code():
    """features and classifier called one after the other, then backpropagated by hand."""
    features, classifier, loss_fn = nn.Linear(4, 3), nn.Linear(3, 2), nn.MSELoss()
    h = features(np.ones((2, 4), np.float32))
    out = classifier(h)
    loss_fn(out, np.zeros((2, 2), np.float32))
    dh = classifier.backward(loss_fn.backward())
    features.backward(dh)
    assert features.weight.grad is not None


def test_no_grad_records_nothing():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with npcnn.no_grad():
        model(np.ones((2, 3), np.float32))
    assert all(not m._calls for m in model.modules())


@pytest.mark.parametrize("layer, x_shape, dout_shape", [
    (nn.ReLU(), (5, 4), (2, 5, 4)),
    (nn.Linear(3, 4), (2, 3), (1, 4)),
    (nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6), (1, 4, 6, 6)),
    (nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), (2, 3, 2, 2), (2, 1)),
])
def test_a_wrong_shaped_dout_is_an_error_naming_the_layer_and_both_shapes(layer, x_shape, dout_shape):
    layer(np.ones(x_shape, np.float32))
    name = type(layer).__name__
    out_shape = (x_shape[0], 4, 6, 6) if name == "Conv2d" else {"ReLU": x_shape, "Linear": (2, 4)}.get(name, (2, 2))
    expected = (rf"{name}.backward: dout has shape \({', '.join(map(str, dout_shape))}\) but the output of "
                rf"{name}'s forward had shape \({', '.join(map(str, out_shape))}\)")
    with pytest.raises(ValueError, match=expected):
        layer.backward(np.ones(dout_shape, np.float32))


def test_loss_grad_output_of_the_wrong_shape_is_an_error():
    loss_fn = nn.MSELoss(reduction="none")
    loss_fn(np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="MSELoss.backward: dout has shape \\(3,\\)"):
        loss_fn.backward(np.ones(3, np.float32))


def test_subclass_calling_super_backward_runs_the_bookkeeping_once():
    class DoubleReLU(nn.ReLU):
        def backward(self, dout):
            return 2.0 * super().backward(dout)

    layer = DoubleReLU()
    out = layer(np.array([[-1.0, 2.0]]))
    np.testing.assert_array_equal(layer.backward(np.ones_like(out)), [[0.0, 2.0]])
