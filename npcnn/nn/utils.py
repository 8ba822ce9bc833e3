"""Helpers on models: gradient clipping, temporary eval mode, and finding and watching layers.

* :func:`clip_grad_norm_`, :func:`clip_grad_value_` keep one bad batch from throwing the
  weights far away;
* :func:`eval_mode` switches a model to eval mode for a ``with`` block and restores every
  module's own flag;
* :func:`find_layer`, :func:`last_module`, :func:`last_linear`, :func:`model_dtype` and
  :func:`capture` find a layer in a model tree and record its activations with a forward hook
  (used by ``npcnn.viz`` and ``npcnn.transfer``).

The clipping functions replace ``p.grad`` with a new array (``p.grad = p.grad * scale``) instead of
scaling it in place: a layer may hand the same array to two parameters, or a gradient may be a
view of an upstream gradient still in use.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterable, Iterator, Type, Union

from .. import backend
from ..backend import get_array_module
from .linear import Linear
from .module import Module
from .parameter import Parameter


def _with_grads(parameters):
    if isinstance(parameters, Parameter):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Union[Parameter, Iterable[Parameter]], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
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


def clip_grad_value_(parameters: Union[Parameter, Iterable[Parameter]], clip_value: float) -> None:
    """Clip every gradient element to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for p in _with_grads(parameters):
        p.grad = get_array_module(p.grad).clip(p.grad, -clip_value, clip_value)


@contextlib.contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """Eval mode for the duration of the ``with`` block; afterwards each module gets back its
    own train/eval flag (not merely the root's: a frozen BatchNorm kept in eval mode inside a
    training model stays in eval mode)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)


def find_layer(model: Module, layer: Union[str, Module]) -> tuple[str, Module]:
    """``(name, module)`` of ``layer``, given as a Module inside ``model`` or as its dotted name
    (``"features.3"``, the names of ``model.named_modules()``)."""
    for name, module in model.named_modules():
        if module is layer or (isinstance(layer, str) and name == layer):
            return name, module
    if isinstance(layer, (str, Module)):
        names = [n for n, _ in model.named_modules() if n]
        raise ValueError(f"layer {layer if isinstance(layer, str) else type(layer).__name__!r} is not part of "
                         f"{type(model).__name__}; its layers are {names}")
    raise TypeError(f"layer must be a Module or a dotted name (str), got {type(layer).__name__}")


def last_module(model: Module, kind: Type[Module],
                hint: str = "pass layer= explicitly") -> Module:
    """The last module of type ``kind`` in ``model`` (registration order); ``hint`` ends the
    error raised when there is none."""
    found = None
    for _, module in model.named_modules():
        if isinstance(module, kind):
            found = module
    if found is None:
        raise ValueError(f"{type(model).__name__} has no {kind.__name__} layer; {hint}")
    return found


def last_linear(model: Module) -> Module:
    """The last ``Linear`` module of ``model`` (registration order): the classifier head."""
    return last_module(model, Linear)


def model_dtype(model: Module) -> Any:
    """The dtype of the model's first parameter (the default dtype if it has none)."""
    for p in model.parameters():
        return p.dtype
    return backend.get_default_dtype()


@contextlib.contextmanager
def capture(layer: Module, what: str = "output") -> Iterator[Any]:
    """Record the ``layer``'s output (or first input, ``what="input"``) of each forward pass in
    the list this context yields."""
    if what not in ("output", "input"):
        raise ValueError(f"capture: what must be 'output' or 'input', got {what!r}")
    records = []

    def hook(module, inputs, output):
        records.append(output if what == "output" else inputs[0])

    handle = layer.register_forward_hook(hook)
    try:
        yield records
    finally:
        handle.remove()
