"""Learning-rate schedules: the learning rate as a function of the step count t.

A scheduler rewrites ``group["lr"]`` of its optimizer each time ``scheduler.step()`` is called.
Whether t counts epochs or iterations is up to the caller: call ``step()`` once per epoch, or
once per batch for a per-iteration schedule (``fit(..., scheduler_interval="batch")``).

As in PyTorch, building a scheduler sets the learning rate for t = 0, every group remembers its
starting rate as ``group["initial_lr"]`` (lr0 below), and ``get_last_lr()`` returns the rates
last written. Each schedule here is written in closed form, lr(t) from lr0 and t, so the formula
in each docstring is exactly what the code computes.

    StepLR              lr0 * gamma^floor(t / step_size)
    MultiStepLR         lr0 * gamma^(number of milestones <= t)
    ExponentialLR       lr0 * gamma^t
    ExponentialDecayLR  lr0 * exp(-k t)
    InverseTimeLR       lr0 / (1 + k t)
    InverseSqrtLR       lr0 / sqrt(1 + t / timescale)
    LinearLR            lr0 * (start + (end - start) * min(t, T) / T)
    CosineAnnealingLR   eta_min + (lr0 - eta_min) * (1 + cos(pi t / T)) / 2, then eta_min
    OneCycleLR          warm up to max_lr, then anneal to max_lr / (div_factor * final_div_factor)
    ReduceLROnPlateau   lr * factor when a monitored metric stops improving
    LinearWarmup        a linear warm-up in front of any of the above (delaying it, or not)
"""

from __future__ import annotations

import bisect
import copy
import math
from typing import Any, Optional, Sequence

