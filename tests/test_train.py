"""Training loop: end-to-end accuracy, exact resume from checkpoints, atomic checkpoint writes,
callbacks, metrics, History, progress output."""

import io
import json
import os

import numpy as np
import pytest

import npcnn
from npcnn import backend, nn, optim, serialization, train
from npcnn.optim import lr_scheduler as S


class ShuffleLoader:
    """(x, y) batches in a new order each epoch, drawn from npcnn's generator (so the RNG state
    decides the order, and a resumed run must restore it)."""

    def __init__(self, x, y, batch_size):
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = backend.rng().permutation(len(self.x))
        for start in range(0, len(self.x), self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.x[index], self.y[index]


class OwnRngLoader(ShuffleLoader):
    """A loader with its own generator, saved in checkpoints through state_dict()."""

    def __init__(self, x, y, batch_size, seed):
        super().__init__(x, y, batch_size)
        self.generator = np.random.default_rng(seed)

    def __iter__(self):
        order = self.generator.permutation(len(self.x))
        for start in range(0, len(self.x), self.batch_size):
            index = order[start:start + self.batch_size]
            yield self.x[index], self.y[index]

    def state_dict(self):
        return {"generator": self.generator.bit_generator.state}

    def load_state_dict(self, state):
        self.generator.bit_generator.state = state["generator"]


def blobs(n=240, seed=0, classes=3):
    """Three Gaussian blobs in 2-D, well separated (centres 4 apart, unit spread)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 4.0], [-3.5, -2.0], [3.5, -2.0]])[:classes]
    y = rng.integers(0, classes, n)
    x = (centres[y] + rng.standard_normal((n, 2))).astype(np.float32)
    return x, y


def mlp():
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))


class HandMSE:
    """mean((pred - target)^2) with its derivative, written by hand (the loss interface)."""

    def __call__(self, pred, target):
        self.diff = pred - target
        return float((self.diff ** 2).mean())

    def backward(self):
        return 2.0 * self.diff / self.diff.size


# ----------------------------------------------------------------------------- end to end


def test_mlp_learns_separable_blobs():
    """A 2-layer MLP on three separable blobs must reach >= 97% validation accuracy in 10 epochs."""
    x, y = blobs(600, seed=0)
    xv, yv = blobs(300, seed=1)
    model = mlp()
    history = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                        ShuffleLoader(x, y, 32), epochs=10, val_loader=ShuffleLoader(xv, yv, 100), verbose=0)
    assert history["val_accuracy"][-1] >= 0.97
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    results = train.evaluate(model, [(xv, yv)], metrics=["accuracy", train.ConfusionMatrix(3)],
                             loss_fn=nn.CrossEntropyLoss())
    assert results["accuracy"] == pytest.approx(history["val_accuracy"][-1])
    assert results["confusion_matrix"].sum() == 300 and np.trace(results["confusion_matrix"]) >= 291


def test_hand_written_mse_on_one_hot_targets():
    """Any object with __call__ and backward is a loss; one-hot targets give an accuracy."""
    x, y = blobs(300, seed=2)
    onehot = np.eye(3, dtype=np.float32)[y]
    model = nn.Sequential(nn.Linear(2, 3))
    history = train.fit(model, HandMSE(), optim.Adam(model.parameters(), lr=0.05), ShuffleLoader(x, onehot, 30),
                        epochs=8, verbose=0)
    assert history["accuracy"][-1] >= 0.9


def test_train_step_is_the_explicit_cycle():
    x, y = blobs(64, seed=3)
    npcnn.manual_seed(5)
    a = mlp()
    npcnn.manual_seed(5)
    b = mlp()
    loss_a, loss_b = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
    opt_a, opt_b = optim.SGD(a.parameters(), lr=0.1), optim.SGD(b.parameters(), lr=0.1)
    trainer = train.Trainer(a, loss_a, opt_a, verbose=0)
    for batch in [(x[:32], y[:32]), (x[32:], y[32:])]:
        loss, _ = trainer.train_step(batch)
        logits = b(batch[0])
        expected = loss_b(logits, batch[1])
        b.backward(loss_b.backward())
        opt_b.step()
        opt_b.zero_grad()
        assert loss == expected
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert p.grad is None
    assert train.train_step(a, loss_a, opt_a, (x, y)) == pytest.approx(float(loss_b(b(x), y)))


def test_manual_seed_makes_fit_deterministic():
    x, y = blobs(100, seed=4)

    def run():
        npcnn.manual_seed(11)
        model = mlp()
        train.fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01), ShuffleLoader(x, y, 16),
                  epochs=2, verbose=0)
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- checkpoints and resume


def _setup(loader_kind):
    x, y = blobs(90, seed=6)
    model = mlp()
    opt = optim.Adam(model.parameters(), lr=0.02, amsgrad=True)
    scheduler = S.LinearWarmup(S.StepLR(opt, step_size=3, gamma=0.5), warmup_steps=4)
    loader = ShuffleLoader(x, y, 16) if loader_kind == "npcnn_rng" else OwnRngLoader(x, y, 16, seed=9)
    return model, opt, scheduler, loader


@pytest.mark.parametrize("loader_kind", ["npcnn_rng", "own_rng"])
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path, loader_kind):
    def trainer_for(parts, directory):
        model, opt, scheduler, loader = parts
        callbacks = [train.ModelCheckpoint(directory, monitor="loss"), train.EarlyStopping("loss", patience=50)]
        return train.Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=scheduler, scheduler_interval="batch",
                             callbacks=callbacks, verbose=0), loader

    npcnn.manual_seed(1)
    full, loader = trainer_for(_setup(loader_kind), tmp_path / "full")
    full.fit(loader, epochs=4)

    npcnn.manual_seed(1)
    first, loader = trainer_for(_setup(loader_kind), tmp_path / "part")
    first.fit(loader, epochs=2)

    npcnn.manual_seed(123)  # a fresh process: other weights, another generator state
    resumed, loader = trainer_for(_setup(loader_kind), tmp_path / "resumed")
    resumed.fit(loader, epochs=4, resume_from=tmp_path / "part" / "last.npz")

    for (name, p), q in zip(full.model.named_parameters(), resumed.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    assert resumed.history.state_dict() == full.history.state_dict()
    assert resumed.history.epochs == [1, 2, 3, 4]
    assert resumed.scheduler.get_last_lr() == full.scheduler.get_last_lr()
    assert resumed.callbacks[1].state_dict() == full.callbacks[1].state_dict()

    # the restored state matters: the same resume with the generator disturbed ends elsewhere
    npcnn.manual_seed(123)
    disturbed, loader = trainer_for(_setup(loader_kind), tmp_path / "disturbed")
    disturbed.train_loader = loader
    assert disturbed.load_checkpoint(tmp_path / "part" / "last.npz")["epoch"] == 2
    if loader_kind == "own_rng":
        loader.generator.random(7)  # the loader's own shuffling state
    else:
        backend.rng().random(7)     # npcnn's generator
    disturbed.fit(loader, epochs=4)
    assert any(not np.array_equal(p.data, q.data)
               for p, q in zip(full.model.parameters(), disturbed.model.parameters()))


def test_checkpoint_contents_load_without_pickle(tmp_path):
    model, opt, scheduler, loader = _setup("own_rng")
    trainer = train.Trainer(model, nn.CrossEntropyLoss(), opt, scheduler=scheduler, verbose=0)
    trainer.fit(loader, epochs=1)
    path = tmp_path / "c.npz"
    trainer.save_checkpoint(path)
    with np.load(path, allow_pickle=False) as archive:
        names = archive.files
        meta = json.loads(str(archive["__meta__"]))
    assert {"model/0.weight", "model/0.bias", "model/2.weight", "model/2.bias"} <= set(names)
    assert any(n.startswith("optimizer/state/") for n in names)
    assert meta["epoch"] == 1 and meta["format"] == "npcnn-checkpoint"
    assert set(meta) >= {"optimizer", "scheduler", "rng", "loader", "history"}
    assert meta["rng"] == backend.get_rng_state()
    info = train.load_checkpoint(path)
    assert info["epoch"] == 1 and set(info["model"]) == set(model.state_dict())
    with pytest.raises(KeyError, match="no scheduler state"):
        bare = train.Trainer(model, nn.CrossEntropyLoss(), opt, verbose=0)
        bare.save_checkpoint(tmp_path / "bare.npz")
        train.load_checkpoint(tmp_path / "bare.npz", scheduler=scheduler)
    with pytest.raises(ValueError, match="not an npcnn checkpoint"):
        npcnn.save(model, tmp_path / "weights.npz")
        train.load_checkpoint(tmp_path / "weights.npz")


def test_a_crash_during_checkpoint_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    x, y = blobs(60, seed=7)
    model = mlp()
    checkpoint = train.ModelCheckpoint(tmp_path, monitor="loss", save_best=False)
    trainer = train.Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                            callbacks=[checkpoint], verbose=0)
    trainer.fit(ShuffleLoader(x, y, 20), epochs=1)
    last = tmp_path / "last.npz"
    before = last.read_bytes()
    real_write = serialization._write_npz

    def crash_halfway(f, arrays):
        real_write(f, arrays)
        f.seek(f.tell() // 2)
        f.truncate()
        raise OSError("simulated crash while writing the checkpoint")

    monkeypatch.setattr(serialization, "_write_npz", crash_halfway)
    with pytest.raises(OSError, match="simulated crash"):
        trainer.fit(ShuffleLoader(x, y, 20), epochs=2)
    assert trainer.epoch == 2  # the epoch ran; only its checkpoint failed
    assert last.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.npz"]
    monkeypatch.undo()
    assert train.load_checkpoint(last)["epoch"] == 1


# ----------------------------------------------------------------------------- callbacks


def test_nan_guard_names_epoch_batch_and_first_bad_layer():
    x, y = blobs(80, seed=8)

    class Poison(train.Callback):
        def on_batch_end(self, trainer, batch, logs):
            if trainer.current_epoch == 2 and batch == 2:
                trainer.model[2].weight.data[...] = np.nan

    for anomaly, expected in [(True, "first layer whose output went non-finite is 2 \\(Linear\\)"),
                              (False, "anomaly_detection=True")]:
        model = mlp()
        guard = train.TerminateOnNaN(anomaly_detection=anomaly)
        with pytest.raises(train.NonFiniteLossError, match=f"the loss is nan at epoch 2, batch 3.*{expected}"):
            train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ShuffleLoader(x, y, 20),
                      epochs=3, callbacks=[Poison(), guard], verbose=0, check_finite=False)
        assert all(not m._forward_hooks for m in model.modules())  # the hooks are gone
    # with the default check the Trainer raises first, and the callback's hooks still go away
    model = mlp()
    guard = train.TerminateOnNaN(anomaly_detection=True)
    with pytest.raises(train.NonFiniteLossError, match="the loss is nan at epoch 2, batch 3 .*2.weight"):
        train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ShuffleLoader(x, y, 20),
                  epochs=3, callbacks=[Poison(), guard], verbose=0)
    assert all(not m._forward_hooks for m in model.modules())


def test_early_stopping_and_restore_best_weights():
    x, y = blobs(60, seed=9)
    model = mlp()
    stopper = train.EarlyStopping(monitor="val_loss", patience=2)
    history = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.0),
                        ShuffleLoader(x, y, 20), epochs=10, val_loader=[(x, y)], callbacks=[stopper], verbose=0)
    assert history.epochs == [1, 2, 3] and stopper.stopped_epoch == 3
    with pytest.raises(KeyError, match="no val_loader"):
        train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), [(x, y)], epochs=1,
                  callbacks=[train.EarlyStopping()], verbose=0)

    # a rate that blows up after epoch 1: the best weights (epoch 1) come back
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.05)
    scheduler = S.StepLR(opt, step_size=1, gamma=400.0)
    stopper = train.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    snapshots = []

    class Snapshot(train.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            snapshots.append({k: v.copy() for k, v in trainer.model.state_dict().items()})

    history = train.fit(model, nn.CrossEntropyLoss(), opt, ShuffleLoader(x, y, 20), epochs=10, scheduler=scheduler,
                        callbacks=[stopper, Snapshot()], verbose=0)
    best = int(np.nanargmin(history["loss"]))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[best][k])


def test_model_checkpoint_best_and_last(tmp_path):
    x, y = blobs(60, seed=10)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.2)
    scheduler = S.StepLR(opt, step_size=2, gamma=10.0)  # make later epochs worse on purpose
    history = train.fit(model, nn.CrossEntropyLoss(), opt, ShuffleLoader(x, y, 20), epochs=5, val_loader=[(x, y)],
                        scheduler=scheduler, callbacks=[train.ModelCheckpoint(tmp_path / "ckpt")], verbose=0)
    best_epoch = int(np.nanargmin(history["val_loss"])) + 1
    assert train.load_checkpoint(tmp_path / "ckpt" / "best.npz")["epoch"] == best_epoch
    assert train.load_checkpoint(tmp_path / "ckpt" / "last.npz")["epoch"] == 5
    restored = mlp()
    train.load_checkpoint(tmp_path / "ckpt" / "last.npz", model=restored)
    for p, q in zip(model.parameters(), restored.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_lr_logger_and_per_batch_schedule():
    x, y = blobs(60, seed=11)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = S.OneCycleLR(opt, max_lr=0.5, epochs=3, steps_per_epoch=3)
    logger = train.LRLogger(per_batch=True)
    history = train.fit(model, nn.CrossEntropyLoss(), opt, ShuffleLoader(x, y, 20), epochs=3, scheduler=scheduler,
                        scheduler_interval="batch", callbacks=[logger], verbose=0)
    expected = S.schedule_values(S.OneCycleLR(optim.SGD(mlp().parameters(), lr=0.1, momentum=0.9), max_lr=0.5,
                                              total_steps=9), 9)
    np.testing.assert_allclose(logger.lrs, expected, rtol=1e-15)
    assert history["lr"] == [logger.lrs[0], logger.lrs[3], logger.lrs[6]]


def test_plateau_scheduler_in_fit_watches_val_loss():
    x, y = blobs(40, seed=12)
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.0)  # nothing improves
    scheduler = S.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    history = train.fit(model, nn.CrossEntropyLoss(), opt, [(x, y)], epochs=1, val_loader=[(x, y)],
                        scheduler=scheduler, verbose=0)
    assert scheduler.best == history["val_loss"][0]


# ----------------------------------------------------------------------------- metrics, history, progress


def test_metrics_by_hand():
    logits = np.array([[0.1, 0.5, 0.4], [0.9, 0.06, 0.05], [0.2, 0.3, 0.5], [0.3, 0.3, 0.4]])
    y = np.array([1, 2, 2, 0])
    assert train.accuracy(logits, y) == 0.5
    assert train.topk_accuracy(logits, y, 2) == 0.75   # row 1's target is last; row 3's ties for second (counts)
    assert train.topk_accuracy(logits, y, 3) == 1.0
    assert train.accuracy(logits, np.eye(3)[y]) == 0.5
    expected = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(train.confusion_matrix(logits.argmax(1), y, 3), expected)
    running = train.Accuracy(2)
    running.update(logits[:2], y[:2])
    running.update(logits[2:], y[2:])
    assert running.compute() == 0.75 and running.name == "top2_accuracy"
    with pytest.raises(ValueError, match="class indices"):
        train.confusion_matrix(np.array([3]), np.array([0]), 3)


def test_history_json_csv_and_plot(tmp_path):
    history = train.History()
    history.append(1, {"loss": 1.0, "accuracy": 0.5})
    history.append(2, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7})
    assert history["val_loss"][0] != history["val_loss"][0]  # NaN where not logged
    history.to_json(tmp_path / "h.json")
    again = train.History.from_json(tmp_path / "h.json")
    assert again.epochs == [1, 2] and again["loss"] == [1.0, 0.5] and again["val_loss"][1] == 0.6
    history.to_csv(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy" and lines[2] == "2,0.5,0.75,0.6,0.7"
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    fig = history.plot(tmp_path / "h.png")
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) == 2
    assert (tmp_path / "h.png").stat().st_size > 0


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream,verbose,live", [(io.StringIO, 1, False), (_Terminal, 1, True), (_Terminal, 2, False),
                                                 (io.StringIO, 0, False)])
def test_progress_output(stream, verbose, live, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: the final line fits on one line
    x, y = blobs(60, seed=13)
    out = stream()
    model = mlp()
    train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), ShuffleLoader(x, y, 20),
              epochs=2, val_loader=[(x, y)], verbose=verbose, file=out)
    text = out.getvalue()
    if verbose == 0:
        assert text == ""
        return
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 2 and lines[1].lstrip("\r").startswith("epoch 2/2")
    assert ("\r" in text) == live
    final = lines[1].split("\r")[-1]
    for part in ("3/3", "img/s", "loss ", "accuracy ", "val_loss ", "val_accuracy "):
        assert part in final, part
    if live:
        assert "ETA" in text


def test_progress_bar_draws_eta_on_a_terminal():
    out = _Terminal()
    bar = train.ProgressBar(1, 5, total=4, verbose=1, file=out)
    for _ in range(4):
        bar.last_draw = -1.0  # draw every batch
        bar.update(8, {"loss": 0.5, "accuracy": 0.25})
    bar.close({"loss": 0.5})
    text = out.getvalue()
    assert text.count("\r") == 5 and "ETA" in text and "accuracy 25.00%" in text and "4/4" in text
