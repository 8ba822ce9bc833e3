"""Training that goes wrong: non-finite losses and gradients stop fit before the bad step and name
the culprit, bad arguments are clear errors; gradient accumulation equals one larger batch; one
host-to-device copy per batch."""

import math

import numpy as np
import pytest

import npcnn
from npcnn import backend, nn, optim, train
from npcnn.train.guard import restore_buffers, snapshot_buffers


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 4.0], [-3.5, -2.0], [3.5, -2.0]])
    y = rng.integers(0, 3, n)
    return (centres[y] + rng.standard_normal((n, 2))).astype(np.float32), y


def batches(x, y, size):
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def bn_mlp():
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class Snapshots(train.Callback):
    """A copy of the whole state (parameters and buffers) after every batch that completed."""

    def __init__(self):
        self.states = []

    def on_batch_end(self, trainer, batch, logs):
        self.states.append({k: backend.to_numpy(v).copy() for k, v in trainer.model.state_dict().items()})


def assert_state_equal(model, state):
    now = {k: backend.to_numpy(v) for k, v in model.state_dict().items()}
    assert list(now) == list(state)
    for key in state:
        np.testing.assert_array_equal(now[key], state[key], err_msg=key)
        assert np.all(np.isfinite(now[key])), key


class Scale(nn.Module):
    """out = factor * x; dx = dout * grad_factor. Tests set the factors to inf at will."""

    def __init__(self):
        super().__init__()
        self.factor, self.grad_factor = 1.0, 1.0

    def forward(self, x):
        return x * self.factor

    def backward(self, dout):
        return dout * self.grad_factor


class At(train.Callback):
    """Run ``action(trainer)`` before batch ``batch`` of epoch ``epoch``."""

    def __init__(self, epoch, batch, action):
        self.epoch, self.batch, self.action = epoch, batch, action

    def on_batch_begin(self, trainer, batch):
        if trainer.current_epoch == self.epoch and batch == self.batch:
            self.action(trainer)


# ----------------------------------------------------------------------------- non-finite training
# (NumPy warns about the NaN and inf these tests make on purpose; setup.cfg turns npcnn's warnings into errors)
expected_warnings = pytest.mark.filterwarnings("ignore:(invalid value|overflow) encountered:RuntimeWarning")


@expected_warnings
def test_an_inf_pixel_stops_fit_and_leaves_batchnorm_statistics_untouched():
    x, y = blobs(60, seed=1)
    x[47, 1] = np.inf  # batch 3 of epoch 2 (batches of 20; no shuffling)
    npcnn.manual_seed(0)
    model = bn_mlp()
    snapshots = Snapshots()
    with pytest.raises(train.NonFiniteLossError) as info:
        # epoch 1 must not see the pixel: hide it in a loader that only gives batch 3 in epoch 2
        train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                  TwoEpochLoader(x, y), epochs=3, callbacks=[snapshots], verbose=0)
    message = str(info.value)
    assert "the loss is nan at epoch 2, batch 3" in message
    assert "the input batch holds 1 non-finite value(s), the first in sample 7 of the batch" in message
    assert "check_finite=False" in message
    assert (info.value.epoch, info.value.batch, info.value.layer) == (2, 3, "input")
    assert math.isnan(info.value.value)
    assert_state_equal(model, snapshots.states[-1])  # the weights and running statistics of batch 2


class TwoEpochLoader:
    """Three batches of 20 per epoch; the last row block (with the bad pixel) only from epoch 2."""

    def __init__(self, x, y):
        self.x, self.y, self.epoch = x, y, 0
        self.clean = x.copy()
        self.clean[~np.isfinite(self.clean)] = 0.0

    def __len__(self):
        return 3

    def __iter__(self):
        self.epoch += 1
        source = self.clean if self.epoch == 1 else self.x
        return iter(batches(source, self.y, 20))


@expected_warnings
@pytest.mark.parametrize("attribute,error,message,kwargs", [
    ("factor", train.NonFiniteLossError,
     r"the loss is nan at epoch 2, batch 1 \(optimizer step 4\); the first layer whose output went non-finite "
     r"is 2 \(Scale\)", {}),
    ("grad_factor", train.NonFiniteGradientError,
     r"the gradient norm is (inf|nan) at epoch 2, batch 1 \(optimizer step 4\); the first layer whose gradient "
     r"went non-finite is 2 \(Scale\)", {"clip_grad_norm": 1.0}),
])
def test_the_first_layer_that_went_non_finite_is_named(attribute, error, message, kwargs):
    """An inf output (caught by the loss) or an inf gradient (caught by the clipping norm) at
    epoch 2, batch 1: the error names the layer and the step is not taken."""
    x, y = blobs(60, seed=2)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), Scale(), nn.Linear(8, 3))
    snapshots = Snapshots()

    def poison(trainer):
        setattr(trainer.model[2], attribute, math.inf)

    with pytest.raises(error, match=message) as info:
        train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                  batches(x, y, 20), epochs=3, callbacks=[snapshots, At(2, 1, poison)], verbose=0, **kwargs)
    assert isinstance(info.value, train.NonFiniteError)
    assert (info.value.layer, info.value.epoch, info.value.batch, info.value.step) == ("2 (Scale)", 2, 1, 4)
    # Snapshots' on_batch_end never ran for the bad batch: the state is that of the batch before
    assert_state_equal(model, snapshots.states[-1])
    assert all(p.grad is None for p in model.parameters())


