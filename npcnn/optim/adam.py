"""Adam and AdamW: momentum on the gradient and on its square, with bias correction."""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..backend import get_array_module
from .checks import check_bool, check_non_negative, check_positive
from .optimizer import Optimizer, check_betas


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), PyTorch's update rule.

    For each parameter p with gradient g, at step t = 1, 2, ... (m, v, v_max start at 0)::

        g     <- g + weight_decay * p                  (L2 penalty inside the gradient)
        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g * g
        v_max <- max(v_max, v)                          (if amsgrad; then v_max replaces v below)
        p     <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    State per parameter: ``step``, ``exp_avg`` (m), ``exp_avg_sq`` (v), ``max_exp_avg_sq``
    (v_max, if amsgrad).

    Args:
        params: ``model.parameters()`` or a list of parameter-group dicts.
        lr: >= 0, the step size.
        betas: (beta1, beta2), each in [0, 1): the decay of the running mean of g and of g^2.
        eps: > 0, added to the denominator (keeps a step finite where v is 0).
        weight_decay: >= 0, the L2 penalty (Adam: inside the gradient; AdamW: decoupled).
        amsgrad: use the running maximum of v (Reddi et al., 2018).
    """

    state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    decoupled_weight_decay = False

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        name = type(self).__name__
        check_positive(name, "eps", group["eps"])
        check_non_negative(name, "weight_decay", group["weight_decay"])
        check_betas(self, group)
        check_bool(name, "amsgrad", group["amsgrad"])

    def _update(self, p, grad, state, group):
        xp = get_array_module(p.data)
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        step = state["step"]
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                p.data *= 1.0 - lr * weight_decay
            else:
                grad = grad + weight_decay * p.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1.0 - beta1) * (grad - exp_avg)  # = beta1 m + (1 - beta1) g, PyTorch's lerp
        exp_avg_sq *= beta2
        exp_avg_sq += (1.0 - beta2) * (grad * grad)
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]
        step_size = lr / (1.0 - beta1 ** step)
        denom = xp.sqrt(exp_avg_sq) / math.sqrt(1.0 - beta2 ** step) + eps
        p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    The decay shrinks the weights directly instead of entering the gradient, so it is not
    rescaled by Adam's per-coordinate step size::

        p     <- p * (1 - lr * weight_decay)
        m, v  <- as in Adam, from the raw gradient g
        p     <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The arguments are Adam's; ``weight_decay`` defaults to 1e-2 (PyTorch's).
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
