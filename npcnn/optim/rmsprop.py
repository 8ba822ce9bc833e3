"""RMSprop: divide the gradient by a running root mean square of recent gradients."""

from __future__ import annotations

from typing import Any, Iterable

from ..backend import get_array_module
from .checks import check_bool, check_non_negative, check_positive, check_unit_interval
from .optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), PyTorch's update rule.

    For each parameter p with gradient g (running averages v, gbar and buffer b start at 0)::

        g    <- g + weight_decay * p                         (if weight_decay)
        v    <- alpha * v + (1 - alpha) * g * g
        gbar <- alpha * gbar + (1 - alpha) * g                (if centered)
        d    =  sqrt(v - gbar^2) + eps   if centered   else   sqrt(v) + eps
        b    <- momentum * b + g / d;    p <- p - lr * b      (if momentum > 0)
        p    <- p - lr * g / d                                (otherwise)

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (if momentum > 0),
    ``grad_avg`` (if centered).

    Args:
        params: ``model.parameters()`` or a list of parameter-group dicts.
        lr: >= 0, the learning rate.
        alpha: in [0, 1), the decay of the running mean of g^2.
        eps: > 0, added to the denominator.
        weight_decay: >= 0, the L2 penalty coefficient.
        momentum: in [0, 1), momentum on the normalized step.
        centered: divide by the running standard deviation (subtract the mean of g) instead.
    """

    state_keys = ("step", "square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        check_unit_interval("RMSprop", "alpha", group["alpha"])
        check_positive("RMSprop", "eps", group["eps"])
        check_non_negative("RMSprop", "weight_decay", group["weight_decay"])
        check_unit_interval("RMSprop", "momentum", group["momentum"])
        check_bool("RMSprop", "centered", group["centered"])

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.data)
        alpha, eps = float(group["alpha"]), float(group["eps"])
        momentum, weight_decay = float(group["momentum"]), float(group["weight_decay"])
        if not state:
            state["step"] = 0
            state["square_avg"] = xp.zeros_like(p.data)
            if momentum > 0:
                state["momentum_buffer"] = xp.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = xp.zeros_like(p.data)
        state["step"] += 1
        if weight_decay != 0:
            grad = grad + weight_decay * p.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1.0 - alpha) * (grad * grad)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1.0 - alpha) * (grad - grad_avg)  # PyTorch's lerp toward g
            avg = xp.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = xp.sqrt(square_avg) + eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            p.data -= float(group["lr"]) * buf
        else:
            p.data -= float(group["lr"]) * (grad / avg)
