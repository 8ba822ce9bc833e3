"""The training loop: ``fit``, ``evaluate`` and the :class:`Trainer` they run on.

Every iteration is the explicit cycle, visible in :meth:`Trainer.train_step`::

    logits = model(x)                        # forward: each layer caches what backward needs
    loss = loss_fn(logits, y)
    model.backward(loss_fn.backward())       # backward: every parameter gets its .grad
    optimizer.step()                         # update the weights
    optimizer.zero_grad()                    # forget the gradients

A loader is any iterable of ``(x, y)`` batches that can be iterated again each epoch (a list
of batches works; so does a DataLoader). ``len(loader)``, when defined, gives the progress bar
its total; ``loader.state_dict()``, when defined, is saved in checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional, Sequence

from .. import backend
from ..grad_mode import no_grad
from ..nn.module import Module, no_input_grad
from ..nn.utils import clip_grad_norm_, eval_mode
from ..optim.checks import check_bool, check_int, check_positive
from ..optim.lr_scheduler import ReduceLROnPlateau
from .callbacks import Callback
from .checkpoint import load_checkpoint, save_checkpoint
from .guard import (
    NonFiniteGradientError,
    NonFiniteLossError,
    diagnose_gradient,
    diagnose_loss,
    restore_buffers,
    snapshot_buffers,
)
from .history import History
from .metrics import Mean, make_metric
from .progress import ProgressBar


class Trainer:
    """Holds a model, its loss, optimizer, optional scheduler and callbacks, and trains them.

    Args:
        model, loss_fn, optimizer: the network, a loss with ``loss_fn(logits, y)`` and
            ``loss_fn.backward()``, and an optimizer over the model's parameters.
        scheduler: a learning-rate schedule of ``optimizer``, or None.
        scheduler_interval: ``"epoch"`` steps the scheduler after each epoch, ``"batch"`` after
            each optimizer step. A ReduceLROnPlateau is stepped per epoch with
            ``scheduler_monitor`` (``"val_loss"``, or ``"loss"`` without validation).
        metrics: names ("accuracy", "top5") or running metric objects, computed on the
            training batches and on validation.
        callbacks: :class:`~npcnn.train.Callback` objects, called in order at each hook.
        clip_grad_norm: when set (a number > 0), the global gradient norm is clipped to it
            before each optimizer step.
        accumulate_grad_batches: k >= 1. The gradients of k consecutive batches are summed,
            each weighted by its share of the k batches' samples, before one optimizer step,
            so training equals training on batches k times larger (exactly, for layers that
            treat samples independently; BatchNorm still normalizes each batch on its own).
            A window cut short by the end of an epoch is stepped with what it has, weighted
            by its real sample count. Per-batch schedules and the step count follow the
            optimizer steps.
        check_finite: True (default) stops training at the first NaN or infinite loss, or
            gradient norm when ``clip_grad_norm`` computes it, with a
            :class:`~npcnn.train.NonFiniteError` naming the epoch, the batch and the first
            layer that went non-finite; the bad step is not taken and buffers (BatchNorm's
            running statistics) are put back, so nothing poisoned is kept or saved. False
            trains on regardless.
        verbose: 0 silent, 1 progress bar (one line per epoch when not on a terminal), 2 one
            line per epoch.
        file: where the progress goes (default ``sys.stdout``).
    """

    def __init__(self, model: Module, loss_fn: Module, optimizer: Any, scheduler: Any = None,
                 scheduler_interval: str = "epoch", scheduler_monitor: str = "val_loss",
                 metrics: Sequence[Any] = ("accuracy",), callbacks: Sequence[Callback] = (),
                 clip_grad_norm: Optional[float] = None, verbose: int = 1, file: Any = None,
                 accumulate_grad_batches: int = 1, check_finite: bool = True) -> None:
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        if verbose not in (0, 1, 2) or isinstance(verbose, float):
            raise ValueError(f"Trainer: invalid verbose {verbose!r}; expected 0, 1 or 2")
        for name, value in (("step", getattr(optimizer, "step", None)),
                            ("zero_grad", getattr(optimizer, "zero_grad", None))):
            if not callable(value):
                raise TypeError(f"Trainer: the optimizer must have a {name}() method, got {type(optimizer).__name__}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.metric_specs = list(metrics)
        self.callbacks = _check_callbacks(callbacks)
        self.clip_grad_norm = (None if clip_grad_norm is None
                               else check_positive("Trainer", "clip_grad_norm", clip_grad_norm))
        self.accumulate_grad_batches = check_int("Trainer", "accumulate_grad_batches", accumulate_grad_batches, 1)
        self.check_finite = check_bool("Trainer", "check_finite", check_finite)
        self.verbose, self.file = verbose, file
        self.history = History()
        self.epoch = 0            # epochs completed
        self.current_epoch = 0    # the epoch in progress (1-based)
        self.current_batch = 0    # the batch in progress within it (1-based)
        self.global_step = 0      # optimizer steps taken by this Trainer
        self.stop_training = False
        self.train_loader: Optional[Iterable[Any]] = None
        self._window: list[Any] = []  # the micro-batches since the last step (kept only to diagnose)
        self._buffers: list[Any] = []  # the buffers as they were at the last step

    # ------------------------------------------------------------------ one step

    def train_step(self, batch: Any) -> tuple[Any, Any]:
        """One forward -> loss -> backward -> step cycle on ``batch = (x, y)``; returns (loss, logits).

        Always one optimizer step, whatever ``accumulate_grad_batches`` is (``fit`` does the
        accumulation). ``x`` and ``y`` are moved to the active backend once.
        """
        x, y = (backend.asarray(a) for a in batch)
        self._begin_window()
        loss, logits = self._forward_backward(x, y, 1.0)
        self._step(1.0)
        return loss, logits

    def _begin_window(self):
        """Start the micro-batches of one optimizer step: remember the buffers to put back."""
        self._window = []
        self._buffers = snapshot_buffers(self.model) if self.check_finite else []

    def _forward_backward(self, x, y, scale):
        """Forward, loss and backward of one (micro-)batch on the device; the gradient of
        ``scale * loss`` is added to every ``p.grad``. Returns (loss as a float, logits)."""
        logits = self.model(x)
        loss = float(self.loss_fn(logits, y))
        if self.check_finite:
            if self.clip_grad_norm is not None:
                self._window.append((x, y))  # to find the layer if the gradient norm goes bad
            if not math.isfinite(loss):
                self._refuse(NonFiniteLossError, f"the loss is {loss}", loss,
                             lambda: diagnose_loss(self.model, self.loss_fn, x, y))
        dout = self.loss_fn.backward()
        # The loss is a mean over the micro-batch, so scale = n_i / (samples in the window)
        # makes the summed gradients those of the mean over the whole window.
        with no_input_grad():  # nobody uses the gradient of the input batch: skip it
            self.model.backward(dout if scale == 1.0 else dout * scale)
        return loss, logits

    def _step(self, correction):
        """Clip, check and take the optimizer step, then forget the gradients.

        ``correction`` rescales the accumulated gradients of a window that came out shorter
        than planned (1.0 otherwise, and then nothing is touched).
        """
        if correction != 1.0:
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad = p.grad * correction
        if self.clip_grad_norm is not None:
            if hasattr(self.optimizer, "synchronize"):
                self.optimizer.synchronize()  # data-parallel: clip the averaged gradient, not each rank's
            total = clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
            if self.check_finite and not math.isfinite(total):
                window = list(self._window)
                self._refuse(NonFiniteGradientError, f"the gradient norm is {total}", total,
                             lambda: diagnose_gradient(self.model, self.loss_fn, window))
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.global_step += 1
        self._window = []

    def _refuse(self, error, what, value, diagnose):
        """Drop the unfinished step, put the buffers back, find the culprit and raise."""
        self.optimizer.zero_grad()
        self.model.zero_grad()
        restore_buffers(self._buffers)
        self._window = []
        sentence, layer = diagnose()
        where = (f"epoch {self.current_epoch}, batch {self.current_batch} (optimizer step {self.global_step + 1})"
                 if self.current_batch else f"optimizer step {self.global_step + 1} (Trainer.train_step)")
        raise error(f"{what} at {where}; {sentence}. The step was not taken: the parameters, the optimizer "
                    "state and the buffers (BatchNorm running statistics) are as they were before it. "
                    "Pass check_finite=False to train on regardless.",
                    epoch=self.current_epoch, batch=self.current_batch, step=self.global_step + 1, value=value,
                    layer=layer)

    # ------------------------------------------------------------------ epochs

    def fit(self, train_loader: Iterable[Any], epochs: int, val_loader: Optional[Iterable[Any]] = None,
            initial_epoch: Optional[int] = None, resume_from: Any = None) -> History:
        """Train until ``epochs`` epochs are complete in all; returns the History.

        Args:
            train_loader: an iterable of ``(x, y)`` batches that can be iterated once per epoch.
            epochs: the number of the last epoch (an integer >= 1), counted from the start of
                the run: resuming a checkpoint of epoch 3 with ``epochs=5`` trains 2 more.
            val_loader: batches evaluated after each epoch (``val_loss``, ``val_accuracy``).
            initial_epoch: overrides where the count starts (epochs already done, >= 0).
            resume_from: a checkpoint path; model, optimizer, scheduler, RNG, loader state,
                history and callbacks are restored first and training continues after its epoch.
        """
        epochs = check_int("fit", "epochs", epochs, 1)
        _check_loader("fit", "train_loader", train_loader)
        if val_loader is not None:
            _check_loader("fit", "val_loader", val_loader)
        self.train_loader = train_loader
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        if initial_epoch is not None:
            self.epoch = check_int("fit", "initial_epoch", initial_epoch, 0)
        self.stop_training = False
        self._call("on_train_begin")
        try:
            for epoch in range(self.epoch + 1, epochs + 1):
                self.current_epoch = epoch
                self._call("on_epoch_begin", epoch)
                logs = self._train_epoch(train_loader, epoch, epochs, val_loader)
                self.epoch = epoch
                self.history.append(epoch, logs)
                self._call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
        except BaseException as exc:  # Ctrl-C too: callbacks remove their hooks
            self._call("on_exception", exc)
            raise
        self._call("on_train_end")
        return self.history

    def _train_epoch(self, loader, epoch, epochs, val_loader):
        self.model.train()
        loss_mean = Mean("loss")
        metrics = [make_metric(spec) for spec in self.metric_specs]
        for metric in metrics:
            metric.reset()
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = ProgressBar(epoch, epochs, total, self.verbose, self.file)
        lr = float(self.optimizer.param_groups[0]["lr"])
        k = self.accumulate_grad_batches
        window = planned = 0  # micro-batches and samples in the window so far; samples planned
        index = 0
        for index, (x, y) in enumerate(loader, 1):
            self.current_batch = index
            self._call("on_batch_begin", index)
            x, y = backend.asarray(x), backend.asarray(y)  # the one host-to-device copy of the batch
            n = int(x.shape[0])
            if window == 0:
                self._begin_window()
                seen, planned = 0, k * n
            loss, logits = self._forward_backward(x, y, 1.0 if k == 1 else n / planned)
            window, seen = window + 1, seen + n
            if window == k:
                self._step(1.0 if seen == planned else planned / seen)
                window = 0
                self._step_scheduler_after_batch()
            loss_mean.update(loss, n)
            for metric in metrics:
                metric.update(logits, y)
            self._call("on_batch_end", index, {"loss": loss})
            bar.update(n, _scalars(loss_mean, metrics))
            if self.stop_training:
                break
        if index == 0:
            hint = " (a generator is used up after one epoch: pass a list or a DataLoader)" if epoch > 1 else ""
            raise ValueError(f"fit: the training loader yielded no batches in epoch {epoch}{hint}")
        if window:  # the epoch ended inside a window: step with what it has
            self._step(planned / seen)
            self._step_scheduler_after_batch()
        self.current_batch = 0  # between epochs (and in a bare train_step) no batch is in progress
        bar.end_training()
        logs = _scalars(loss_mean, metrics)
        if val_loader is not None:
            results = evaluate(self.model, val_loader, self.metric_specs, self.loss_fn)
            logs.update({f"val_{k}": v for k, v in results.items() if isinstance(v, float)})
        logs["lr"] = lr
        self._step_scheduler_after_epoch(logs)
        bar.close(logs)
        return logs

    def _plateau(self):
        scheduler = getattr(self.scheduler, "scheduler", self.scheduler)  # through a LinearWarmup
        return isinstance(scheduler, ReduceLROnPlateau)

    def _step_scheduler_after_batch(self):
        if self.scheduler is not None and self.scheduler_interval == "batch" and not self._plateau():
            self.scheduler.step()

    def _step_scheduler_after_epoch(self, logs):
        if self.scheduler is None:
            return
        if self._plateau():
            monitor = self.scheduler_monitor if self.scheduler_monitor in logs else "loss"
            self.scheduler.step(logs[monitor])
        elif self.scheduler_interval == "epoch":
            self.scheduler.step()

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """Loss and metrics of the model on ``loader`` (eval mode, no caches kept)."""
        return evaluate(self.model, loader, self.metric_specs, self.loss_fn)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:  # a duck-typed callback may lack the newer hooks
                method(self, *args)

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, path: Any) -> None:
        """Save model, optimizer, scheduler, epoch, RNG, loader state, history and callbacks."""
        extra = {"callbacks": [callback.state_dict() for callback in self.callbacks]}
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, epoch=self.epoch, history=self.history,
                        loader=self.train_loader, extra=extra)

    def load_checkpoint(self, path: Any) -> Any:
        """Restore a :meth:`save_checkpoint` file; the next ``fit`` continues after its epoch."""
        info = load_checkpoint(path, self.model, self.optimizer, self.scheduler, loader=self.train_loader,
                               history=self.history)
        self.epoch = int(info["epoch"])
        states = (info["extra"] or {}).get("callbacks", [])
        if len(states) == len(self.callbacks):
            for callback, state in zip(self.callbacks, states):
                callback.load_state_dict(state)
        return info


_HOOKS = ("on_train_begin", "on_epoch_begin", "on_batch_begin", "on_batch_end", "on_epoch_end", "on_train_end",
          "state_dict", "load_state_dict")


def _check_callbacks(callbacks):
    """A list of callbacks, each with every hook (a Callback subclass has them all)."""
    if isinstance(callbacks, Callback):
        raise TypeError("Trainer: callbacks must be a list of callbacks, got a single "
                        f"{type(callbacks).__name__}; pass callbacks=[{type(callbacks).__name__}(...)]")
    callbacks = list(callbacks)
    for callback in callbacks:
        missing = [hook for hook in _HOOKS if not callable(getattr(callback, hook, None))]
        if missing:
            raise TypeError(f"Trainer: callback {type(callback).__name__} lacks {missing}; "
                            "subclass npcnn.train.Callback")
    return callbacks


def _check_loader(owner, name, loader):
    """An iterable of batches, not empty when it knows its length."""
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"{owner}: {name} must be an iterable of (x, y) batches (a list or a DataLoader), "
                        f"got {type(loader).__name__}")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError(f"{owner}: {name} is empty (no batches); check the dataset and the batch size")


def _scalars(loss_mean, metrics):
    logs = {"loss": loss_mean.compute()}
    for metric in metrics:
        value = metric.compute()
        if isinstance(value, float) and not math.isnan(value):
            logs[metric.name] = value
    return logs


def evaluate(model: Module, loader: Iterable[Any], metrics: Sequence[Any] = ("accuracy",),
             loss_fn: Optional[Module] = None) -> dict[str, float]:
    """``{"loss": ..., "accuracy": ..., ...}`` of ``model`` over ``loader``.

    Runs in eval mode under ``no_grad()`` and puts every module's mode back afterwards.

    Args:
        model: the network.
        loader: an iterable of ``(x, y)`` batches; one that yields none is an error.
        metrics: names ("accuracy", "top5") or running metric objects; metric objects that
            return arrays (a confusion matrix) appear as arrays.
        loss_fn: when given, the mean loss over all samples is included as ``"loss"``.
    """
    _check_loader("evaluate", "loader", loader)
    batches = 0
    loss_mean = Mean("loss")
    running = [make_metric(spec) for spec in metrics]
    for metric in running:
        metric.reset()
    with eval_mode(model):
        with no_grad():
            for x, y in loader:
                x, y = backend.asarray(x), backend.asarray(y)
                logits = model(x)
                if loss_fn is not None:
                    loss_mean.update(float(loss_fn(logits, y)), int(x.shape[0]))
                for metric in running:
                    metric.update(logits, y)
                batches += 1
    if batches == 0:
        raise ValueError("evaluate: the loader yielded no batches (a generator is used up after one pass: "
                         "pass a list or a DataLoader)")
    results = {"loss": loss_mean.compute()} if loss_fn is not None else {}
    for metric in running:
        value = metric.compute()
        if not (isinstance(value, float) and math.isnan(value)):
            results[metric.name] = value
    return results


def fit(model: Module, loss_fn: Module, optimizer: Any, train_loader: Iterable[Any], epochs: int,
        val_loader: Optional[Iterable[Any]] = None, scheduler: Any = None, callbacks: Sequence[Callback] = (),
        verbose: int = 1, scheduler_interval: str = "epoch", metrics: Sequence[Any] = ("accuracy",),
        clip_grad_norm: Optional[float] = None, initial_epoch: Optional[int] = None, resume_from: Any = None,
        file: Any = None, accumulate_grad_batches: int = 1, check_finite: bool = True) -> History:
    """Train ``model`` for ``epochs`` epochs and return the History.

    ``Trainer(model, loss_fn, optimizer, ...).fit(train_loader, epochs, ...)`` in one call: see
    :class:`Trainer` for the arguments that shape training (``scheduler``,
    ``scheduler_interval``, ``metrics``, ``callbacks``, ``clip_grad_norm``,
    ``accumulate_grad_batches``, ``check_finite``, ``verbose``, ``file``) and
    :meth:`Trainer.fit` for ``train_loader``, ``epochs``, ``val_loader``, ``initial_epoch``
    and ``resume_from``.
    """
    trainer = Trainer(model, loss_fn, optimizer, scheduler=scheduler, scheduler_interval=scheduler_interval,
                      metrics=metrics, callbacks=callbacks, clip_grad_norm=clip_grad_norm, verbose=verbose,
                      file=file, accumulate_grad_batches=accumulate_grad_batches, check_finite=check_finite)
    return trainer.fit(train_loader, epochs, val_loader=val_loader, initial_epoch=initial_epoch,
                       resume_from=resume_from)


def train_step(model: Module, loss_fn: Module, optimizer: Any, batch: Any) -> float:
    """The bare cycle as a function: forward, loss, backward, step, zero_grad; returns the loss.

    No checks and no extras (use :class:`Trainer` for those): what one iteration is, written out.
    """
    x, y = batch
    logits = model(backend.asarray(x))
    loss = loss_fn(logits, backend.asarray(y))
    dout = loss_fn.backward()
    with no_input_grad():  # the gradient of the input batch is not needed
        model.backward(dout)
    optimizer.step()
    optimizer.zero_grad()
    return float(loss)
