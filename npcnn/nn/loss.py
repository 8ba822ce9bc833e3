"""Loss functions: ``loss_fn(pred, target)`` returns a float (or per-element array with
``reduction="none"``) and ``loss_fn.backward()`` returns dL/dpred, ready for ``model.backward``.

The kernels in ``npcnn.functional.loss`` give a per-element loss and its derivative; this module
applies the reduction: mean divides by the number of elements (for cross-entropy and NLL, by the
number of non-ignored targets), sum adds them up.
"""

import numpy as np

from .. import backend
from ..functional import loss as F
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    """Shared reduction and backward; subclasses define ``_elementwise`` and ``_backward``."""

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, pred, target):
        if not hasattr(pred, "dtype") or np.dtype(pred.dtype).kind != "f":
            raise TypeError(f"{type(self).__name__}: predictions must be a floating-point array")
        target = backend.asarray(target) if not hasattr(target, "dtype") else target
        if backend.is_cupy_array(target) != backend.is_cupy_array(pred):
            raise TypeError(f"{type(self).__name__}: the predictions are a {_library(pred)} array but the target "
                            f"is a {_library(target)} array; move the target with npcnn.backend.asarray(y)")
        loss, cache, count = self._elementwise(pred, target)
        self.save_for_backward((cache, loss.shape, count, pred.dtype))
        if self.reduction == "none":
            return loss
        total = float(loss.sum())
        return total / max(count, 1) if self.reduction == "mean" else total

    def backward(self, grad_output=None):
        """dL/dpred; ``grad_output`` scales it (an array of the per-element loss's shape for
        ``reduction="none"``, a number otherwise; default 1)."""
        cache, shape, count, dtype = self.pop_saved()
        xp = backend.get_array_module(cache[0] if isinstance(cache, tuple) else cache)
        if self.reduction == "none":
            dloss = xp.ones(shape, dtype=dtype) if grad_output is None else grad_output
        else:
            scale = 1.0 if grad_output is None else float(grad_output)
            if self.reduction == "mean":
                scale /= max(count, 1)
            dloss = xp.full(shape, scale, dtype=dtype)
        return self._backward(dloss, cache)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


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


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits.

    pred: logits (N, C) or (N, C, d1, ...);  target: class indices (N,) / (N, d1, ...) (integer
    dtype) or class probabilities of pred's shape (one-hot or soft; float dtype).
    loss_n = -sum_c q_nc log softmax(z_n)_c with q the (label-smoothed) target distribution;
    dL/dz_n = (softmax(z_n) - q_n) / N for the mean.
    """

    def __init__(self, reduction="mean", label_smoothing=0.0, ignore_index=-100):
        super().__init__(reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = int(ignore_index)

    def _elementwise(self, logits, target):
        if logits.ndim < 2:
            raise ValueError(f"CrossEntropyLoss: expected logits of shape (N, C, ...), got {tuple(logits.shape)}")
        xp = backend.get_array_module(logits)
        if xp.issubdtype(target.dtype, xp.integer):
            _check_class_targets("CrossEntropyLoss", logits, target, self.ignore_index)
            count = int((target != self.ignore_index).sum())
        elif np.dtype(target.dtype).kind == "f":
            _check_same_shape("CrossEntropyLoss (probability targets)", logits, target)
            count = int(np.prod(target.shape)) // logits.shape[1]
        else:
            raise TypeError("CrossEntropyLoss: target must be integer class indices or float probabilities, "
                            f"got {target.dtype}")
        loss, cache = F.cross_entropy_forward(logits, target, self.label_smoothing, self.ignore_index)
        return loss, cache, count

    def _backward(self, dloss, cache):
        return F.cross_entropy_backward(dloss, cache)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, ...) (e.g. LogSoftmax outputs) against
    class indices: loss_n = -logp[n, y_n];  dL/dlogp = -one_hot(y) / N for the mean."""

    def __init__(self, reduction="mean", ignore_index=-100):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)

    def _elementwise(self, logp, target):
        _check_class_targets("NLLLoss", logp, target, self.ignore_index)
        loss, cache = F.nll_forward(logp, target, self.ignore_index)
        return loss, cache, int((target != self.ignore_index).sum())

    def _backward(self, dloss, cache):
        return F.nll_backward(dloss, cache)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits x with targets t in [0, 1] (same shape), computed stably:
    loss = max(x, 0) - x t + log(1 + e^-|x|);  dL/dx = (sigmoid(x) - t) / numel for the mean."""

    def _elementwise(self, x, t):
        _check_same_shape("BCEWithLogitsLoss", x, t)
        loss, cache = F.bce_with_logits_forward(x, t.astype(x.dtype, copy=False))
        return loss, cache, int(np.prod(x.shape))

    def _backward(self, dloss, cache):
        return F.bce_with_logits_backward(dloss, cache)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities p in [0, 1] (e.g. Sigmoid outputs):
    loss = -(t log p + (1 - t) log(1 - p));  dL/dp = (p - t) / (p (1 - p)) / numel for the mean."""

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
    """Mean squared error: loss = (pred - target)^2;  dL/dpred = 2 (pred - target) / numel."""

    def _elementwise(self, pred, target):
        _check_same_shape("MSELoss", pred, target)
        loss, cache = F.mse_forward(pred, target.astype(pred.dtype, copy=False))
        return loss, cache, int(np.prod(pred.shape))

    def _backward(self, dloss, cache):
        return F.mse_backward(dloss, cache)


class L1Loss(_Loss):
    """Mean absolute error: loss = |pred - target|;  dL/dpred = sign(pred - target) / numel."""

    def _elementwise(self, pred, target):
        _check_same_shape("L1Loss", pred, target)
        loss, cache = F.l1_forward(pred, target.astype(pred.dtype, copy=False))
        return loss, cache, int(np.prod(pred.shape))

    def _backward(self, dloss, cache):
        return F.l1_backward(dloss, cache)
