"""Callbacks: code that runs at fixed points of ``fit`` (early stopping, checkpoints, ...).

A callback overrides any of the hooks below; each receives the :class:`~npcnn.train.Trainer`,
whose ``model``, ``optimizer``, ``history``, ``epoch`` and ``stop_training`` it may read or set.
``logs`` are the values of the batch or epoch ({"loss": ..., "accuracy": ..., "val_loss": ...}).
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

from .. import backend
from ..optim.checks import check_int, check_number
from .guard import NonFiniteLossError


class Callback:
    """Base class of callbacks: every hook does nothing until overridden.

    The order within one run: ``on_train_begin``, then per epoch ``on_epoch_begin``,
    ``on_batch_begin``/``on_batch_end`` around every batch, ``on_epoch_end`` (after
    validation), and ``on_train_end`` once training stops normally; when an error ends the
    run, ``on_exception`` runs instead of ``on_train_end``.
    """

    def on_train_begin(self, trainer: Any) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, trainer: Any, epoch: int) -> None:
        """Before the batches of ``epoch`` (1-based)."""

    def on_batch_begin(self, trainer: Any, batch: int) -> None:
        """Before batch ``batch`` (1-based within the epoch)."""

    def on_batch_end(self, trainer: Any, batch: int, logs: dict[str, Any]) -> None:
        """After batch ``batch``; ``logs`` = {"loss": the batch's loss}."""

    def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> None:
        """After ``epoch`` and its validation; ``logs`` holds the epoch's values."""

    def on_train_end(self, trainer: Any) -> None:
        """After the last epoch (or after ``trainer.stop_training`` was set)."""

    def on_exception(self, trainer: Any, exception: BaseException) -> None:
        """When ``exception`` is about to end the run (a NonFiniteError, Ctrl-C, ...)."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive a resume from a checkpoint (JSON-friendly)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (called when a run is resumed)."""


def _monitored(name, logs, monitor):
    if monitor not in logs:
        raise KeyError(f"{name}: monitored value {monitor!r} is not among the logged values {sorted(logs)}"
                       + (" (no val_loader was given to fit)" if monitor.startswith("val_") else ""))
    return float(logs[monitor])


class _Best:
    """Tracks the best value of a monitored quantity ("min" or "max"; "auto" from its name)."""

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be the name of a logged value (e.g. 'val_loss'), got {monitor!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min', 'max' or 'auto', got {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.min_delta = abs(check_number(owner, "min_delta", min_delta))
        self.best = math.inf if mode == "min" else -math.inf

    def improves(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the model ends with the weights of its best epoch (kept in
    memory, so they do not survive a resume).
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 5, mode: str = "auto",
                 restore_best_weights: bool = False, verbose: int = 0) -> None:
        self.tracker = _Best("EarlyStopping", monitor, mode, min_delta)
        self.patience = check_int("EarlyStopping", "patience", patience, 0)
        self.restore_best_weights, self.verbose = bool(restore_best_weights), verbose
        self.wait, self.stopped_epoch, self.best_weights = 0, None, None

    def on_epoch_end(self, trainer, epoch, logs):
        """Compare the monitored value with the best so far; stop after ``patience`` bad epochs."""
        value = _monitored("EarlyStopping", logs, self.tracker.monitor)
        if self.tracker.improves(value):
            self.tracker.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training, self.stopped_epoch = True, epoch
            if self.verbose:
                print(f"EarlyStopping: {self.tracker.monitor} has not improved for {self.wait} epochs; "
                      f"stopping after epoch {epoch} (best {self.tracker.best:.6g})")

    def on_train_end(self, trainer):
        """With ``restore_best_weights``, load the best epoch's weights if training was stopped."""
        if self.restore_best_weights and self.best_weights is not None and self.stopped_epoch is not None:
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self):
        """The best value and the count of epochs without improvement."""
        return {"best": self.tracker.best, "wait": self.wait}

    def load_state_dict(self, state):
        """Restore the best value and the wait count."""
        self.tracker.best, self.wait = float(state["best"]), int(state["wait"])


class ModelCheckpoint(Callback):
    """After each epoch write ``<dirpath>/last.npz`` and, when ``monitor`` improved, ``best.npz``.

    Both are full checkpoints (:func:`npcnn.train.save_checkpoint`), written atomically;
    ``fit(..., resume_from=".../last.npz")`` continues the run.
    """

    def __init__(self, dirpath: Any, monitor: str = "val_loss", mode: str = "auto", save_best: bool = True,
                 save_last: bool = True, best_name: str = "best.npz", last_name: str = "last.npz") -> None:
        self.dirpath = os.fspath(dirpath)
        self.tracker = _Best("ModelCheckpoint", monitor, mode)
        self.save_best, self.save_last = bool(save_best), bool(save_last)
        self.best_path = os.path.join(self.dirpath, best_name)
        self.last_path = os.path.join(self.dirpath, last_name)

    def on_train_begin(self, trainer):
        """Create ``dirpath``."""
        os.makedirs(self.dirpath, exist_ok=True)

    def on_epoch_end(self, trainer, epoch, logs):
        """Write ``best.npz`` when the monitored value improved, and ``last.npz``."""
        if self.save_best:
            value = _monitored("ModelCheckpoint", logs, self.tracker.monitor)
            if self.tracker.improves(value):
                self.tracker.best = value
                trainer.save_checkpoint(self.best_path)
        if self.save_last:
            trainer.save_checkpoint(self.last_path)

    def state_dict(self):
        """The best monitored value so far."""
        return {"best": self.tracker.best}

    def load_state_dict(self, state):
        """Restore the best monitored value."""
        self.tracker.best = float(state["best"])


class LRLogger(Callback):
    """Record the learning rate of group 0 at every batch (``per_batch=True``) or epoch in
    ``self.lrs``; with ``verbose`` print each change. (The epoch's rate is also in the History.)"""

    def __init__(self, per_batch: bool = False, verbose: int = 0) -> None:
        self.lrs: list[float] = []
        self.per_batch, self.verbose = bool(per_batch), verbose

    def _record(self, trainer):
        lr = float(trainer.optimizer.param_groups[0]["lr"])
        if self.verbose and self.lrs and lr != self.lrs[-1]:
            print(f"LRLogger: learning rate {self.lrs[-1]:.6g} -> {lr:.6g}")
        self.lrs.append(lr)

    def on_batch_begin(self, trainer, batch):
        """Record the rate (``per_batch=True``)."""
        if self.per_batch:
            self._record(trainer)

    def on_epoch_begin(self, trainer, epoch):
        """Record the rate (``per_batch=False``)."""
        if not self.per_batch:
            self._record(trainer)


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file as training runs (Keras's callback).

    The first row is the header: ``epoch`` and then the keys of the first epoch's logs
    (``loss``, ``accuracy``, ``val_loss``, ..., ``lr``). Each row is flushed when its epoch
    ends, so the file can be followed during a run and survives a crash. Floats are written
    with ``repr`` (they read back exactly); a key missing in some epoch is written ``NA``.

    Args:
        filename: the CSV file's path.
        separator: the field separator (default ``","``).
        append: False (default) starts a new file; True appends to an existing one (e.g. when
            resuming), writing the header only when the file is empty, and following the
            existing header's columns.
    """

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.filename, self.separator, self.append = os.fspath(filename), separator, bool(append)
        self.keys, self.file, self.writer = None, None, None

    def on_train_begin(self, trainer):
        """Open the file (and, when appending, read the existing header)."""
        self.keys = None
        if self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0:
            with open(self.filename, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f, delimiter=self.separator), None)
            self.keys = header[1:] if header and header[0] == "epoch" else None
        self.file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.file, delimiter=self.separator)

    def on_epoch_end(self, trainer, epoch, logs):
        """Write the epoch's row (the header first, in a new file) and flush it."""
        if self.keys is None:
            self.keys = list(logs)
            self.writer.writerow(["epoch"] + self.keys)
        self.writer.writerow([epoch] + [_csv_value(logs[k]) if k in logs else "NA" for k in self.keys])
        self.file.flush()

    def on_train_end(self, trainer):
        """Close the file."""
        if self.file is not None:
            self.file.close()
            self.file, self.writer = None, None

    def on_exception(self, trainer, exception):
        """Close the file: the rows of the finished epochs stay."""
        self.on_train_end(trainer)


def _csv_value(value):
    return repr(float(value)) if isinstance(value, float) else str(value)


class TerminateOnNaN(Callback):
    """Stop training with a :class:`NonFiniteLossError` as soon as a batch's loss is NaN or infinite.

    ``fit`` and :class:`~npcnn.train.Trainer` already do this by default, before the bad step
    (``check_finite=True``); this callback is for ``check_finite=False`` runs and raises after
    the batch's step, as Keras's does. The message names the epoch and batch.

    Args:
        anomaly_detection: also put a forward hook on every module, recording which layer's
            output first became non-finite in that batch (a check per layer per batch: slower,
            for debugging).
    """

    def __init__(self, anomaly_detection: bool = False) -> None:
        self.anomaly_detection = bool(anomaly_detection)
        self.handles: list[Any] = []
        self.first_bad: Any = None

    def on_train_begin(self, trainer):
        """With ``anomaly_detection``, put a forward hook on every module."""
        if self.anomaly_detection:
            for name, module in trainer.model.named_modules():
                self.handles.append(module.register_forward_hook(self._make_hook(name or type(module).__name__)))

    def _make_hook(self, name):
        def hook(module, inputs, output):
            if self.first_bad is None and hasattr(output, "dtype"):
                if not bool(backend.get_array_module(output).isfinite(output).all()):
                    self.first_bad = f"{name} ({type(module).__name__})"
        return hook

    def on_batch_begin(self, trainer, batch):
        """Forget the previous batch's first bad layer."""
        self.first_bad = None

    def on_batch_end(self, trainer, batch, logs):
        """Raise :class:`NonFiniteLossError` if the batch's loss is NaN or infinite."""
        loss = float(logs["loss"])
        if math.isfinite(loss):
            return
        message = f"TerminateOnNaN: the loss is {loss} at epoch {trainer.current_epoch}, batch {batch}"
        if self.anomaly_detection:
            message += (f"; the first layer whose output went non-finite is {self.first_bad}" if self.first_bad
                        else "; every layer's output was finite (the loss itself overflowed)")
        else:
            message += "; rerun with TerminateOnNaN(anomaly_detection=True) to find the first bad layer"
        self.on_train_end(trainer)
        trainer.stop_training = True
        raise NonFiniteLossError(message)

    def on_train_end(self, trainer):
        """Remove the hooks."""
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def on_exception(self, trainer, exception):
        """Remove the hooks (training ended with an error)."""
        self.on_train_end(trainer)
