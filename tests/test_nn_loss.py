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


# ----------------------------------------------------------------------------- class weights (PyTorch's semantics)

WEIGHTED_CASES = [
    ({"weight": "w"}, (7, 4), "int"),
    ({"weight": "w", "ignore_index": 2}, (7, 4), "int"),
    ({"weight": "w", "label_smoothing": 0.15}, (7, 4), "int"),
    ({"weight": "w", "label_smoothing": 0.3, "ignore_index": 1}, (7, 4), "int"),
    ({"weight": "w", "reduction": "sum", "ignore_index": 0}, (7, 4), "int"),
    ({"weight": "w", "reduction": "none", "label_smoothing": 0.1}, (7, 4), "int"),
    ({"weight": "w"}, (3, 4, 2, 5), "int"),
    ({"weight": "w", "label_smoothing": 0.2}, (6, 4), "prob"),
    ({"weight": "w", "reduction": "sum"}, (6, 4), "prob"),
]


def _weighted_inputs(rng, shape, kind):
    logits = rng.normal(size=shape)
    target_shape = (shape[0],) + shape[2:]
    target = rng.integers(0, shape[1], size=target_shape) if kind == "int" else \
        np.moveaxis(rng.dirichlet(np.ones(shape[1]), size=target_shape), -1, 1)
    return logits, target, rng.uniform(0.2, 3.0, size=shape[1])


def _kwargs(kwargs, w):
    return {k: (w if v == "w" else v) for k, v in kwargs.items()}


@pytest.mark.parametrize("kwargs,shape,kind", WEIGHTED_CASES)
def test_weighted_cross_entropy_gradcheck(rng, kwargs, shape, kind):
    logits, target, w = _weighted_inputs(rng, shape, kind)
    loss = nn.CrossEntropyLoss(**_kwargs(kwargs, w))
    if kwargs.get("reduction") == "none":
        return  # check_loss needs a scalar; the PyTorch comparison covers "none"
    check_loss(loss, logits, target).assert_ok()


@pytest.mark.parametrize("kwargs,shape,kind", WEIGHTED_CASES)
def test_weighted_cross_entropy_matches_pytorch(rng, kwargs, shape, kind):
    torch = torch_or_skip()
    logits, target, w = _weighted_inputs(rng, shape, kind)
    ours = nn.CrossEntropyLoss(**_kwargs(kwargs, w))
    value = ours(logits, target)
    tp = torch.from_numpy(logits).requires_grad_()
    ref = torch.nn.CrossEntropyLoss(**_kwargs(kwargs, torch.from_numpy(w)))(tp, torch.from_numpy(target))
    upstream = np.linspace(0.5, 1.5, int(np.prod(ref.shape))).reshape(tuple(ref.shape))
    ref.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(value, ref.detach().numpy(), rtol=1e-10, err_msg=str(kwargs))
    grad = ours.backward(upstream if kwargs.get("reduction") == "none" else float(upstream))
    np.testing.assert_allclose(grad, tp.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=str(kwargs))


@pytest.mark.parametrize("kwargs", [{}, {"weight": "w"}, {"weight": "w", "ignore_index": 1},
                                    {"weight": "w", "label_smoothing": 0.25, "ignore_index": 3}])
def test_weighted_cross_entropy_matches_loop_twin(rng, kwargs):
    logits, target, w = _weighted_inputs(rng, (9, 4), "int")
    kw = _kwargs(kwargs, w)
    expected = cross_entropy_naive(logits, target, weight=kw.get("weight"), ignore_index=kw.get("ignore_index", -100),
                                   label_smoothing=kw.get("label_smoothing", 0.0))
    assert nn.CrossEntropyLoss(**kw)(logits, target) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kwargs", [{"weight": "w"}, {"weight": "w", "ignore_index": 2, "reduction": "sum"}])
def test_weighted_nll_matches_pytorch(rng, kwargs):
    torch = torch_or_skip()
    logits, target, w = _weighted_inputs(rng, (8, 4), "int")
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ours = nn.NLLLoss(**_kwargs(kwargs, w))
    value = ours(logp, target)
    tp = torch.from_numpy(logp).requires_grad_()
    ref = torch.nn.NLLLoss(**_kwargs(kwargs, torch.from_numpy(w)))(tp, torch.from_numpy(target))
    ref.backward()
    assert value == pytest.approx(ref.item(), rel=1e-10)
    np.testing.assert_allclose(ours.backward(), tp.grad.numpy(), rtol=1e-10, atol=1e-12)
    check_loss(nn.NLLLoss(**_kwargs(kwargs, w)), logp, target).assert_ok()


def test_weighted_loss_keeps_float32_and_rejects_bad_weights(rng):
    logits, target, w = _weighted_inputs(rng, (5, 3), "int")
    loss = nn.CrossEntropyLoss(weight=w.astype(np.float32))
    loss(logits.astype(np.float32), target)
    assert loss.backward().dtype == np.float32
    with pytest.raises(ValueError, match="CrossEntropyLoss: weight has 2 entries but the input has 3 classes"):
        nn.CrossEntropyLoss(weight=np.ones(2))(logits, target)
    with pytest.raises(ValueError, match="CrossEntropyLoss: weight must be finite and >= 0"):
        nn.CrossEntropyLoss(weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="1-D array"):
        nn.NLLLoss(weight=np.ones((3, 1)))
    assert "weight" in nn.CrossEntropyLoss(weight=w).state_dict()


# ----------------------------------------------------------------------------- the loss value and the explicit backward


def test_loss_value_is_a_numpy_scalar_with_item(rng):
    value = nn.CrossEntropyLoss()(rng.normal(size=(4, 3)), np.array([0, 1, 2, 0]))
    assert isinstance(value, np.floating) and isinstance(value, float)
    assert isinstance(value.item(), float) and value.item() == float(value)
    assert f"{value:.3f}" == f"{float(value):.3f}"


def test_scaling_the_loss_value_warns_once_and_names_the_supported_path(rng, monkeypatch):
    from npcnn.nn import loss as loss_module

    monkeypatch.setattr(loss_module, "_warned", [False])
    loss_fn = nn.MSELoss()
    value = loss_fn(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)))
    with pytest.warns(UserWarning, match="does not scale its gradient.*accumulate_grad_batches"):
        scaled = value / 4
    assert scaled == pytest.approx(float(value) / 4) and type(scaled) is np.float64
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _ = 2 * value, value * 3, value.item() / 4, value + 1.0  # once only; .item() and + never warn


def test_backward_factor_scales_the_gradient(rng):
    pred, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    loss_fn = nn.MSELoss()
    loss_fn(pred, target)
    full = loss_fn.backward()
    loss_fn(pred, target)
    np.testing.assert_allclose(loss_fn.backward(1 / 4), full / 4, rtol=1e-15)


def test_every_loss_docstring_states_the_explicit_backward_rule():
    for cls in (nn.CrossEntropyLoss, nn.NLLLoss, nn.BCEWithLogitsLoss, nn.BCELoss, nn.MSELoss, nn.L1Loss):
        assert "Backward is explicit" in cls.__doc__ and "backward(1 / k)" in cls.__doc__, cls.__name__
