"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any, Iterable

from .checks import check_bool, check_non_negative, check_unit_interval
from .optimizer import Optimizer


class SGD(Optimizer):
    """SGD, PyTorch's update rule.

    For each parameter p with gradient g, at step t (buffer b, learning rate lr)::

        g  <- g + weight_decay * p                                  (L2 penalty, if weight_decay)
        b  <- g                                     at t = 1        (if momentum)
        b  <- momentum * b + (1 - dampening) * g    at t > 1
        g  <- g + momentum * b   if nesterov   else   b
        p  <- p - lr * g

    State per parameter: ``momentum_buffer`` (only when momentum != 0).

    Args:
        params: ``model.parameters()``, or a list of parameter-group dicts
            (``[{"params": ..., "lr": ...}, ...]``) whose keys override the defaults below.
        lr: >= 0, the learning rate.
        momentum: in [0, 1), the weight of the previous update in the buffer.
        dampening: in [0, 1), the fraction of the new gradient held back from the buffer.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
        weight_decay: >= 0, the L2 penalty coefficient added to the gradient.
    """

    state_keys = ("momentum_buffer",)

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        check_unit_interval("SGD", "momentum", group["momentum"])
        check_unit_interval("SGD", "dampening", group["dampening"])
        check_non_negative("SGD", "weight_decay", group["weight_decay"])
        check_bool("SGD", "nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p, grad, state, group):
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay, dampening = float(group["weight_decay"]), float(group["dampening"])
        if weight_decay != 0:
            grad = grad + weight_decay * p.data
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.copy()
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1.0 - dampening) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= lr * grad
