"""Loss functions: ``loss_fn(pred, target)`` returns the loss value (a :class:`LossValue`, a
NumPy float64 scalar with ``.item()``; a per-element array with ``reduction="none"``) and
``loss_fn.backward()`` returns dL/dpred, ready for ``model.backward``.

Backward is explicit. The value is a number, not a node of a graph: ``loss / k`` or
``loss1 + loss2`` changes the number and not the gradient. Scale the gradient with
``loss_fn.backward(1 / k)``, add two losses' gradients yourself, and for gradient accumulation use
``fit(..., accumulate_grad_batches=k)`` / ``Trainer(accumulate_grad_batches=k)``. Multiplying or
dividing a :class:`LossValue` warns once to say so.

The kernels in ``npcnn.functional.loss`` give a per-element loss and its derivative; this module
applies the reduction: mean divides by the number of elements (for cross-entropy and NLL, by the
number of non-ignored targets, or by the sum of their class weights when ``weight`` is given),
sum adds them up.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import backend
from ..functional import loss as F
from .module import Module
from .validation import check_number

_REDUCTIONS = ("mean", "sum", "none")

_SCALING_WARNING = (
    "scaling a loss value does not scale its gradient: npcnn's backward is explicit and "
    "loss_fn.backward() returns dL/dpred of the unscaled loss. Pass the factor to backward "
    "(model.backward(loss_fn.backward(1 / k))), or accumulate gradients over k batches with "
    "fit(..., accumulate_grad_batches=k) / Trainer(accumulate_grad_batches=k). For logging, use "
    "loss.item() (a Python float), which never warns. This warning is shown once."
)
_warned = [False]


def _warn_scaling():
    if not _warned[0]:
        _warned[0] = True
        warnings.warn(_SCALING_WARNING, UserWarning, stacklevel=3)


class LossValue(np.float64):
    """The value a loss returns: a NumPy float64 scalar (so ``float(loss)``, ``loss.item()``,
    formatting and comparisons work as usual) that warns once when it is multiplied or divided,
    because scaling the value does not scale the gradient that ``loss_fn.backward()`` returns
    (see the module docstring). The results of arithmetic are plain ``numpy.float64``.
    """

    def __mul__(self, other):
        _warn_scaling()
        return np.float64(float(self)) * other

    def __rmul__(self, other):
        _warn_scaling()
        return other * np.float64(float(self))

    def __truediv__(self, other):
        _warn_scaling()
        return np.float64(float(self)) / other


class _Loss(Module):
    """Shared reduction and backward; subclasses define ``_elementwise`` and ``_backward``.

    ``_elementwise(pred, target)`` returns (per-element loss, kernel cache, denominator of the
    mean).
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, pred: Any, target: Any) -> Any:
        """The loss of ``pred`` against ``target`` (a LossValue, or an array for reduction="none")."""
        if not hasattr(pred, "dtype") or np.dtype(pred.dtype).kind != "f":
            raise TypeError(f"{type(self).__name__}: predictions must be a floating-point array")
        target = backend.asarray(target) if not hasattr(target, "dtype") else target
        if backend.is_cupy_array(target) != backend.is_cupy_array(pred):
            raise TypeError(f"{type(self).__name__}: the predictions are a {_library(pred)} array but the target "
                            f"is a {_library(target)} array; move the target with npcnn.backend.asarray(y)")
        loss, cache, count = self._elementwise(pred, target)
        xp = backend.get_array_module(pred)
        self.save_for_backward((cache, loss.shape, count, pred.dtype, xp))
        if self.reduction == "none":
            return loss
        total = float(loss.sum())
        # no target counted (all ignored): 0 with a zero gradient (PyTorch gives nan)
        return LossValue(total / count if self.reduction == "mean" and count > 0 else
                         (0.0 if self.reduction == "mean" else total))

    def backward(self, grad_output: Any = None) -> Any:
        """dL/dpred of the value the last forward returned.

        ``grad_output`` scales it: a number for reductions "mean"/"sum" (default 1; pass 1 / k
        to get the gradient of loss / k), an array of the per-element loss's shape for
        ``reduction="none"`` (default ones).
        """
        cache, shape, count, dtype, xp = self.pop_saved()
        if self.reduction == "none":
            dloss = xp.ones(shape, dtype=dtype) if grad_output is None else grad_output
        else:
            scale = 1.0 if grad_output is None else float(grad_output)
            if self.reduction == "mean":
                scale = scale / count if count > 0 else 0.0
            dloss = xp.full(shape, scale, dtype=dtype)
        return self._backward(dloss, cache)

    def _elementwise(self, pred, target):
        raise NotImplementedError(f"{type(self).__name__} does not define _elementwise()")

    def _backward(self, dloss, cache):
        raise NotImplementedError(f"{type(self).__name__} does not define _backward()")

    def extra_repr(self):
        return ""


