"""Optimizer: the base class of every update rule, with PyTorch's parameter groups and state dicts.

An optimizer holds ``param_groups``, a list of dicts each with its ``"params"`` (a list of
:class:`~npcnn.nn.Parameter`) and its own hyperparameters (``"lr"``, ``"momentum"``, ...), and
``state``, a dict from parameter to that parameter's buffers (momentum, running averages, step).

One training iteration, written out::

    logits = model(x)
    loss = loss_fn(logits, y)
    model.backward(loss_fn.backward())   # fills p.grad
    optimizer.step()                     # p.data <- p.data - (update rule)
    optimizer.zero_grad()                # p.grad <- None

``step()`` skips frozen parameters (``requires_grad=False``) and parameters whose ``grad`` is
None. Updates are made in place on ``p.data`` with Python-float hyperparameters, so a float32
parameter stays float32.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .. import backend
from ..nn.module import Module
from ..nn.parameter import Parameter
from .checks import check_non_negative, check_unit_interval


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``state_dict`` and ``load_state_dict``.

    Subclasses pass their ``defaults`` (every hyperparameter a group may override), list the
    names of their per-parameter state in ``state_keys``, check them in
    ``_check_hyperparameters(group)``, and write ``_update(p, grad, state, group)``, which
    changes ``p.data`` in place.

    Args:
        params: an iterable of Parameters (``model.parameters()``), or of parameter-group
            dicts; not the model itself, a single Parameter or a state_dict (each a clear error).
        defaults: the hyperparameters of every group that does not set its own.
    """

    state_keys: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
        name = type(self).__name__
        if isinstance(params, Parameter):
            raise TypeError(f"{name}: params must be an iterable of Parameters "
                            "(e.g. model.parameters()), got a single Parameter")
        if isinstance(params, Module):
            raise TypeError(f"{name}: params must be an iterable of Parameters, got the module "
                            f"{type(params).__name__} itself; pass its parameters: "
                            f"{name}(model.parameters(), ...)")
        if isinstance(params, dict):
            raise TypeError(f"{name}: params must be an iterable of Parameters or a list of parameter-group "
                            "dicts, got a dict (a state_dict holds arrays, not Parameters); "
                            "pass model.parameters()")
        try:
            groups: list[Any] = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be an iterable of Parameters (e.g. model.parameters()), "
                            f"got {type(params).__name__}") from None
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add ``{"params": [...], "lr": ..., ...}``; missing hyperparameters take the defaults."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{name}: expected Parameters, got {type(p).__name__}")
        unknown = sorted(set(group) - set(self.defaults) - {"params", "initial_lr"})
        if unknown:
            raise ValueError(f"{name}: unknown parameter-group keys {unknown}; "
                             f"expected some of {sorted(self.defaults)}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears in more than one place in the parameter groups")
        new_group = dict(self.defaults)
        new_group.update(group)
        new_group["params"] = params
        self._check_hyperparameters(new_group)
        self.param_groups.append(new_group)

    def _check_hyperparameters(self, group):
        """Raise ValueError naming the class, the hyperparameter, its value and the allowed range.

        The base class checks ``lr`` (finite, >= 0); subclasses extend it with their own.
        """
        check_non_negative(type(self).__name__, "lr", group["lr"])

    # ------------------------------------------------------------------ the update

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every gradient: ``p.grad = None`` (PyTorch's default ``set_to_none=True``), or
        with ``set_to_none=False`` fill the existing gradient arrays with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """Apply one update to every trainable parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if not p.requires_grad or p.grad is None:
                    continue
                if p.grad.shape != p.data.shape:
                    raise ValueError(f"{type(self).__name__}: gradient of shape {p.grad.shape} "
                                     f"for a parameter of shape {p.data.shape}")
                state = self.state.get(p, {})
                self._update(p, p.grad.astype(p.data.dtype, copy=False), state, group)
                if state:  # plain SGD keeps no state, and PyTorch lists none for it
                    self.state[p] = state

    def _update(self, p, grad, state, group):
        raise NotImplementedError(f"{type(self).__name__} does not define _update()")

    # ------------------------------------------------------------------ state dicts

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params": [index, ...]}]}``.

        PyTorch's layout: parameters are numbered in group order, arrays are references.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and buffers saved by :meth:`state_dict`.

        The groups must have the same sizes; arrays are copied to each parameter's dtype and
        backend. Unknown keys are an error.
        """
        name = type(self).__name__
        if set(state_dict) != {"state", "param_groups"}:
            raise KeyError(f"{name}.load_state_dict: expected the keys ['param_groups', 'state'], "
                           f"got {sorted(state_dict)}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: {len(saved_groups)} parameter groups saved, "
                             f"{len(self.param_groups)} in this optimizer")
        params: dict[Any, Any] = {}
        for saved, group in zip(saved_groups, self.param_groups):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: a saved group has {len(saved['params'])} "
                                 f"parameters, this optimizer's has {len(group['params'])}")
            unknown = sorted(set(saved) - set(self.defaults) - {"params", "initial_lr"})
            if unknown:
                raise KeyError(f"{name}.load_state_dict: unknown parameter-group keys {unknown}")
            params.update(zip(saved["params"], group["params"]))
        new_state = {}
        for key, saved in state_dict["state"].items():
            p = params.get(_as_index(key, name))
            if p is None:
                raise KeyError(f"{name}.load_state_dict: state for parameter {key!r}, which no group holds")
            unknown = sorted(set(saved) - set(self.state_keys))
            if unknown:
                raise KeyError(f"{name}.load_state_dict: unknown state keys {unknown}; "
                               f"expected some of {list(self.state_keys)}")
            new_state[p] = {k: _restore_value(v, p) for k, v in saved.items()}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new_group = dict(group)
            new_group.update({k: _plain(v) for k, v in saved.items() if k != "params"})
            self._check_hyperparameters(new_group)  # a saved lr of nan is as bad as a given one
            new_groups.append(new_group)
        for group, new_group in zip(self.param_groups, new_groups):
            group.update(new_group)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(group):
                if k != "params":
                    lines.append(f"    {k}: {group[k]}")
        return "\n".join(lines) + "\n)"


# ----------------------------------------------------------------------------- helpers


def check_betas(optimizer, group):
    """``group["betas"]`` must be two finite numbers in [0, 1) (Adam's beta1 and beta2)."""
    name, betas = type(optimizer).__name__, group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"{name}: invalid betas {betas!r}; expected two finite numbers in [0, 1)")
    for i, beta in enumerate(betas):
        check_unit_interval(name, f"betas[{i}]", beta)


def _as_index(key, name):
    """State keys are parameter indices (ints; strings after a JSON round trip)."""
    try:
        return int(key)
    except (TypeError, ValueError):
        raise KeyError(f"{name}.load_state_dict: state key {key!r} is not a parameter index") from None


def _restore_value(value, p):
    """A saved buffer becomes an array of ``p``'s dtype on ``p``'s backend; a count stays a number."""
    if hasattr(value, "shape") and np.ndim(value) > 0:
        if tuple(value.shape) != tuple(p.data.shape):
            raise ValueError(f"load_state_dict: a state buffer of shape {tuple(value.shape)} for a "
                             f"parameter of shape {tuple(p.data.shape)}")
        xp = backend.get_array_module(p.data)
        return xp.array(backend.to_numpy(value) if xp is np else value, dtype=p.data.dtype)
    return _plain(value)


def _plain(value):
    """NumPy scalars and 0-d arrays become Python numbers (hyperparameters stay Python floats)."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if hasattr(value, "item") and np.ndim(value) == 0:
        return value.item()
    return value
