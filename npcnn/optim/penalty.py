"""Weight penalties: L1 (lasso), L2 (ridge) and their sum (elastic net), added to the gradients.

The penalized objective is the data loss plus

    P(w) = l1 * sum_i |w_i| + (l2 / 2) * sum_i w_i^2

over the chosen parameters, with the (sub)gradient

    dP/dw_i = l1 * sign(w_i) + l2 * w_i            (sign(0) = 0, the smallest subgradient at 0).

With ``l1 = 0`` this is exactly an optimizer's ``weight_decay=l2`` (SGD adds ``l2 * w`` to the
gradient); the L1 part has no optimizer argument, so it is added here, between ``backward`` and
``optimizer.step()``::

    loss = loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    penalty = add_weight_penalty(model.parameters(), l1=1e-4, skip_1d=True)
    optimizer.step()

L1 pushes every weight towards zero by the same amount ``lr * l1`` per step, whatever its size, so
small weights reach zero (sparse weights); L2 shrinks each weight in proportion to its size.
"""

import math

from ..backend import get_array_module
from ..nn.parameter import Parameter


def _check_strength(name, value):
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"add_weight_penalty: {name} must be a finite number >= 0, got {value}")
    return value


def _penalized(parameters, skip_1d):
    """The trainable parameters the penalty applies to (frozen ones never; 1-D ones unless skipped)."""
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    chosen = []
    for p in parameters:
        if not isinstance(p, Parameter):
            raise TypeError("add_weight_penalty: expected Parameters (e.g. model.parameters()), "
                            f"got {type(p).__name__}")
        if p.requires_grad and not (skip_1d and p.ndim <= 1):
            chosen.append(p)
    return chosen


def weight_penalty(parameters, l1=0.0, l2=0.0, skip_1d=False):
    """The penalty value ``l1 * sum|w| + (l2 / 2) * sum w^2`` (a Python float), gradients untouched.

    Args:
        parameters: a Parameter or an iterable of them (``model.parameters()``); frozen ones
            (``requires_grad=False``) are left out.
        l1: strength of the L1 (lasso) term, >= 0.
        l2: strength of the L2 (ridge) term, >= 0; its gradient is ``l2 * w``.
        skip_1d: leave out parameters with at most one dimension (biases, batch-norm scales and
            shifts), which are usually not penalized.
    """
    l1, l2 = _check_strength("l1", l1), _check_strength("l2", l2)
    total = 0.0
    for p in _penalized(parameters, skip_1d):
        xp = get_array_module(p.data)
        if l1:
            total += l1 * float(xp.abs(p.data).sum(dtype=xp.float64))
        if l2:
            total += 0.5 * l2 * float((p.data.astype(xp.float64) ** 2).sum())
    return total


def add_weight_penalty(parameters, l1=0.0, l2=0.0, skip_1d=False):
    """Add the penalty's gradient ``l1 * sign(w) + l2 * w`` to each chosen parameter's ``grad``.

    Call it after ``backward`` and before ``optimizer.step()``. A parameter without a gradient yet
    gets the penalty gradient as its gradient. Arguments as in :func:`weight_penalty`; returns the
    penalty value (a Python float) at the current weights, to add to the reported loss.
    The gradient keeps the parameter's dtype; ``grad`` is replaced, never modified in place.
    """
    chosen = _penalized(parameters, skip_1d)          # a list: model.parameters() may be a generator
    value = weight_penalty(chosen, l1=l1, l2=l2)
    l1, l2 = float(l1), float(l2)
    for p in chosen:
        if not (l1 or l2):
            break
        xp = get_array_module(p.data)
        g = xp.zeros_like(p.data)
        if l1:
            g += l1 * xp.sign(p.data)
        if l2:
            g += l2 * p.data
        p.accumulate_grad(g)
    return value
