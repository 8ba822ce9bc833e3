"""Stopping training that has gone non-finite, and saying where it went wrong.

One NaN learning rate, one ``inf`` pixel or one overflowing layer turns the loss into NaN, and
from then on every update writes NaN into the weights. :class:`~npcnn.train.Trainer` therefore
checks each batch's loss (and the gradient norm, when it computes one for clipping) and, at the
first non-finite value, raises :class:`NonFiniteLossError` / :class:`NonFiniteGradientError`
*before* the optimizer step, after putting back what the bad batch changed:

* the parameters and the optimizer's state are untouched (the step never ran; the gradients
  of the unfinished step are dropped);
* buffers (BatchNorm's running statistics) are restored to what they were before the step.
  Layers update buffers by assignment (``self.running_mean = new``, the layer contract), so
  holding on to the old arrays is a free snapshot;
* the error names the epoch and batch and, from a re-run of the bad batch with hooks on every
  layer, the first layer whose output (or gradient) went non-finite.

Nothing is written after the error, so no checkpoint or saved model is overwritten with NaN.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .. import backend
from ..grad_mode import no_grad


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite value; nothing from the bad batch was kept.

    Attributes: ``epoch`` and ``batch`` (1-based), ``step`` (the optimizer step that was
    refused, counted over the run), ``value`` (the non-finite number) and ``layer`` (the first
    layer found non-finite in the re-run, or None).
    """

    def __init__(self, message: str, epoch: Optional[int] = None, batch: Optional[int] = None,
                 step: Optional[int] = None, value: Any = None, layer: Optional[str] = None) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.step, self.value, self.layer = epoch, batch, step, value, layer


class NonFiniteLossError(NonFiniteError):
    """The loss of a batch is NaN or infinite (raised by ``fit``/``Trainer`` and :class:`TerminateOnNaN`)."""


class NonFiniteGradientError(NonFiniteError):
    """The global gradient norm of a step is NaN or infinite (checked where it is computed:
    with ``clip_grad_norm``)."""


def snapshot_buffers(model: Any) -> list[tuple[Any, str, Any]]:
    """``[(module, name, array), ...]`` for every buffer: references, not copies (see the module
    docstring), so taking one costs nothing."""
    return [(module, name, buf) for module in model.modules()
            for name, buf in module._buffers.items() if buf is not None]


def restore_buffers(snapshot: list[tuple[Any, str, Any]]) -> None:
    """Put back every buffer of a :func:`snapshot_buffers` list."""
    for module, name, buf in snapshot:
        setattr(module, name, buf)


def is_finite_array(a: Any) -> bool:
    """True when every entry of the array ``a`` is finite (non-arrays count as finite)."""
    if not hasattr(a, "dtype") or a.dtype.kind not in "fc":
        return True
    return bool(backend.get_array_module(a).isfinite(a).all())


def _label(name, module):
    return f"{name or '(model)'} ({type(module).__name__})"


def _leaves(model):
    named = list(model.named_modules())
    leaves = [(n, m) for n, m in named if not any(True for _ in m.children())]
    return leaves or named


def non_finite_parameters(model: Any) -> list[str]:
    """Names of the parameters holding NaN or inf (e.g. from an earlier unchecked step)."""
    return [name for name, p in model.named_parameters() if not is_finite_array(p.data)]


def first_bad_forward(model: Any, loss_fn: Any, x: Any, y: Any) -> Optional[str]:
    """Re-run the forward pass of ``(x, y)`` and return the label of the first layer whose output
    is non-finite, or None when every layer's output is finite.

    Runs in the model's current mode under ``no_grad()``; buffers are restored afterwards.
    """
    first: list[str] = []

    def make_hook(label):
        def hook(module, inputs, output):
            if not first and not is_finite_array(output):
                first.append(label)
        return hook

    snapshot = snapshot_buffers(model)
    handles = [m.register_forward_hook(make_hook(_label(n, m))) for n, m in _leaves(model)]
    try:
        with no_grad(), np.errstate(all="ignore"):  # NumPy has warned about this batch once already
            model(x)
    finally:
        for handle in handles:
            handle.remove()
        restore_buffers(snapshot)
    return first[0] if first else None


def first_bad_backward(model: Any, loss_fn: Any, x: Any, y: Any) -> Optional[str]:
    """Re-run forward and backward of ``(x, y)`` and return the label of the first layer (in
    backward order) whose input gradient or parameter gradient is non-finite, or None.

    Gradients are dropped and buffers restored afterwards.
    """
    first: list[str] = []

    def make_hook(label):
        def hook(module, grad_input, grad_output):
            grads = grad_input if isinstance(grad_input, (tuple, list)) else (grad_input,)
            params = [p.grad for p in module._parameters.values() if p is not None and p.grad is not None]
            if not first and not all(is_finite_array(g) for g in list(grads) + params):
                first.append(label)
        return hook

    snapshot = snapshot_buffers(model)
    handles = [m.register_backward_hook(make_hook(_label(n, m))) for n, m in _leaves(model)]
    try:
        model.zero_grad()
        with np.errstate(all="ignore"):
            logits = model(x)
            loss_fn(logits, y)
            model.backward(loss_fn.backward())
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad()
        restore_buffers(snapshot)
    return first[0] if first else None


def diagnose_loss(model: Any, loss_fn: Any, x: Any, y: Any) -> tuple[str, Optional[str]]:
    """A sentence saying where a non-finite loss of the batch ``(x, y)`` came from."""
    bad_params = non_finite_parameters(model)
    if bad_params:
        shown = ", ".join(bad_params[:3]) + (", ..." if len(bad_params) > 3 else "")
        return f"the parameters already hold non-finite values ({shown})", None
    if not is_finite_array(x):
        bad = ~backend.get_array_module(x).isfinite(x.reshape(len(x), -1))
        first = int(bad.any(axis=1).argmax())
        return (f"the input batch holds {int(bad.sum())} non-finite value(s), the first in sample {first} "
                "of the batch"), "input"
    layer = first_bad_forward(model, loss_fn, x, y)
    if layer is None:
        return "every layer's output was finite (the loss itself overflowed, or the targets are bad)", None
    return f"the first layer whose output went non-finite is {layer}", layer


def diagnose_gradient(model: Any, loss_fn: Any, batches: Sequence[tuple[Any, Any]]) -> tuple[str, Optional[str]]:
    """A sentence naming the first layer whose gradient went non-finite in one of ``batches``."""
    for i, (x, y) in enumerate(batches, 1):
        layer = first_bad_backward(model, loss_fn, x, y)
        if layer is not None:
            where = f" (micro-batch {i} of {len(batches)})" if len(batches) > 1 else ""
            return f"the first layer whose gradient went non-finite is {layer}{where}", layer
    return "every layer's gradient was finite in a re-run (the sum of squares overflowed)", None

