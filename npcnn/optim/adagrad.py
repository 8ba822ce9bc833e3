"""Adagrad: per-coordinate learning rates that shrink with the sum of squared gradients."""

from __future__ import annotations

from typing import Any, Iterable

from ..backend import get_array_module
from .checks import check_non_negative, check_positive
from .optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), PyTorch's update rule.

    For each parameter p with gradient g, at step t = 1, 2, ... (accumulator s, starting at
    ``initial_accumulator_value``)::

        g    <- g + weight_decay * p                    (if weight_decay)
        clr  =  lr / (1 + (t - 1) * lr_decay)
        s    <- s + g * g
        p    <- p - clr * g / (sqrt(s) + eps)

    State per parameter: ``step`` and ``sum``.

    Args:
        params: ``model.parameters()`` or a list of parameter-group dicts.
        lr: >= 0, the learning rate.
        lr_decay: >= 0, the time decay of the rate (clr above).
        weight_decay: >= 0, the L2 penalty coefficient.
        initial_accumulator_value: >= 0, the starting value of s.
        eps: > 0, added to the denominator.
    """

    state_keys = ("step", "sum")

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, defaults)
        # PyTorch creates the state eagerly, so the accumulator starts at its initial value.
        for group in self.param_groups:
            for p in group["params"]:
                value = float(group["initial_accumulator_value"])
                self.state[p] = {"step": 0, "sum": p.data * 0.0 + value}

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value"):
            check_non_negative("Adagrad", key, group[key])
        check_positive("Adagrad", "eps", group["eps"])

    def _update(self, p, grad, state, group):
        if "sum" not in state:  # a parameter whose state was never created (e.g. after loading)
            state.update(step=0, sum=p.data * 0.0 + float(group["initial_accumulator_value"]))
        state["step"] += 1
        weight_decay = float(group["weight_decay"])
        if weight_decay != 0:
            grad = grad + weight_decay * p.data
        clr = float(group["lr"]) / (1.0 + (state["step"] - 1) * float(group["lr_decay"]))
        state["sum"] += grad * grad
        std = get_array_module(p.data).sqrt(state["sum"]) + float(group["eps"])
        p.data -= clr * (grad / std)

