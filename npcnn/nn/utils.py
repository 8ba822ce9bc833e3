"""Gradient clipping: keep one bad batch from throwing the weights far away.

Both functions replace ``p.grad`` with a new array (``p.grad = p.grad * scale``) instead of
scaling it in place: a layer may hand the same array to two parameters, or a gradient may be a
view of an upstream gradient still in use.
"""

import math

from ..backend import get_array_module
from .parameter import Parameter


def _with_grads(parameters):
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale all gradients together so that their global norm is at most ``max_norm``.

    The global norm treats every gradient as one long vector::

        total = (sum_p ||g_p||^q)^(1/q)             (q = norm_type; q = inf: max_p max |g_p|)
        g_p  <- g_p * min(1, max_norm / (total + 1e-6))       for every p

    Returns ``total`` (a Python float, measured before clipping), as PyTorch does; parameters
    without a gradient are ignored. With ``error_if_nonfinite`` a NaN or infinite norm raises.
    """
    params = _with_grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not params:
        return 0.0
    if norm_type == math.inf:
        total = max(float(get_array_module(p.grad).abs(p.grad).max()) for p in params)
    else:
        norms = [float(get_array_module(p.grad).linalg.norm(p.grad.ravel(), ord=norm_type)) for p in params]
        total = math.fsum(n ** norm_type for n in norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}; "
                           "set error_if_nonfinite=False to clip anyway")
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for p in params:
            p.grad = p.grad * scale
    return total


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        p.grad = get_array_module(p.grad).clip(p.grad, -clip_value, clip_value)