def _library(a):
    return "CuPy (GPU)" if backend.is_cupy_array(a) else "NumPy"


def _check_same_shape(name, pred, target):
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"{name}: target shape {tuple(target.shape)} must equal prediction shape {tuple(pred.shape)}")


def _check_class_targets(name, logits, target, ignore_index):
    """Class-index targets: integer (N, *) with values in [0, C) or ``ignore_index``."""
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(f"{name}: class-index target must have shape {expected} for input of shape "
                         f"{tuple(logits.shape)}, got {tuple(target.shape)}")
    valid = (target == ignore_index) | ((target >= 0) & (target < logits.shape[1]))
    if not bool(valid.all()):
        bad = backend.to_numpy(target)[~backend.to_numpy(valid)]
        raise ValueError(f"{name}: target contains class {int(bad[0])} but the input has "
                         f"{logits.shape[1]} classes (valid: 0..{logits.shape[1] - 1})")


def _check_weight(name, weight):
    """``weight``: None or a 1-D float array of C non-negative, finite class weights."""
    if weight is None:
        return None
    w = backend.asarray(weight)
    if w.ndim != 1 or np.dtype(w.dtype).kind not in "fiu":
        raise ValueError(f"{name}: weight must be a 1-D array of one weight per class, got shape {tuple(w.shape)}")
    if not bool(backend.get_array_module(w).isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{name}: weight must be finite and >= 0")
    # float weights keep their precision (they are cast to the logits' dtype in forward)
    return w if np.dtype(w.dtype).kind == "f" else w.astype(backend.get_default_dtype())


def _check_ignore_index(name, ignore_index):
    """``ignore_index``: an integer (any sign; PyTorch's default is -100)."""
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"{name}: ignore_index must be an integer, got {ignore_index!r}")
    return int(ignore_index)


