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

import math

from .. import backend
from ..grad_mode import no_grad
from ..nn.utils import clip_grad_norm_, eval_mode
from ..optim.lr_scheduler import ReduceLROnPlateau
from .checkpoint import load_checkpoint, save_checkpoint
from .history import History
from .metrics import Mean, make_metric
from .progress import ProgressBar


class Trainer:
    """Holds a model, its loss, optimizer, optional scheduler and callbacks, and trains them.

    Args:
        scheduler_interval: ``"epoch"`` steps the scheduler after each epoch, ``"batch"`` after
            each optimizer step. A ReduceLROnPlateau is stepped per epoch with
            ``scheduler_monitor`` (``"val_loss"``, or ``"loss"`` without validation).
        metrics: names ("accuracy", "top5") or running metric objects, computed on the
            training batches and on validation.
        clip_grad_norm: when set, the global gradient norm is clipped to it before each step.
        verbose: 0 silent, 1 progress bar (one line per epoch when not on a terminal), 2 one
            line per epoch.
    """

    def __init__(self, model, loss_fn, optimizer, scheduler=None, scheduler_interval="epoch",
                 scheduler_monitor="val_loss", metrics=("accuracy",), callbacks=(), clip_grad_norm=None,
                 verbose=1, file=None):
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.scheduler_interval = scheduler, scheduler_interval
        self.scheduler_monitor = scheduler_monitor
        self.metric_specs = list(metrics)
        self.callbacks = list(callbacks)
        self.clip_grad_norm = clip_grad_norm
        self.verbose, self.file = verbose, file
        self.history = History()
        self.epoch = 0            # epochs completed
        self.current_epoch = 0    # the epoch in progress (1-based)
        self.stop_training = False
        self.train_loader = None

    # ------------------------------------------------------------------ one step

    def train_step(self, batch):
        """One forward -> loss -> backward -> step cycle on ``batch = (x, y)``; returns (loss, logits)."""
        x, y = batch
        x, y = backend.asarray(x), backend.asarray(y)
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        self.model.backward(self.loss_fn.backward())
        if self.clip_grad_norm is not None:
            if hasattr(self.optimizer, "synchronize"):
                self.optimizer.synchronize()  # data-parallel: clip the averaged gradient, not each rank's
            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()
        return float(loss), logits

    # ------------------------------------------------------------------ epochs

    def fit(self, train_loader, epochs, val_loader=None, initial_epoch=None, resume_from=None):
        """Train until ``epochs`` epochs are complete in all; returns the History.

        ``resume_from`` (a checkpoint path) restores everything first and continues from its
        epoch; ``initial_epoch`` overrides where the count starts.
        """
        self.train_loader = train_loader
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        if initial_epoch is not None:
            self.epoch = int(initial_epoch)
        self.stop_training = False
        self._call("on_train_begin")
        for epoch in range(self.epoch + 1, int(epochs) + 1):
            self.current_epoch = epoch
            self._call("on_epoch_begin", epoch)
            logs = self._train_epoch(train_loader, epoch, int(epochs), val_loader)
            self.epoch = epoch
            self.history.append(epoch, logs)
            self._call("on_epoch_end", epoch, logs)
            if self.stop_training:
                break
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
        for index, (x, y) in enumerate(loader, 1):
            self._call("on_batch_begin", index)
            loss, logits = self.train_step((x, y))
            n = int(x.shape[0])
            loss_mean.update(loss, n)
            for metric in metrics:
                metric.update(logits, backend.asarray(y))
            self._call("on_batch_end", index, {"loss": loss})
            if self.scheduler is not None and self.scheduler_interval == "batch" and not self._plateau():
                self.scheduler.step()
            bar.update(n, _scalars(loss_mean, metrics))
            if self.stop_training:
                break
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

    def _step_scheduler_after_epoch(self, logs):
        if self.scheduler is None:
            return
        if self._plateau():
            monitor = self.scheduler_monitor if self.scheduler_monitor in logs else "loss"
            self.scheduler.step(logs[monitor])
        elif self.scheduler_interval == "epoch":
            self.scheduler.step()

    def evaluate(self, loader):
        """Loss and metrics of the model on ``loader`` (eval mode, no caches kept)."""
        return evaluate(self.model, loader, self.metric_specs, self.loss_fn)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, path):
        """Save model, optimizer, scheduler, epoch, RNG, loader state, history and callbacks."""
        extra = {"callbacks": [callback.state_dict() for callback in self.callbacks]}
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, epoch=self.epoch, history=self.history,
                        loader=self.train_loader, extra=extra)

    def load_checkpoint(self, path):
        """Restore a :meth:`save_checkpoint` file; the next ``fit`` continues after its epoch."""
        info = load_checkpoint(path, self.model, self.optimizer, self.scheduler, loader=self.train_loader,
                               history=self.history)
        self.epoch = int(info["epoch"])
        states = (info["extra"] or {}).get("callbacks", [])
        if len(states) == len(self.callbacks):
            for callback, state in zip(self.callbacks, states):
                callback.load_state_dict(state)
        return info


def _scalars(loss_mean, metrics):
    logs = {"loss": loss_mean.compute()}
    for metric in metrics:
        value = metric.compute()
        if isinstance(value, float) and not math.isnan(value):
            logs[metric.name] = value
    return logs


def evaluate(model, loader, metrics=("accuracy",), loss_fn=None):
    """``{"loss": ..., "accuracy": ..., ...}`` of ``model`` over ``loader``.

    Runs in eval mode under ``no_grad()`` and puts every module's mode back afterwards. The loss
    is included when ``loss_fn`` is given; metric objects that return arrays (a confusion
    matrix) appear as arrays.
    """
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
    results = {"loss": loss_mean.compute()} if loss_fn is not None else {}
    for metric in running:
        value = metric.compute()
        if not (isinstance(value, float) and math.isnan(value)):
            results[metric.name] = value
    return results


def fit(model, loss_fn, optimizer, train_loader, epochs, val_loader=None, scheduler=None, callbacks=(),
        verbose=1, scheduler_interval="epoch", metrics=("accuracy",), clip_grad_norm=None, initial_epoch=None,
        resume_from=None, file=None):
    """Train ``model`` for ``epochs`` epochs and return the History (see :class:`Trainer`)."""
    trainer = Trainer(model, loss_fn, optimizer, scheduler=scheduler, scheduler_interval=scheduler_interval,
                      metrics=metrics, callbacks=callbacks, clip_grad_norm=clip_grad_norm, verbose=verbose,
                      file=file)
    return trainer.fit(train_loader, epochs, val_loader=val_loader, initial_epoch=initial_epoch,
                       resume_from=resume_from)


def train_step(model, loss_fn, optimizer, batch):
    """The bare cycle as a function: forward, loss, backward, step, zero_grad; returns the loss."""
    x, y = batch
    logits = model(backend.asarray(x))
    loss = loss_fn(logits, backend.asarray(y))
    model.backward(loss_fn.backward())
    optimizer.step()
    optimizer.zero_grad()
    return float(loss)