@expected_warnings
def test_a_diverging_learning_rate_stops_with_finite_weights_and_the_checkpoint_kept(tmp_path):
    x, y = blobs(60, seed=4)
    x *= 1e3
    npcnn.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    checkpoint = train.ModelCheckpoint(tmp_path, monitor="loss")
    with pytest.raises(train.NonFiniteError, match="at epoch"):
        train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e3), batches(x, y, 10),
                  epochs=50, callbacks=[checkpoint], verbose=0)
    assert all(np.all(np.isfinite(p.data)) for p in model.parameters())
    if (tmp_path / "last.npz").exists():  # whatever was saved is finite
        state = np.load(tmp_path / "last.npz")
        assert all(np.all(np.isfinite(state[k])) for k in state.files if state[k].dtype.kind == "f")


@expected_warnings
def test_check_finite_false_trains_on_as_before():
    x, y = blobs(40, seed=5)
    model = nn.Sequential(nn.Linear(2, 8), Scale(), nn.Linear(8, 3))
    model[1].factor = math.nan
    history = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), batches(x, y, 20),
                        epochs=2, verbose=0, check_finite=False)
    assert math.isnan(history["loss"][-1])


@expected_warnings
def test_train_step_checks_too_and_buffers_snapshot_round_trip():
    model = bn_mlp()
    trainer = train.Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), verbose=0)
    x, y = blobs(8, seed=6)
    trainer.train_step((x, y))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    x[0, 0] = np.nan
    with pytest.raises(train.NonFiniteLossError,
                       match=r"optimizer step 2 \(Trainer.train_step\); the input batch holds 1 non-finite"):
        trainer.train_step((x, y))
    assert_state_equal(model, before)
    snapshot = snapshot_buffers(model)
    model(x[1:])
    assert not np.array_equal(model[1].running_mean, before["1.running_mean"])
    restore_buffers(snapshot)
    np.testing.assert_array_equal(model[1].running_mean, before["1.running_mean"])


# ----------------------------------------------------------------------------- arguments


def _fit(**kwargs):
    x, y = blobs(20, seed=7)
    model = nn.Sequential(nn.Linear(2, 3))
    args = dict(model=model, loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), lr=0.1),
                train_loader=batches(x, y, 10), epochs=1, verbose=0)
    args.update(kwargs)
    return train.fit(**args)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"train_loader": []}, ValueError, "fit: train_loader is empty"),
    ({"val_loader": []}, ValueError, "fit: val_loader is empty"),
    ({"train_loader": 3}, TypeError, "fit: train_loader must be an iterable of"),
    ({"epochs": -3}, ValueError, "fit: invalid epochs -3; expected an integer >= 1"),
    ({"epochs": 0}, ValueError, "fit: invalid epochs 0"),
    ({"epochs": 2.5}, ValueError, "fit: invalid epochs 2.5"),
    ({"initial_epoch": -1}, ValueError, "fit: invalid initial_epoch -1"),
    ({"accumulate_grad_batches": 0}, ValueError, "Trainer: invalid accumulate_grad_batches 0; expected an integer"),
    ({"clip_grad_norm": -1.0}, ValueError, "Trainer: invalid clip_grad_norm -1.0; expected a finite number > 0"),
    ({"clip_grad_norm": math.nan}, ValueError, "Trainer: invalid clip_grad_norm nan"),
    ({"verbose": 5}, ValueError, "Trainer: invalid verbose 5"),
    ({"check_finite": "no"}, ValueError, "Trainer: invalid check_finite 'no'"),
    ({"callbacks": train.EarlyStopping()}, TypeError, r"callbacks must be a list .*callbacks=\[EarlyStopping"),
    ({"callbacks": [object()]}, TypeError, "callback object lacks"),
    ({"scheduler_interval": "step"}, ValueError, "scheduler_interval"),
])
def test_bad_fit_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        _fit(**kwargs)


def test_a_loader_that_yields_nothing_is_an_error():
    x, y = blobs(20, seed=8)
    with pytest.raises(ValueError, match="yielded no batches in epoch 2 .*generator is used up"):
        _fit(train_loader=(b for b in batches(x, y, 10)), epochs=2)
    with pytest.raises(ValueError, match="yielded no batches in epoch 1"):
        _fit(train_loader=iter([]), epochs=1)
    with pytest.raises(ValueError, match="evaluate: the loader yielded no batches"):
        train.evaluate(nn.Linear(2, 3), iter([]))


# ----------------------------------------------------------------------------- gradient accumulation


def _accumulation_run(loader, k, momentum=0.9, dtype=np.float64, scheduler=False):
    with backend.default_dtype(dtype):
        npcnn.manual_seed(11)
        model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=momentum, weight_decay=1e-3)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5) if scheduler else None
    trainer = train.Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=sched, scheduler_interval="batch",
                            verbose=0, accumulate_grad_batches=k)
    history = trainer.fit(loader, epochs=2)
    return model, history, trainer


