"""The L1 / L2 / elastic-net weight penalty: its gradient against central differences of its value
(float64), by hand, against SGD's weight_decay and PyTorch's autograd, frozen and 1-D parameters,
dtypes, bad input."""

import numpy as np
import pytest
from conftest import torch_or_skip

import npcnn
from npcnn import nn, optim
from npcnn.nn.parameter import Parameter
from npcnn.optim import add_weight_penalty, weight_penalty


def _away_from_zero(rng, shape):
    """Weights with |w| >= 0.1, where |w| is differentiable and a step of 1e-6 never crosses 0."""
    w = rng.uniform(0.1, 1.0, shape) * rng.choice([-1.0, 1.0], shape)
    return Parameter(w.astype(np.float64))


@pytest.mark.parametrize("l1, l2", [(0.3, 0.0), (0.0, 0.7), (0.2, 0.5), (1e-3, 2.0)])
@pytest.mark.parametrize("skip_1d", [False, True])
def test_penalty_gradient_matches_central_differences_of_its_value(rng, l1, l2, skip_1d):
    params = [_away_from_zero(rng, (3, 4)), _away_from_zero(rng, (4,)), _away_from_zero(rng, (2, 3, 2, 2))]
    add_weight_penalty(params, l1=l1, l2=l2, skip_1d=skip_1d)
    eps = 1e-6
    for k, p in enumerate(params):
        numeric = np.zeros_like(p.data)
        for i in np.ndindex(p.shape):
            old = p.data[i]
            p.data[i] = old + eps
            plus = weight_penalty(params, l1=l1, l2=l2, skip_1d=skip_1d)
            p.data[i] = old - eps
            minus = weight_penalty(params, l1=l1, l2=l2, skip_1d=skip_1d)
            p.data[i] = old
            numeric[i] = (plus - minus) / (2 * eps)
        analytic = np.zeros_like(p.data) if p.grad is None else p.grad
        err = np.abs(analytic - numeric).max() / max(np.abs(numeric).max(), 1e-12)
        if skip_1d and p.ndim == 1:
            assert p.grad is None and np.all(numeric == 0), f"param {k}: a skipped bias was penalized"
        else:
            assert err < 1e-6, f"param {k} shape {p.shape} l1={l1} l2={l2}: rel. error {err:.2e}"


def test_penalty_by_hand_and_added_to_an_existing_gradient():
    p = Parameter(np.array([2.0, -0.5, 0.0]))
    p.grad = np.array([1.0, 1.0, 1.0])
    before = p.grad
    value = add_weight_penalty([p], l1=0.1, l2=0.4)
    assert value == pytest.approx(0.1 * 2.5 + 0.2 * (4.0 + 0.25))
    np.testing.assert_allclose(p.grad, [1.0 + 0.1 + 0.8, 1.0 - 0.1 - 0.2, 1.0 + 0.0])   # sign(0) = 0
    np.testing.assert_array_equal(before, [1.0, 1.0, 1.0])   # replaced, not modified in place


def test_l2_alone_is_sgds_weight_decay(rng):
    w = rng.standard_normal((5, 3))
    g = rng.standard_normal((5, 3))
    a, b = Parameter(w.copy()), Parameter(w.copy())
    a.grad, b.grad = g.copy(), g.copy()
    optim.SGD([a], lr=0.1, weight_decay=0.01).step()
    add_weight_penalty([b], l2=0.01)
    optim.SGD([b], lr=0.1).step()
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-15)


def test_frozen_and_one_dimensional_parameters(rng):
    npcnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    model[0].weight.requires_grad = False
    add_weight_penalty(model.parameters(), l1=0.1, skip_1d=True)   # a generator is fine
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert grads["0.weight"] is None                                 # frozen
    assert all(grads[name] is None for name in ("0.bias", "1.weight", "1.bias", "2.bias"))
    np.testing.assert_array_equal(grads["2.weight"], 0.1 * np.sign(model[2].weight.data))
    full = weight_penalty(model.parameters(), l1=1.0)
    assert full == pytest.approx(sum(float(np.abs(p.data).sum()) for n, p in model.named_parameters()
                                     if n != "0.weight"))


def test_float32_stays_float32(rng):
    p = Parameter(rng.standard_normal((3, 3)).astype(np.float32))
    value = add_weight_penalty([p], l1=0.1, l2=0.1)
    assert isinstance(value, float)
    assert p.grad.dtype == np.float32


def test_l1_drives_small_weights_to_zero_while_l2_only_shrinks_them():
    # Minimizing 0.5 * (w - a)^2 + P(w): the L1 optimum is soft thresholding (exactly 0 for |a| <= l1).
    a = np.array([0.05, -0.08, 1.0])
    for l1, l2, expected in [(0.1, 0.0, [0.0, 0.0, 0.9]), (0.0, 0.1, a / 1.1)]:
        w = Parameter(np.array([0.3, 0.3, 0.3]))
        opt = optim.SGD([w], lr=0.01)
        for _ in range(3000):
            w.grad = w.data - a
            add_weight_penalty([w], l1=l1, l2=l2)
            opt.step()
        np.testing.assert_allclose(w.data, expected, atol=0.011)   # L1 oscillates within lr * l1 of 0


def test_matches_pytorch_autograd(rng):
    torch = torch_or_skip()
    w = rng.standard_normal((4, 5))
    t = torch.tensor(w, requires_grad=True)
    (0.3 * t.abs().sum() + 0.5 * 0.2 * (t * t).sum()).backward()
    p = Parameter(w.copy())
    add_weight_penalty([p], l1=0.3, l2=0.2)
    np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kwargs, match", [({"l1": -0.1}, "l1 must be"), ({"l2": float("nan")}, "l2 must be"),
                                           ({"l1": float("inf")}, "l1 must be")])
def test_bad_strengths_are_refused(kwargs, match):
    p = Parameter(np.ones(3))
    with pytest.raises(ValueError, match=match):
        add_weight_penalty([p], **kwargs)
    assert p.grad is None


def test_non_parameters_are_refused():
    with pytest.raises(TypeError, match="expected Parameters"):
        add_weight_penalty([np.ones(3)], l1=0.1)
