"""Loss kernels: ``<name>_forward(pred, target, ...) -> (per_element_loss, cache)`` and
``<name>_backward(dloss, cache) -> dpred``, where ``dloss`` has the shape of the per-element loss
(the reduction's weight, e.g. 1/N for a mean, is folded into ``dloss`` by the caller).
"""

import math

from ..backend import get_array_module


def _log_softmax(x, dim):
    xp = get_array_module(x)
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))


def _one_hot(indices, num_classes, dtype, xp):
    """(N, *) class indices -> (N, C, *) one-hot in ``dtype`` (classes on axis 1, like the logits)."""
    eye = xp.eye(num_classes, dtype=dtype)[indices]  # (N, *, C)
    return xp.moveaxis(eye, -1, 1)


def _class_weights(weight, ndim):
    """(C,) class weights shaped (1, C, 1, ...) to broadcast against (N, C, *)."""
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


def cross_entropy_forward(logits, target, label_smoothing=0.0, ignore_index=-100, weight=None):
    """Per-sample loss of logits (N, C, *) against class indices (N, *) or probabilities (N, C, *).

    With q the smoothed target distribution, q = (1 - ls) t + ls / C, times the class weights w
    (``weight``, shape (C,), default ones):
        loss = -sum_c w_c q_c log softmax(logits)_c          (log-softmax by log-sum-exp)
        dloss/dlogits = softmax(logits) * sum_c w_c q_c - w q  (= softmax - q when q sums to 1)
    Targets equal to ``ignore_index`` get zero loss and zero gradient.
    """
    xp = get_array_module(logits)
    num_classes = logits.shape[1]
    logp = _log_softmax(logits, dim=1)
    if xp.issubdtype(target.dtype, xp.integer):
        keep = target != ignore_index
        q = _one_hot(xp.where(keep, target, 0), num_classes, logits.dtype, xp)
        q = q * xp.expand_dims(keep, 1).astype(logits.dtype)
    else:
        keep = None
        q = target.astype(logits.dtype, copy=False)
    if label_smoothing:
        mass = q.sum(axis=1, keepdims=True)  # 1 for kept samples, 0 for ignored ones
        q = (1.0 - label_smoothing) * q + (label_smoothing / num_classes) * mass
    if weight is not None:
        q = q * _class_weights(weight, logits.ndim)
    loss = -(q * logp).sum(axis=1)
    return loss, (logp, q)


def cross_entropy_backward(dloss, cache):
    """dlogits = dloss * (softmax * sum_c w_c q_c - w q) (the cache holds log-softmax and w q)."""
    logp, q = cache
    xp = get_array_module(logp)
    dloss = xp.expand_dims(dloss, 1)
    return dloss * (xp.exp(logp) * q.sum(axis=1, keepdims=True) - q)


def nll_forward(logp, target, ignore_index=-100, weight=None):
    """loss_n = -w[t_n] logp[n, t_n];  dlogp = -w[t_n] one_hot(t_n) (zero for ignored targets);
    w = ``weight`` (C,), default ones."""
    xp = get_array_module(logp)
    keep = target != ignore_index
    picked = _one_hot(xp.where(keep, target, 0), logp.shape[1], logp.dtype, xp)
    picked = picked * xp.expand_dims(keep, 1).astype(logp.dtype)
    if weight is not None:
        picked = picked * _class_weights(weight, logp.ndim)
    return -(picked * logp).sum(axis=1), picked


def nll_backward(dloss, picked):
    """dlogp = -dloss * w[t] one_hot(t)  (``picked`` is the weighted one-hot of the forward)."""
    xp = get_array_module(picked)
    return -xp.expand_dims(dloss, 1) * picked


def bce_with_logits_forward(x, t):
    """loss = max(x, 0) - x t + log(1 + e^-|x|)  (= -t log s(x) - (1-t) log(1 - s(x)), stable);
    dloss/dx = s(x) - t."""
    xp = get_array_module(x)
    loss = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
    return loss, (x, t)


def bce_with_logits_backward(dloss, cache):
    """dx = dloss * (sigmoid(x) - t)."""
    x, t = cache
    xp = get_array_module(x)
    return dloss * (0.5 * (1.0 + xp.tanh(0.5 * x)) - t)


def bce_forward(p, t):
    """loss = -(t log p + (1-t) log(1-p)), each log clamped at -100 as PyTorch;
    dloss/dp = (p - t) / max(p (1 - p), 1e-12)."""
    xp = get_array_module(p)
    log_p = xp.maximum(xp.log(p), -100.0)
    log_1mp = xp.maximum(xp.log1p(-p), -100.0)
    return -(t * log_p + (1.0 - t) * log_1mp), (p, t)


def bce_backward(dloss, cache):
    """dp = dloss * (p - t) / max(p (1 - p), 1e-12)."""
    p, t = cache
    xp = get_array_module(p)
    return dloss * (p - t) / xp.maximum(p * (1.0 - p), 1e-12)


def mse_forward(pred, target):
    """loss = (pred - target)^2;  dloss/dpred = 2 (pred - target)."""
    diff = pred - target
    return diff * diff, diff


def mse_backward(dloss, diff):
    """dpred = dloss * 2 (pred - target)."""
    return dloss * (2.0 * diff)


def l1_forward(pred, target):
    """loss = |pred - target|;  dloss/dpred = sign(pred - target) (0 at 0, as PyTorch)."""
    xp = get_array_module(pred)
    diff = pred - target
    return xp.abs(diff), diff


def l1_backward(dloss, diff):
    """dpred = dloss * sign(pred - target)."""
    xp = get_array_module(diff)
    return dloss * xp.sign(diff)


def cross_entropy_naive(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    """Loop twin for 2-D logits and class indices, PyTorch's mean: the sum over non-ignored
    samples of -sum_c w_c q_c log(e^{z_c} / sum_k e^{z_k}), q = (1 - ls) one_hot(y) + ls / C,
    divided by sum of w[y_n] over those samples (their number without weights)."""
    num_classes = logits.shape[1]
    w = [1.0] * num_classes if weight is None else [float(v) for v in weight]
    total = denominator = 0.0
    for n in range(logits.shape[0]):
        y = int(target[n])
        if y == ignore_index:
            continue
        row = [float(v) for v in logits[n]]
        top = max(row)
        log_sum = top + math.log(sum(math.exp(v - top) for v in row))
        for c in range(num_classes):
            q = (1.0 - label_smoothing) * (c == y) + label_smoothing / num_classes
            total -= w[c] * q * (row[c] - log_sum)
        denominator += w[y]
    return total / denominator