def _class_count(target, ignore_index, weight, num_classes, name):
    """Denominator of the mean: the number of non-ignored targets, or the sum of their weights."""
    keep = target != ignore_index
    if weight is None:
        return int(keep.sum())
    if weight.shape[0] != num_classes:
        raise ValueError(f"{name}: weight has {weight.shape[0]} entries but the input has {num_classes} classes")
    xp = backend.get_array_module(target)
    return float(weight[xp.where(keep, target, 0)][keep].sum())


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (PyTorch's ``nn.CrossEntropyLoss``).

    pred: logits (N, C) or (N, C, d1, ...);  target: class indices (N,) / (N, d1, ...) (integer
    dtype) or class probabilities of pred's shape (one-hot or soft; float dtype).

        q = (1 - ls) t + ls / C            (t: one-hot of the index, or the probabilities)
        loss_n = -sum_c w_c q_nc log softmax(z_n)_c               (w = ``weight``, default ones)
        dL/dz_n = softmax(z_n) sum_c w_c q_nc - w q_n             (= softmax - q without weights)

    Targets equal to ``ignore_index`` give zero loss and gradient. The mean divides by the
    number of non-ignored targets, or, with ``weight``, by the sum of their weights
    sum_n w[y_n] (PyTorch's rule); for probability targets by the number of samples (and pixels).

    Backward is explicit: ``loss_fn.backward()`` returns dL/dlogits of the value just returned;
    scaling that value (``loss / k``) does not scale the gradient: use ``loss_fn.backward(1 / k)``
    or ``fit(..., accumulate_grad_batches=k)``.
    """

    def __init__(self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.label_smoothing = check_number("CrossEntropyLoss", "label_smoothing", label_smoothing, 0.0, 1.0)
        self.ignore_index = _check_ignore_index("CrossEntropyLoss", ignore_index)
        self.register_buffer("weight", _check_weight("CrossEntropyLoss", weight))

    def _elementwise(self, logits, target):
        if logits.ndim < 2:
            raise ValueError(f"CrossEntropyLoss: expected logits of shape (N, C, ...), got {tuple(logits.shape)}")
        xp = backend.get_array_module(logits)
        weight = None if self.weight is None else self.weight.astype(logits.dtype, copy=False)
        if xp.issubdtype(target.dtype, xp.integer):
            _check_class_targets("CrossEntropyLoss", logits, target, self.ignore_index)
            count = _class_count(target, self.ignore_index, weight, logits.shape[1], "CrossEntropyLoss")
        elif np.dtype(target.dtype).kind == "f":
            _check_same_shape("CrossEntropyLoss (probability targets)", logits, target)
            count = int(np.prod(target.shape)) // logits.shape[1]
            if weight is not None and weight.shape[0] != logits.shape[1]:
                raise ValueError(f"CrossEntropyLoss: weight has {weight.shape[0]} entries but the input has "
                                 f"{logits.shape[1]} classes")
        else:
            raise TypeError("CrossEntropyLoss: target must be integer class indices or float probabilities, "
                            f"got {target.dtype}")
        loss, cache = F.cross_entropy_forward(logits, target, self.label_smoothing, self.ignore_index, weight)
        return loss, cache, count

    def _backward(self, dloss, cache):
        return F.cross_entropy_backward(dloss, cache)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, ...) (e.g. LogSoftmax outputs) against
    class indices: loss_n = -w[y_n] logp[n, y_n];  dL/dlogp = -w[y_n] one_hot(y_n) / D for the
    mean, D the number of non-ignored targets (the sum of their weights w[y_n] with ``weight``).

    Backward is explicit: ``loss_fn.backward()`` returns dL/dlogp of the value just returned;
    scaling that value does not scale the gradient: use ``loss_fn.backward(1 / k)``.
    """

    def __init__(self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.ignore_index = _check_ignore_index("NLLLoss", ignore_index)
        self.register_buffer("weight", _check_weight("NLLLoss", weight))

    def _elementwise(self, logp, target):
        _check_class_targets("NLLLoss", logp, target, self.ignore_index)
        weight = None if self.weight is None else self.weight.astype(logp.dtype, copy=False)
        count = _class_count(target, self.ignore_index, weight, logp.shape[1], "NLLLoss")
        loss, cache = F.nll_forward(logp, target, self.ignore_index, weight)
        return loss, cache, count

    def _backward(self, dloss, cache):
        return F.nll_backward(dloss, cache)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits x with targets t in [0, 1] (same shape), computed stably:
    loss = max(x, 0) - x t + log(1 + e^-|x|);  dL/dx = (sigmoid(x) - t) / numel for the mean.

    Backward is explicit: ``loss_fn.backward()`` returns dL/dx of the value just returned;
    scaling that value (``loss / k``) does not scale the gradient: use ``loss_fn.backward(1 / k)``.
    """

    def _elementwise(self, x, t):
        _check_same_shape("BCEWithLogitsLoss", x, t)
        loss, cache = F.bce_with_logits_forward(x, t.astype(x.dtype, copy=False))
        return loss, cache, int(np.prod(x.shape))

    def _backward(self, dloss, cache):
        return F.bce_with_logits_backward(dloss, cache)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities p in [0, 1] (e.g. Sigmoid outputs):
    loss = -(t log p + (1 - t) log(1 - p));  dL/dp = (p - t) / (p (1 - p)) / numel for the mean.

    Backward is explicit: ``loss_fn.backward()`` returns dL/dp of the value just returned;
    scaling that value (``loss / k``) does not scale the gradient: use ``loss_fn.backward(1 / k)``.
    """

    def _elementwise(self, p, t):
        _check_same_shape("BCELoss", p, t)
        if not bool(((p >= 0) & (p <= 1)).all()):
            raise ValueError("BCELoss: predictions must be probabilities in [0, 1] "
                             "(use BCEWithLogitsLoss on raw scores)")
        loss, cache = F.bce_forward(p, t.astype(p.dtype, copy=False))
        return loss, cache, int(np.prod(p.shape))

    def _backward(self, dloss, cache):
        return F.bce_backward(dloss, cache)


class MSELoss(_Loss):
    """Mean squared error: loss = (pred - target)^2;  dL/dpred = 2 (pred - target) / numel.

    Backward is explicit: ``loss_fn.backward()`` returns dL/dpred of the value just returned;
    scaling that value (``loss / k``) does not scale the gradient: use ``loss_fn.backward(1 / k)``.
    """

    def _elementwise(self, pred, target):
        _check_same_shape("MSELoss", pred, target)
        loss, cache = F.mse_forward(pred, target.astype(pred.dtype, copy=False))
        return loss, cache, int(np.prod(pred.shape))

    def _backward(self, dloss, cache):
        return F.mse_backward(dloss, cache)


class L1Loss(_Loss):
    """Mean absolute error: loss = |pred - target|;  dL/dpred = sign(pred - target) / numel.

    Backward is explicit: ``loss_fn.backward()`` returns dL/dpred of the value just returned;
    scaling that value (``loss / k``) does not scale the gradient: use ``loss_fn.backward(1 / k)``.
    """

    def _elementwise(self, pred, target):
        _check_same_shape("L1Loss", pred, target)
        loss, cache = F.l1_forward(pred, target.astype(pred.dtype, copy=False))
        return loss, cache, int(np.prod(pred.shape))

    def _backward(self, dloss, cache):
        return F.l1_backward(dloss, cache)
