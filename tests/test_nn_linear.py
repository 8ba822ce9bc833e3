import numpy as np
import pytest

from npcnn import nn
from npcnn.functional.linear import linear_backward, linear_forward, linear_naive
from npcnn.gradcheck import check_function, check_module
from conftest import noncontiguous, torch_or_skip


def test_forward_matches_loop_twin(rng):
    x, w, b = rng.normal(size=(4, 5)), rng.normal(size=(3, 5)), rng.normal(size=3)
    np.testing.assert_allclose(linear_forward(x, w, b)[0], linear_naive(x, w, b), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 5), (4, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(float64, rng, shape, bias):
    check_module(nn.Linear(5, 3, bias=bias), rng.normal(size=shape)).assert_ok()


def test_gradcheck_noncontiguous_input_and_kernel(float64, rng):
    x = noncontiguous(rng.normal(size=(3, 5)))
    check_module(nn.Linear(5, 2), x).assert_ok()
    arrays = [rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), rng.normal(size=2)]
    check_function(linear_forward, linear_backward, arrays, names=["x", "w", "b"]).assert_ok()


def test_dtype_stays_float32(rng):
    layer = nn.Linear(5, 3)
    out = layer(rng.normal(size=(2, 5)).astype(np.float32))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype == np.float32


def test_default_init_bound_like_pytorch():
    layer = nn.Linear(100, 50)
    assert layer.weight.shape == (50, 100)
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_bad_inputs_name_the_layer():
    layer = nn.Linear(4, 2)
    with pytest.raises(ValueError, match="Linear: expected in_features .* = 4"):
        layer(np.ones((3, 5), np.float32))
    with pytest.raises(TypeError, match="Linear: expected a floating-point input"):
        layer(np.ones((3, 4), np.uint8))
    with pytest.raises(TypeError, match="does not match the parameters' dtype float32"):
        layer(np.ones((3, 4), np.float64))


def test_matches_pytorch(rng):
    torch = torch_or_skip()
    layer = nn.Linear(6, 4)
    ref = torch.nn.Linear(6, 4)
    ref.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in layer.state_dict().items()})
    x = rng.normal(size=(3, 6)).astype(np.float32)
    dout = rng.normal(size=(3, 4)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ref(tx).backward(torch.from_numpy(dout))
    np.testing.assert_allclose(layer(x), ref(tx).detach().numpy(), rtol=1e-5, atol=1e-6)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.weight.grad, ref.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