from .checks import check_bool, check_int, check_non_negative, check_number, check_positive, check_unit_interval
from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses write ``lr_at(base_lr, t)``, the closed-form rate at step t.

    Args (of every schedule below):
        optimizer: the :class:`~npcnn.optim.Optimizer` whose ``group["lr"]`` it writes.
        last_epoch: the last step already done (-1, the default, starts at t = 0; a larger
            value resumes and needs ``initial_lr`` in every group, i.e. the optimizer's state
            loaded first). Every argument is checked at construction: a schedule that would
            write a negative or non-finite rate is an error.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        name = type(self).__name__
        last_epoch = check_int(name, "last_epoch", last_epoch, -1)
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs "
                               "'initial_lr' in every parameter group (load the optimizer's state first)")
        self.base_lrs = [check_non_negative(name, "initial_lr", group["initial_lr"])
                         for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr = [float(group["lr"]) for group in optimizer.param_groups]
        self.step()

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` of a group whose initial rate is ``base_lr`` (closed form)."""
        raise NotImplementedError(f"{type(self).__name__} does not define lr_at()")

    def get_lr(self):
        """The rates for the current ``last_epoch``."""
        return [float(self.lr_at(base, self.last_epoch)) for base in self.base_lrs]

    def step(self):
        """Advance t by one and write the new rates into the optimizer."""
        self.last_epoch += 1
        self._set_lrs(self.get_lr())

    def _set_lrs(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        """The rates last written into the optimizer, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (plain numbers and lists: JSON-friendly)."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s attributes; unknown or missing keys are an error."""
        expected = set(self.__dict__) - {"optimizer"}
        if set(state_dict) != expected:
            raise KeyError(f"{type(self).__name__}.load_state_dict: unknown keys "
                           f"{sorted(set(state_dict) - expected)}, missing keys {sorted(expected - set(state_dict))}")
        self.__dict__.update(copy.deepcopy(dict(state_dict)))

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"


class StepLR(LRScheduler):
    """lr(t) = lr0 * gamma^floor(t / step_size): divide by 1/gamma every ``step_size`` steps.

    Args:
        step_size: an integer >= 1, the steps between two decays.
        gamma: >= 0, the factor of each decay (0.1: ten times smaller).
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = check_int("StepLR", "step_size", step_size, 1)
        self.gamma = check_non_negative("StepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """lr(t) = lr0 * gamma^k, k = the number of milestones <= t.

    Args:
        milestones: the steps (integers >= 0, any order) at which the rate is multiplied by gamma.
        gamma: >= 0, the factor at each milestone.
    """

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = sorted(check_int("MultiStepLR", "milestone", m, 0) for m in milestones)
        self.gamma = check_non_negative("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class ExponentialLR(LRScheduler):
    """lr(t) = lr0 * gamma^t.

    Args:
        gamma: >= 0, the factor per step (0.95: 5% smaller each step).
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = check_non_negative("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        return base_lr * self.gamma ** t


class ExponentialDecayLR(LRScheduler):
    """lr(t) = lr0 * exp(-k t), the continuous form of ExponentialLR (gamma = exp(-k)).

    Args:
        k: >= 0, the decay rate per step (the rate falls by e every 1/k steps).
    """

    def __init__(self, optimizer, k, last_epoch=-1):
        self.k = check_non_negative("ExponentialDecayLR", "k", k)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        return base_lr * math.exp(-self.k * t)


class InverseTimeLR(LRScheduler):
    """Time-based decay: lr(t) = lr0 / (1 + k t).

    Args:
        k: >= 0, the decay rate per step (the rate halves at t = 1/k).
    """

    def __init__(self, optimizer, k, last_epoch=-1):
        self.k = check_non_negative("InverseTimeLR", "k", k)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        return base_lr / (1.0 + self.k * t)


class InverseSqrtLR(LRScheduler):
    """Inverse square root decay: lr(t) = lr0 / sqrt(1 + t / timescale).

    The rate halves at t = 3 * timescale and falls as 1/sqrt(t) for t >> timescale. With the
    default ``timescale=1`` (lr0 / sqrt(t + 1)) it drops by 29% after the very first step, so
    for a per-iteration schedule pick the timescale from the run: e.g. ``timescale = T / 3``
    halves the rate at step T, as a cosine over 2T steps or a StepLR(step_size=T, gamma=0.5)
    would. The Transformer's schedule (Vaswani et al., 2017), lr0 * t / W for W warm-up steps
    and lr0 * sqrt(W / t) after them, is exactly
    ``LinearWarmup(InverseSqrtLR(opt, timescale=W), W, start_factor=0.0)``.

    Args:
        optimizer: the optimizer whose rates are set.
        timescale: > 0, in steps: how long the rate stays near lr0.
        last_epoch: the t already done when resuming (-1: start).
    """

    def __init__(self, optimizer: Optimizer, timescale: float = 1.0, last_epoch: int = -1) -> None:
        self.timescale = check_positive("InverseSqrtLR", "timescale", timescale)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """lr0 / sqrt(1 + t / timescale)."""
        return base_lr / math.sqrt(1.0 + t / self.timescale)


class LinearLR(LRScheduler):
    """lr(t) = lr0 * (start_factor + (end_factor - start_factor) * min(t, T) / T), T = total_iters.

    ``LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=T)`` is linear decay to zero.

    Args:
        start_factor: >= 0, the fraction of lr0 at t = 0.
        end_factor: >= 0, the fraction of lr0 from t = total_iters on.
        total_iters: an integer >= 1, the steps of the linear change.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self.start_factor = check_non_negative("LinearLR", "start_factor", start_factor)
        self.end_factor = check_non_negative("LinearLR", "end_factor", end_factor)
        self.total_iters = check_int("LinearLR", "total_iters", total_iters, 1)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        fraction = min(t, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * fraction)


class CosineAnnealingLR(LRScheduler):
    """lr(t) = eta_min + (lr0 - eta_min) * (1 + cos(pi t / T_max)) / 2 for t <= T_max, then eta_min.

    Unlike PyTorch's, which keeps following the cosine back up after T_max, the rate stays
    pinned at ``eta_min`` once the schedule has run its course.

    Args:
        T_max: an integer >= 1, the steps from lr0 down to eta_min.
        eta_min: >= 0, the final rate.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = check_int("CosineAnnealingLR", "T_max", T_max, 1)
        self.eta_min = check_non_negative("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        """The rate at step ``t`` for initial rate ``base_lr``: the formula above."""
        if t >= self.T_max:
            return self.eta_min
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), PyTorch's formulas; step it once per batch.

    With initial_lr = max_lr / div_factor and min_lr = initial_lr / final_div_factor, over
    ``total_steps`` steps (or ``epochs * steps_per_epoch``):

    * phase 1, t in [0, pct_start*T - 1]: lr rises from initial_lr to max_lr;
    * phase 2, up to T - 1: lr falls from max_lr to min_lr
      (``three_phase=True``: back to initial_lr first, then to min_lr).

    Within a phase at fraction p, ``anneal_strategy="cos"`` gives
    end + (start - end) * (1 + cos(pi p)) / 2 and ``"linear"`` gives start + (end - start) * p.
    With ``cycle_momentum`` the momentum (or Adam's beta1) moves the opposite way, between
    ``max_momentum`` and ``base_momentum``.

    Args:
        max_lr: >= 0, the peak rate (one per parameter group, or one for all).
        total_steps: an integer >= 1, the length of the cycle; or give ``epochs`` and
            ``steps_per_epoch`` (integers >= 1) and T = their product.
        pct_start: in [0, 1], the fraction of T spent rising.
        anneal_strategy: ``"cos"`` or ``"linear"``, the shape within a phase.
        cycle_momentum: cycle the momentum (SGD) or beta1 (Adam) against the rate.
        base_momentum, max_momentum: in [0, 1), the momentum at the peak rate and at the ends.
        div_factor: > 0, initial_lr = max_lr / div_factor.
        final_div_factor: > 0, min_lr = initial_lr / final_div_factor.
        three_phase: come back down to initial_lr before the final annealing to min_lr.

    Stepping it more than ``total_steps`` times is an error (the cycle has ended).
    """

    def __init__(self, optimizer: Optimizer, max_lr: Any, total_steps: Optional[int] = None,
                 epochs: Optional[int] = None, steps_per_epoch: Optional[int] = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: Any = 0.85,
                 max_momentum: Any = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1) -> None:
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: expected an Optimizer, got {type(optimizer).__name__}")
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = check_int(name, "epochs", epochs, 1) * check_int(name, "steps_per_epoch", steps_per_epoch, 1)
        self.total_steps = check_int(name, "total_steps", total_steps, 1)
        pct = check_number(name, "pct_start", pct_start, 0.0, 1.0, high_open=False)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        groups = optimizer.param_groups
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"{name}: {len(max_lrs)} max_lr values for {len(groups)} parameter groups")
        self.max_lrs = [check_non_negative(name, "max_lr", m) for m in max_lrs]
        div_factor = check_positive(name, "div_factor", div_factor)
        final_div_factor = check_positive(name, "final_div_factor", final_div_factor)
        self.initial_lrs = [m / div_factor for m in self.max_lrs]
        self.min_lrs = [i / final_div_factor for i in self.initial_lrs]
        T = float(self.total_steps)
        if three_phase:
            self.phases = [[pct * T - 1, "initial", "max"], [2 * pct * T - 2, "max", "initial"],
                           [T - 1, "initial", "min"]]
        else:
            self.phases = [[pct * T - 1, "initial", "max"], [T - 1, "max", "min"]]
        self.cycle_momentum = check_bool(name, "cycle_momentum", cycle_momentum)
        self.momentum_key = None
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
            self.momentum_key = "betas" if "betas" in optimizer.defaults else "momentum"
        self.base_momentum = check_unit_interval(name, "base_momentum", base_momentum)
        self.max_momentum = check_unit_interval(name, "max_momentum", max_momentum)
        if last_epoch == -1:
            for group, initial in zip(groups, self.initial_lrs):
                group["initial_lr"] = initial
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _phase(self, t):
        """(phase, fraction of it done) at step t."""
        start = 0.0
        for i, (end, _, _) in enumerate(self.phases):
            if t <= end or i == len(self.phases) - 1:
                return self.phases[i], (t - start) / (end - start)
            start = end
        raise AssertionError("unreachable")

    def get_lr(self):
        """The rates of the 1cycle phases at the current step (an error past ``total_steps``)."""
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, more than total_steps={self.total_steps}")
        (_, start_name, end_name), pct = self._phase(t)
        lrs = []
        for i in range(len(self.base_lrs)):
            by_name = {"initial": self.initial_lrs[i], "max": self.max_lrs[i], "min": self.min_lrs[i]}
            lrs.append(self._anneal(by_name[start_name], by_name[end_name], pct))
        return lrs

    def step(self):
        """Advance t by one: write the new rates and, with ``cycle_momentum``, the momentum."""
        super().step()
        if not self.cycle_momentum:
            return
        (_, start_name, end_name), pct = self._phase(self.last_epoch)
        # momentum is high while the rate is low: "initial"/"min" pair with max_momentum
        by_name = {"initial": self.max_momentum, "min": self.max_momentum, "max": self.base_momentum}
        momentum = self._anneal(by_name[start_name], by_name[end_name], pct)
        for group in self.optimizer.param_groups:
            if self.momentum_key == "betas":
                group["betas"] = (momentum, group["betas"][1])
            else:
                group["momentum"] = momentum


class ReduceLROnPlateau:
    """Multiply the rate by ``factor`` when a metric has not improved for ``patience`` steps.

    ``step(metric)`` after each validation. An improvement means, for ``mode="min"``,
    metric < best * (1 - threshold) (``threshold_mode="rel"``) or metric < best - threshold
    (``"abs"``), mirrored for ``"max"``. After a reduction, ``cooldown`` steps pass before bad
    steps count again; the rate never goes below ``min_lr``, and a change smaller than ``eps``
    is skipped. PyTorch's rules exactly.

    Args:
        optimizer: the optimizer whose rates are reduced.
        mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
        factor: in [0, 1), new rate = rate * factor.
        patience: an integer >= 0, the steps without improvement tolerated before a reduction.
        threshold: >= 0, the least improvement that counts (relative or absolute, below).
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: an integer >= 0, steps after a reduction during which bad steps are not counted.
        min_lr: >= 0, the floor of the rate (one per group, or one for all).
        eps: >= 0, a reduction smaller than this is skipped.
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr: Any = 0.0,
                 eps: float = 1e-8) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected an Optimizer, got {type(optimizer).__name__}")
        name = "ReduceLROnPlateau"
        self.factor = check_unit_interval(name, "factor", factor)
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs', "
                             f"got {mode!r}, {threshold_mode!r}")
        self.optimizer = optimizer
        groups = optimizer.param_groups
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(groups)
        if len(min_lrs) != len(groups):
            raise ValueError(f"{name}: {len(min_lrs)} min_lr values for {len(groups)} parameter groups")
        self.min_lrs = [check_non_negative(name, "min_lr", m) for m in min_lrs]
        self.mode, self.patience = mode, check_int(name, "patience", patience, 0)
        self.threshold, self.threshold_mode = check_non_negative(name, "threshold", threshold), threshold_mode
        self.cooldown = check_int(name, "cooldown", cooldown, 0)
        self.eps = check_non_negative(name, "eps", eps)
        self.cooldown_counter, self.num_bad_epochs, self.last_epoch = 0, 0, 0
        self.best = math.inf if mode == "min" else -math.inf
        self._last_lr = [float(group["lr"]) for group in groups]

    def is_better(self, a: float, best: float) -> bool:
        """Whether the metric value ``a`` improves on ``best`` (mode and threshold as above)."""
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (1.0 + self.threshold) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics: float) -> None:
        """Record one value of the monitored metric and reduce the rates if it has stalled."""
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new_lr = max(float(group["lr"]) * self.factor, min_lr)
                if float(group["lr"]) - new_lr > self.eps:
                    group["lr"] = new_lr
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]

    get_last_lr = LRScheduler.get_last_lr
    state_dict = LRScheduler.state_dict
    load_state_dict = LRScheduler.load_state_dict


class LinearWarmup:
    """A linear warm-up of ``warmup_steps`` steps in front of any schedule.

    With W = warmup_steps, s = start_factor and lr_s(t) the wrapped schedule's rate at t.

    ``delay=True`` (the default) **delays the wrapped schedule by W steps**: the warm-up climbs
    to the schedule's first rate, and only then does the schedule start, from its own t = 0::

        lr(t) = lr_s(0) * (s + (1 - s) * t / W)      for t < W
        lr(t) = lr_s(t - W)                           for t >= W

    so a per-iteration schedule over N steps runs for N + W steps in all (build it with N =
    total - W to end on time). A wrapped ReduceLROnPlateau starts watching after the warm-up.

    ``delay=False`` warms up **without shifting**: the wrapped schedule runs from t = 0 as it
    would alone, and the warm-up only scales its first W rates::

        lr(t) = lr_s(t) * (s + (1 - s) * t / W)      for t < W
        lr(t) = lr_s(t)                               for t >= W

    e.g. ``LinearWarmup(CosineAnnealingLR(opt, T_max=total), 500, delay=False)`` ends at
    ``total`` steps exactly, its rates identical to the plain cosine's from step 500 on
    (a closed-form schedule only: not a ReduceLROnPlateau).

    Args:
        scheduler: the schedule to warm up, built first on the same optimizer.
        warmup_steps: W >= 0, the number of warm-up steps (0: no warm-up).
        start_factor: s in [0, 1], the fraction of the rate at t = 0.
        delay: True shifts the wrapped schedule by W steps, False keeps it in place (above).

    ``step(metric)`` passes the metric on to a wrapped ReduceLROnPlateau.
    """

    def __init__(self, scheduler: Any, warmup_steps: int, start_factor: float = 0.1, delay: bool = True) -> None:
        if not isinstance(getattr(scheduler, "optimizer", None), Optimizer):
            raise TypeError(f"LinearWarmup: expected a learning-rate scheduler (e.g. CosineAnnealingLR(optimizer, "
                            f"...)), got {type(scheduler).__name__}")
        self.scheduler, self.optimizer = scheduler, scheduler.optimizer
        self.warmup_steps = check_int("LinearWarmup", "warmup_steps", warmup_steps, 0)
        self.start_factor = check_number("LinearWarmup", "start_factor", start_factor, 0.0, 1.0, high_open=False)
        self.delay = check_bool("LinearWarmup", "delay", delay)
        if not self.delay and isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError("LinearWarmup: delay=False needs a closed-form schedule; a ReduceLROnPlateau reacts to "
                             "the rates it has set, so warm it up with delay=True")
        self.target_lrs = scheduler.get_last_lr()
        self.last_epoch = -1
        self._last_lr = list(self.target_lrs)
        self.step()

    def _factor(self, t):
        return self.start_factor + (1.0 - self.start_factor) * t / self.warmup_steps

    def step(self, metrics: Optional[float] = None) -> None:
        """Advance t by one and write the rate of the formulas above into the optimizer."""
        self.last_epoch += 1
        t, W = self.last_epoch, self.warmup_steps
        if not self.delay:
            if t > 0:
                self.scheduler.step()
            lrs = self.scheduler.get_last_lr()
            if t < W:
                lrs = [lr * self._factor(t) for lr in lrs]
            self._write(lrs)
        elif t < W:
            self._write([lr * self._factor(t) for lr in self.target_lrs])
        elif t == W:
            self._write(self.target_lrs)
        elif isinstance(self.scheduler, ReduceLROnPlateau):
            if metrics is None:
                raise ValueError("LinearWarmup: the wrapped ReduceLROnPlateau needs step(metric)")
            self.scheduler.step(metrics)
        else:
            self.scheduler.step()
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]

    def _write(self, lrs):
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The rates last written into the optimizer, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        """The warm-up's counters and the wrapped scheduler's state (JSON-friendly)."""
        return {"warmup_steps": self.warmup_steps, "start_factor": self.start_factor, "delay": self.delay,
                "target_lrs": list(self.target_lrs), "last_epoch": self.last_epoch,
                "_last_lr": list(self._last_lr), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a state saved before ``delay`` existed loads as ``delay=True``."""
        expected = {"warmup_steps", "start_factor", "delay", "target_lrs", "last_epoch", "_last_lr", "scheduler"}
        if not expected - {"delay"} <= set(state_dict) <= expected:
            raise KeyError(f"LinearWarmup.load_state_dict: expected keys {sorted(expected)}, got {sorted(state_dict)}")
        self.scheduler.load_state_dict(state_dict["scheduler"])
        self.warmup_steps, self.start_factor = int(state_dict["warmup_steps"]), float(state_dict["start_factor"])
        self.delay = bool(state_dict.get("delay", True))
        self.target_lrs = [float(v) for v in state_dict["target_lrs"]]
        self.last_epoch = int(state_dict["last_epoch"])
        self._last_lr = [float(v) for v in state_dict["_last_lr"]]


# ----------------------------------------------------------------------------- looking at a schedule


def schedule_values(scheduler: Any, steps: int, metrics: Optional[Sequence[float]] = None) -> list[float]:
    """The rates of group 0 over ``steps`` steps, [lr(t), lr(t+1), ...], from the current t.

    The scheduler and the optimizer's hyperparameters are put back afterwards, so a schedule
    can be looked at before training with it. ``metrics`` (one per step) feed a plateau schedule.
    """
    saved_state = scheduler.state_dict()
    saved_groups = [{k: v for k, v in g.items() if k != "params"} for g in scheduler.optimizer.param_groups]
    values = [scheduler.get_last_lr()[0]]
    try:
        for i in range(int(steps) - 1):
            if metrics is not None:
                scheduler.step(metrics[i])
            else:
                scheduler.step()
            values.append(scheduler.get_last_lr()[0])
    finally:
        scheduler.load_state_dict(saved_state)
        for group, saved in zip(scheduler.optimizer.param_groups, saved_groups):
            group.update(saved)
    return values


def plot_schedule(scheduler: Any, steps: int, ax: Any = None, metrics: Optional[Sequence[float]] = None,
                  label: Optional[str] = None) -> Any:
    """Plot ``schedule_values(scheduler, steps)`` (learning rate against step) on a matplotlib
    axis and return the axis. matplotlib is imported here, only when a plot is asked for."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(int(steps)), schedule_values(scheduler, steps, metrics), label=label or type(scheduler).__name__)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.set_title("learning-rate schedule")
    ax.grid(True, alpha=0.3)
    if label is not None:
        ax.legend()
    return ax