@pytest.mark.parametrize("k,micro,big", [
    (3, [8] * 6 + [2], [24, 24, 2]),          # the epoch's last window has one short batch
    (4, [8] * 6 + [2], [32, 18]),             # the last window is short in count and size
    (2, [5, 7, 6, 6], [12, 12]),              # unequal micro-batches
    (1, [10, 10], [10, 10]),
])
def test_accumulating_k_batches_equals_one_batch_k_times_larger(k, micro, big):
    rng = np.random.default_rng(12)
    n = sum(micro)
    x = rng.standard_normal((n, 1, 4, 4))
    y = rng.integers(0, 3, n)

    def split(sizes):
        edges = np.cumsum([0] + sizes)
        return [(x[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])]

    acc_model, acc_history, acc_trainer = _accumulation_run(split(micro), k, scheduler=True)
    ref_model, ref_history, ref_trainer = _accumulation_run(split(big), 1, scheduler=True)
    for (name, p), q in zip(acc_model.named_parameters(), ref_model.parameters()):
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(acc_history["loss"], ref_history["loss"], rtol=1e-12)
    assert acc_history["accuracy"] == ref_history["accuracy"]
    assert acc_history["lr"] == ref_history["lr"]  # the schedule follows the optimizer steps
    assert acc_trainer.global_step == ref_trainer.global_step == 2 * len(big)


def test_accumulation_differs_from_not_accumulating():
    """The test above cannot pass by accident: without accumulation the result differs."""
    rng = np.random.default_rng(13)
    x, y = rng.standard_normal((32, 1, 4, 4)), rng.integers(0, 3, 32)
    a, _, _ = _accumulation_run(batches(x, y, 8), 1)
    b, _, _ = _accumulation_run(batches(x, y, 16), 1)
    assert not np.allclose(a[3].weight.data, b[3].weight.data, rtol=1e-6)


def test_accumulation_keeps_float32():
    rng = np.random.default_rng(14)
    x, y = rng.standard_normal((16, 1, 4, 4)).astype(np.float32), rng.integers(0, 3, 16)
    model, history, _ = _accumulation_run(batches(x, y, 4), 3, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())


# ----------------------------------------------------------------------------- one copy per batch


def test_fit_moves_each_batch_to_the_device_once(monkeypatch):
    x, y = blobs(60, seed=15)
    calls = []
    real = backend.asarray

    def counting(a, dtype=None):
        calls.append(type(a).__name__)
        return real(a, dtype)

    monkeypatch.setattr(backend, "asarray", counting)
    _fit(train_loader=batches(x, y, 20), metrics=("accuracy", "top2"))
    assert len(calls) == 2 * 3  # x and y of each of the 3 batches, whatever the metrics


# ----------------------------------------------------------------------------- on CuPy (and the fake CuPy)


@pytest.mark.gpu
@expected_warnings
def test_guard_and_accumulation_on_cupy():
    from conftest import cupy_or_skip

    cupy_or_skip()
    with npcnn.use_backend("cupy"):
        x, y = blobs(60, seed=16)
        x[25, 0] = np.inf  # batch 2
        npcnn.manual_seed(0)
        model = bn_mlp().to()
        snapshots = Snapshots()
        with pytest.raises(train.NonFiniteLossError, match="epoch 1, batch 2 .*input batch holds 1 non-finite"):
            train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), batches(x, y, 20),
                      epochs=1, callbacks=[snapshots], verbose=0)
        assert_state_equal(model, snapshots.states[-1])

        rng = np.random.default_rng(17)
        x, y = rng.standard_normal((20, 1, 4, 4)), rng.integers(0, 3, 20)
        acc, _, _ = _accumulation_run(batches(x, y, 5), 2)
        ref, _, _ = _accumulation_run(batches(x, y, 10), 1)
        for p, q in zip(acc.parameters(), ref.parameters()):
            assert backend.is_cupy_array(p.data)
            np.testing.assert_allclose(backend.to_numpy(p.data), backend.to_numpy(q.data), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make,message", [
    (lambda: train.EarlyStopping(patience=-1), "EarlyStopping: invalid patience -1"),
    (lambda: train.EarlyStopping(patience=2.5), "EarlyStopping: invalid patience 2.5"),
    (lambda: train.EarlyStopping(min_delta=math.nan), "EarlyStopping: invalid min_delta nan"),
    (lambda: train.EarlyStopping(mode="best"), "EarlyStopping: mode must be 'min', 'max' or 'auto'"),
    (lambda: train.ModelCheckpoint("out", monitor=None), "ModelCheckpoint: monitor must be the name"),
    (lambda: train.Accuracy(0), "Accuracy: invalid k 0; expected an integer >= 1"),
    (lambda: train.ConfusionMatrix(0), "ConfusionMatrix: invalid num_classes 0"),
    (lambda: train.topk_accuracy(np.zeros((2, 3)), np.zeros(2, int), k=0), "accuracy: invalid k 0"),
])
def test_bad_callback_and_metric_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()
