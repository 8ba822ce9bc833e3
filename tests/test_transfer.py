"""npcnn.transfer: freezing, head replacement, feature extraction, parameter groups, the SVM."""

import numpy as np
import pytest

import npcnn
from npcnn import nn, transfer
from npcnn.data import DataLoader


def _net():
    """conv -> ReLU -> conv -> flatten -> linear -> ReLU -> linear -> LogSoftmax on 1 x 6 x 6."""
    npcnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(16, 8),
                         nn.ReLU(), nn.Linear(8, 5), nn.LogSoftmax(dim=1))


def _frozen(model):
    return [name for name, p in model.named_parameters() if not p.requires_grad]


def test_freeze_up_to_and_unfreeze():
    model = _net()
    n = transfer.freeze(model, up_to="2")
    assert _frozen(model) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert n == 3 * 9 + 3 + 4 * 27 + 4
    transfer.unfreeze(model)
    assert _frozen(model) == []
    transfer.freeze(model, up_to=model[1])                          # a parameter-free layer: what precedes it
    assert _frozen(model) == ["0.weight", "0.bias"]
    transfer.freeze(model)
    assert len(_frozen(model)) == 8
    transfer.unfreeze(model, from_layer="4")
    assert _frozen(model) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert transfer.trainable_parameters(model) == [model[4].weight, model[4].bias, model[6].weight, model[6].bias]
    with pytest.raises(ValueError, match="not part of"):
        transfer.freeze(model, up_to="body")


def test_training_a_frozen_body_changes_only_the_head(rng):
    model = _net()
    transfer.freeze(model, up_to="2")
    before = {k: v.copy() for k, v in model.state_dict().items()}
    opt = npcnn.optim.SGD(transfer.trainable_parameters(model), lr=0.1)
    x, y = rng.standard_normal((4, 1, 6, 6)).astype(np.float32), np.array([0, 1, 2, 3])
    npcnn.train.train_step(model, nn.NLLLoss(), opt, (x, y))
    after = model.state_dict()
    for key in before:
        assert np.array_equal(before[key], after[key]) == key.startswith(("0.", "2.")), key
    assert model[0].weight.grad is None                              # frozen layers computed nothing


def test_replace_head_keeps_the_place_and_dtype():
    with npcnn.backend.default_dtype(np.float64):
        model = _net()
    old_keys = list(model.state_dict())
    head = transfer.replace_head(model, 3)
    assert model[6] is head and head.out_features == 3 and head.in_features == 8
    assert head.weight.dtype == np.float64
    assert list(model.state_dict()) == old_keys                      # same names, same order
    assert isinstance(model[7], nn.LogSoftmax)
    assert model(np.zeros((2, 1, 6, 6))).shape == (2, 3)
    with pytest.raises(ValueError, match="no Linear"):
        transfer.replace_head(nn.Sequential(nn.ReLU()), 2)


def test_extract_features_is_the_last_hidden_layer(rng):
    model = _net()
    x = rng.standard_normal((10, 1, 6, 6)).astype(np.float32)
    y = np.arange(10)
    feats, labels = transfer.extract_features(model, DataLoader((x, y), batch_size=4))
    with npcnn.no_grad():
        expected = model[:6](x)                                      # up to the ReLU before the last Linear
    np.testing.assert_allclose(feats, expected, rtol=1e-6)
    np.testing.assert_array_equal(labels, y)
    conv, _ = transfer.extract_features(model, DataLoader((x, y), batch_size=3), layer="2")
    assert conv.shape == (10, 16)
    assert model.training and all(m._saved is None for m in model.modules())


def test_param_groups_per_part_learning_rates():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)), nn.Flatten(), nn.Linear(8, 2))
    groups = transfer.param_groups(model, {"0": 1e-4, "0.1": 1e-3}, default_lr=1e-2)
    assert [(len(g["params"]), g["lr"]) for g in groups] == [(2, 1e-4), (2, 1e-3), (2, 1e-2)]
    assert groups[1]["params"] == [model[0][1].weight, model[0][1].bias]
    opt = npcnn.optim.SGD(groups, lr=0.5)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3, 1e-2]
    assert len(transfer.param_groups(model, {"2": 0.1})) == 1        # no default: the rest is left out
    transfer.freeze(model, up_to="0")
    assert transfer.param_groups(model, {"0": 0.1}, default_lr=1.0, include_frozen=False) == [
        {"params": [model[2].weight, model[2].bias], "lr": 1.0}]


def test_linear_svm_gradient_matches_finite_differences(rng):
    svm = transfer.LinearSVM(lam=0.1)
    x = rng.standard_normal((7, 4))
    t = np.where(rng.integers(0, 3, 7)[:, None] == np.arange(3), 1.0, -1.0)
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    _, dw, db = svm.loss_and_grad(x, t, w, b)
    eps = 1e-6
    for array, grad in ((w, dw), (b, db)):       # random points: no margin sits on a kink
        numeric = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            old = array[i]
            array[i] = old + eps
            plus = svm.loss_and_grad(x, t, w, b)[0]
            array[i] = old - eps
            minus = svm.loss_and_grad(x, t, w, b)[0]
            array[i] = old
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, atol=1e-8)


def test_linear_svm_separates_blobs(rng):
    centers = np.array([[0.0, 0.0, 4.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    y = rng.integers(0, 3, 300)
    x = centers[y] + 0.5 * rng.standard_normal((300, 3))
    svm = transfer.LinearSVM(epochs=200).fit(x[:200], y[:200])
    assert svm.score(x[200:], y[200:]) == 1.0
    assert svm.losses[-1] < 0.2 * svm.losses[0]
    assert svm.decision_function(x[:5]).shape == (5, 3)
