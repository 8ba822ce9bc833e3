import numpy as np
import pytest

from npcnn import nn
from npcnn.functional.activation import activation_naive
from npcnn.gradcheck import check_module
from conftest import noncontiguous, torch_or_skip

# Inputs are kept away from 0 (|x| >= 0.05) so ReLU-like kinks are never straddled by +-eps.
def away_from_zero(rng, shape):
    x = rng.normal(size=shape)
    return np.where(np.abs(x) < 0.05, 0.05 * np.sign(x) + 0.05 * (x == 0), x)


LAYERS = [
    ("relu", lambda: nn.ReLU()),
    ("leaky_relu", lambda: nn.LeakyReLU()),
    ("sigmoid", lambda: nn.Sigmoid()),
    ("tanh", lambda: nn.Tanh()),
    ("elu", lambda: nn.ELU()),
    ("gelu", lambda: nn.GELU()),
    ("silu", lambda: nn.SiLU()),
    ("hardswish", lambda: nn.Hardswish()),  # kinks at +-3: normal inputs never land within eps of them
]
ALL = LAYERS + [("gelu_tanh", lambda: nn.GELU("tanh")), ("softmax", lambda: nn.Softmax(1)),
                ("log_softmax", lambda: nn.LogSoftmax(1)), ("softmax_dim0", lambda: nn.Softmax(0))]


@pytest.mark.parametrize("name,make", LAYERS)
def test_matches_scalar_loop_twin(rng, name, make):
    x = away_from_zero(rng, (3, 7)) * 3
    np.testing.assert_allclose(make()(x), activation_naive(name, x), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,make", ALL)
@pytest.mark.parametrize("shape", [(1, 5), (4, 3, 2, 3)])
def test_gradcheck(rng, name, make, shape):
    check_module(make(), away_from_zero(rng, shape)).assert_ok()


@pytest.mark.parametrize("name,make", ALL)
def test_gradcheck_noncontiguous(rng, name, make):
    check_module(make(), noncontiguous(away_from_zero(rng, (3, 6)))).assert_ok()


@pytest.mark.parametrize("name,make", ALL)
def test_dtype_stays_float32(rng, name, make):
    layer = make()
    x = rng.normal(size=(2, 5)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones_like(out)).dtype == np.float32


def test_saturating_functions_do_not_overflow():
    x = np.array([[-1000.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        np.testing.assert_allclose(nn.Sigmoid()(x), [[0.0, 1.0]])
        np.testing.assert_allclose(nn.Softmax(1)(x), [[0.0, 1.0]])
        np.testing.assert_allclose(nn.LogSoftmax(1)(x), [[-2000.0, 0.0]])
        np.testing.assert_allclose(nn.ELU()(x), [[-1.0, 1000.0]])


def test_sigmoid_derivative_at_most_a_quarter(rng):
    layer = nn.Sigmoid()
    layer(rng.normal(size=(100,)) * 5)
    assert layer.backward(np.ones(100)).max() <= 0.25


@pytest.mark.parametrize("name,make,torch_name", [
    ("relu", lambda: nn.ReLU(), "ReLU"), ("leaky", lambda: nn.LeakyReLU(0.2), "LeakyReLU"),
    ("sigmoid", lambda: nn.Sigmoid(), "Sigmoid"), ("tanh", lambda: nn.Tanh(), "Tanh"),
    ("elu", lambda: nn.ELU(0.7), "ELU"), ("gelu", lambda: nn.GELU(), "GELU"),
    ("gelu_tanh", lambda: nn.GELU("tanh"), "GELU"), ("softmax", lambda: nn.Softmax(1), "Softmax"),
    ("log_softmax", lambda: nn.LogSoftmax(1), "LogSoftmax"), ("silu", lambda: nn.SiLU(), "SiLU"),
    ("hardswish", lambda: nn.Hardswish(), "Hardswish"), ("hardswish_wide", lambda: nn.Hardswish(), "Hardswish")])
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_matches_pytorch(rng, name, make, torch_name, dtype, tol):
    torch = torch_or_skip()
    layer = make()
    args = {"LeakyReLU": (0.2,), "ELU": (0.7,), "Softmax": (1,), "LogSoftmax": (1,)}.get(torch_name, ())
    kwargs = {"approximate": "tanh"} if name == "gelu_tanh" else {}
    ref = getattr(torch.nn, torch_name)(*args, **kwargs)
    x = away_from_zero(rng, (4, 6)) * (5.0 if name == "hardswish_wide" else 1.0)  # all three pieces
    x = np.append(x.ravel()[:-2], [-3.0, 3.0]).reshape(4, 6).astype(dtype) if name == "hardswish_wide" else \
        x.astype(dtype)  # and the kinks themselves, where PyTorch's one-sided choice must be matched
    dout = rng.normal(size=(4, 6)).astype(dtype)
    tx = torch.from_numpy(x).requires_grad_()
    tout = ref(tx)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(layer(x), tout.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.backward(dout), tx.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("cls,extra", [(nn.ReLU, ()), (nn.ReLU6, ()), (nn.LeakyReLU, (0.2,)), (nn.ELU, (0.5,)),
                                       (nn.SiLU, ()), (nn.Hardswish, ())])
def test_inplace_is_accepted_and_never_writes_into_the_input(rng, cls, extra):
    x = away_from_zero(rng, (3, 4))
    kept = x.copy()
    layer = cls(*extra, inplace=True)
    out = layer(x)
    np.testing.assert_array_equal(x, kept)
    np.testing.assert_allclose(out, cls(*extra)(x), rtol=0, atol=0)


def test_activation_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="LeakyReLU: negative_slope must be a finite number, got nan"):
        nn.LeakyReLU(float("nan"))
    with pytest.raises(TypeError, match="ELU: alpha must be a finite number"):
        nn.ELU("1")
    with pytest.raises(TypeError, match="Softmax: dim must be an int"):
        nn.Softmax(1.5)
