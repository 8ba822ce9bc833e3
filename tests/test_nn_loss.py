import numpy as np
import pytest

from npcnn import nn
from npcnn.functional.loss import cross_entropy_naive
from npcnn.gradcheck import check_loss
from conftest import torch_or_skip


def test_cross_entropy_matches_loop_twin_and_hand_value(rng):
    logits, y = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)
    assert nn.CrossEntropyLoss()(logits, y) == pytest.approx(cross_entropy_naive(logits, y), rel=1e-12)
    # uniform logits: loss = log(C)
    assert nn.CrossEntropyLoss()(np.zeros((2, 10)), np.array([3, 7])) == pytest.approx(np.log(10))


def test_cross_entropy_is_stable_for_huge_logits():
    loss = nn.CrossEntropyLoss()
    value = loss(np.array([[1e4, 0.0], [0.0, 1e4]]), np.array([1, 1]))
    assert np.isfinite(value) and value == pytest.approx(5e3)
    assert np.isfinite(loss.backward()).all()


def test_one_hot_and_index_targets_agree(rng):
    logits, y = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    a, b = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
    assert a(logits, y) == pytest.approx(b(logits, np.eye(3)[y]), rel=1e-12)
    np.testing.assert_allclose(a.backward(), b.backward(), rtol=1e-12)


LOSS_CASES = [
    ("ce", lambda: nn.CrossEntropyLoss(), lambda r: r.integers(0, 4, size=(5,)), (5, 4)),
    ("ce_sum", lambda: nn.CrossEntropyLoss(reduction="sum"), lambda r: r.integers(0, 4, size=(5,)), (5, 4)),
    ("ce_smooth", lambda: nn.CrossEntropyLoss(label_smoothing=0.1), lambda r: r.integers(0, 4, size=(5,)), (5, 4)),
    ("ce_soft", lambda: nn.CrossEntropyLoss(), lambda r: r.dirichlet(np.ones(4), size=5), (5, 4)),
    ("ce_2d", lambda: nn.CrossEntropyLoss(), lambda r: r.integers(0, 3, size=(2, 4, 5)), (2, 3, 4, 5)),
    ("ce_ignore", lambda: nn.CrossEntropyLoss(), lambda r: np.array([0, -100, 2, 1]), (4, 3)),
    ("nll", lambda: nn.NLLLoss(), lambda r: r.integers(0, 4, size=(5,)), (5, 4)),
    ("bce_logits", lambda: nn.BCEWithLogitsLoss(), lambda r: r.uniform(size=(4, 3)), (4, 3)),
    ("bce", lambda: nn.BCELoss(), lambda r: r.uniform(size=(4, 3)), (4, 3)),
    ("mse", lambda: nn.MSELoss(), lambda r: r.normal(size=(4, 3)), (4, 3)),
    ("l1", lambda: nn.L1Loss(), lambda r: r.normal(size=(4, 3)), (4, 3)),
]


def make_pred(name, rng, shape):
    if name == "bce":  # probabilities kept inside (0.05, 0.95)
        return rng.uniform(0.05, 0.95, size=shape)
    return rng.normal(size=shape)


@pytest.mark.parametrize("name,make,target,shape", LOSS_CASES)
def test_gradcheck(rng, name, make, target, shape):
    # L1's kink at pred == target is avoided: continuous random values never coincide.
    check_loss(make(), make_pred(name, rng, shape), target(rng)).assert_ok()


@pytest.mark.parametrize("name,make,target,shape", LOSS_CASES)
def test_dtype_stays_float32(rng, name, make, target, shape):
    loss = make()
    t = target(rng)
    t = t.astype(np.float32) if t.dtype.kind == "f" else t
    value = loss(make_pred(name, rng, shape).astype(np.float32), t)
    assert isinstance(value, float)
    assert loss.backward().dtype == np.float32


def test_reduction_none_returns_per_sample_losses(rng):
    loss = nn.MSELoss(reduction="none")
    pred, t = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    np.testing.assert_allclose(loss(pred, t), (pred - t) ** 2)
    np.testing.assert_allclose(loss.backward(np.full((3, 2), 0.5)), (pred - t))


def test_invalid_targets_are_clear_errors():
    with pytest.raises(ValueError, match="target contains class 5 but the input has 3 classes"):
        nn.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match="class-index target must have shape \\(2,\\)"):
        nn.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="MSELoss: target shape"):
        nn.MSELoss()(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="BCELoss: predictions must be probabilities"):
        nn.BCELoss()(np.array([1.5]), np.array([1.0]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.L1Loss(reduction="avg")
    with pytest.raises(RuntimeError, match="needs a forward pass first"):
        nn.L1Loss().backward()


CASES_TORCH = [
    ("CrossEntropyLoss", {}, "int"), ("CrossEntropyLoss", {"label_smoothing": 0.2}, "int"),
    ("CrossEntropyLoss", {"reduction": "sum"}, "prob"), ("NLLLoss", {}, "int"),
    ("BCEWithLogitsLoss", {}, "unit"), ("BCELoss", {}, "unit"), ("MSELoss", {}, "real"), ("L1Loss", {}, "real"),
]


@pytest.mark.parametrize("cls,kwargs,kind", CASES_TORCH)
def test_matches_pytorch(rng, cls, kwargs, kind):
    torch = torch_or_skip()
    shape = (6, 4)
    pred = rng.uniform(0.05, 0.95, size=shape) if cls == "BCELoss" else rng.normal(size=shape)
    target = {"int": rng.integers(0, 4, size=6), "prob": rng.dirichlet(np.ones(4), size=6),
              "unit": rng.uniform(size=shape), "real": rng.normal(size=shape)}[kind]
    ours = getattr(nn, cls)(**kwargs)
    value = ours(pred, target)
    tp = torch.from_numpy(pred).requires_grad_()
    ref = getattr(torch.nn, cls)(**kwargs)(tp, torch.from_numpy(target))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-10)
    np.testing.assert_allclose(ours.backward(), tp.grad.numpy(), rtol=1e-10, atol=1e-12)
