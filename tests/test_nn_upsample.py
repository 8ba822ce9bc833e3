"""Upsample: the loop twin, float64 gradient checks, PyTorch's outputs and gradients."""

import numpy as np
import pytest

from npcnn import nn
from npcnn.functional.upsample import upsample_naive
from npcnn.gradcheck import check_module
from conftest import noncontiguous, torch_or_skip

CASES = [
    ({"scale_factor": 2}, (2, 3, 4, 5)),
    ({"scale_factor": 3}, (1, 2, 5)),
    ({"size": (7, 3)}, (2, 2, 4, 5)),
    ({"size": 9}, (1, 2, 4)),
    ({"scale_factor": (1.5, 2.7)}, (1, 2, 3, 4)),
    ({"scale_factor": 2, "mode": "bilinear"}, (2, 3, 4, 5)),
    ({"scale_factor": 1.7, "mode": "bilinear"}, (1, 2, 3, 5)),
    ({"size": (7, 3), "mode": "bilinear"}, (2, 2, 4, 5)),
    ({"size": (1, 6), "mode": "bilinear", "align_corners": True}, (1, 2, 3, 4)),
    ({"scale_factor": (2, 3), "mode": "bilinear", "align_corners": True}, (2, 1, 3, 4)),
    ({"scale_factor": 0.5, "mode": "bilinear"}, (1, 2, 6, 7)),
    ({"size": (1, 1), "mode": "bilinear"}, (1, 1, 1, 1)),
    ({"scale_factor": 2.5, "mode": "linear"}, (2, 3, 4)),
    ({"size": 7, "mode": "linear", "align_corners": True}, (1, 2, 3)),
]


def _naive(layer, x):
    n = x.ndim - 2
    return upsample_naive(x, layer._expanded(layer.size, n, "size"), layer._expanded(layer.scale_factor, n, "s"),
                          layer.mode, bool(layer.align_corners))


@pytest.mark.parametrize("kwargs,shape", CASES)
def test_matches_loop_twin(rng, kwargs, shape):
    x = rng.standard_normal(shape)
    layer = nn.Upsample(**kwargs)
    np.testing.assert_allclose(layer(x), _naive(layer, x), rtol=1e-12, atol=1e-14, err_msg=str(kwargs))


@pytest.mark.parametrize("kwargs,shape", CASES)
def test_gradcheck(rng, kwargs, shape):
    check_module(nn.Upsample(**kwargs), rng.standard_normal(shape)).assert_ok()


def test_gradcheck_noncontiguous(rng):
    check_module(nn.Upsample(scale_factor=1.5, mode="bilinear"), noncontiguous(rng.standard_normal((2, 2, 3, 4)))
                 ).assert_ok()


@pytest.mark.parametrize("kwargs,shape", CASES)
@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_matches_pytorch(rng, kwargs, shape, dtype, tol):
    torch = torch_or_skip()
    x = rng.standard_normal(shape).astype(dtype)
    layer = nn.Upsample(**kwargs)
    out = layer(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    tx = torch.from_numpy(x).requires_grad_()
    tout = torch.nn.Upsample(**kwargs)(tx)
    tout.backward(torch.from_numpy(dout))
    assert out.dtype == dtype and tuple(out.shape) == tuple(tout.shape)
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=tol, atol=tol, err_msg=str(kwargs))
    dx = layer.backward(dout)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol, err_msg=str(kwargs))


@pytest.mark.parametrize("kwargs", [{"scale_factor": 2}, {"size": (3, 4), "mode": "bilinear", "align_corners": True},
                                    {"scale_factor": (2.0, 1.5), "mode": "bilinear"}])
def test_repr_matches_pytorch(kwargs):
    torch = torch_or_skip()
    assert repr(nn.Upsample(**kwargs)) == repr(torch.nn.Upsample(**kwargs))


@pytest.mark.parametrize("kwargs,match", [
    ({}, "exactly one of size and scale_factor"),
    ({"size": 4, "scale_factor": 2}, "exactly one of size and scale_factor"),
    ({"scale_factor": 2, "mode": "bicubic"}, "mode must be one of"),
    ({"scale_factor": 2, "align_corners": True}, "align_corners can only be set"),
    ({"scale_factor": -1}, "scale_factor must be > 0"),
    ({"size": 0}, "size must be > 0"),
])
def test_bad_arguments_are_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nn.Upsample(**kwargs)


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="Upsample: expected input of shape \\(N, C, H, W\\)"):
        nn.Upsample(scale_factor=2, mode="bilinear")(np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="size \\(3, 4\\) has 2 entries for 1 spatial dimensions"):
        nn.Upsample(size=(3, 4))(np.zeros((1, 2, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        nn.Upsample(scale_factor=2)(np.zeros((1, 2, 3, 3), dtype=np.int64))
