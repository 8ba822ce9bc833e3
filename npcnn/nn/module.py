"""Module: the base class of every layer and network.

A layer subclasses :class:`Module` and writes two methods:

* ``forward(x)`` computes the output and keeps what the backward pass needs with
  ``self.save_for_backward(cache)``;
* ``backward(dout)`` receives dL/d(output), takes the cache back with ``self.pop_saved()``,
  accumulates dL/d(parameter) into each ``Parameter.grad`` and returns dL/d(input).

Parameters, buffers (non-trainable state such as BatchNorm's running statistics) and child
modules assigned as attributes are registered automatically, with PyTorch's names, so
``state_dict()`` keys such as ``"layer1.0.conv1.weight"`` match PyTorch's.
"""

from collections import OrderedDict, namedtuple

import numpy as np

from .. import backend
from ..grad_mode import is_grad_enabled
from .parameter import Parameter

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class _Handle:
    """Returned by ``register_*_hook``; ``handle.remove()`` takes the hook away."""

    def __init__(self, remove):
        self.remove = remove


class Module:
    """Base class of layers and networks (PyTorch's ``nn.Module`` with an explicit backward)."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_saved", None)
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        registries = (self._parameters, self._buffers, self._modules)
        if isinstance(value, Parameter):
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=self._modules)
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        elif value is None and any(name in r for r in registries):
            for r in registries:
                if name in r:
                    r[name] = None  # e.g. ``bias=False``: the slot exists but holds nothing
        elif name in self._parameters or name in self._modules:
            raise TypeError(f"{type(self).__name__}.{name} holds a Parameter or Module; "
                            f"cannot assign {type(value).__name__}")
        object.__setattr__(self, name, value)

    def _forget(self, name, keep=None):
        """Drop ``name`` from every registry but ``keep`` (replacing in place keeps its position,
        so swapping a Sequential's last layer leaves it last, as in PyTorch)."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)

    def register_buffer(self, name, array):
        """Register non-trainable state (saved in ``state_dict``, never touched by optimizers)."""
        self._forget(name, keep=self._buffers)
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter or None) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{name}: expected a Parameter or None, got {type(param).__name__}")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name, module):
        """Register a child module under ``name`` (used by containers with numeric names)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name}: expected a Module, got {type(module).__name__}")
        self._forget(name, keep=self._modules)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    # ------------------------------------------------------------------ forward and backward

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")

    def __call__(self, *inputs):
        self._check_device(inputs)
        out = self.forward(*inputs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, inputs, out)
            if replaced is not None:
                out = replaced
        return out

    def _check_device(self, inputs):
        """Inputs must live where this layer's parameters live: a clear error naming the layer,
        where CuPy would fail inside a kernel with "Unsupported type <class 'numpy.ndarray'>"."""
        param = next((p for p in self._parameters.values() if p is not None), None)
        if param is None:
            return
        on_gpu = backend.is_cupy_array(param.data)
        for x in inputs:
            if hasattr(x, "shape") and backend.is_cupy_array(x) != on_gpu:
                raise TypeError(
                    f"{type(self).__name__}: the input is a {'NumPy' if on_gpu else 'CuPy'} array but the "
                    f"parameters are {'CuPy (GPU)' if on_gpu else 'NumPy'} arrays; move the input with "
                    "npcnn.backend.asarray(x) (or the model with model.to() under the input's backend)"
                )

    def save_for_backward(self, cache):
        """Keep ``cache`` for the next backward pass; inside ``no_grad()`` keep nothing."""
        object.__setattr__(self, "_saved", cache if is_grad_enabled() else None)

    def pop_saved(self):
        """Return the cache of the last forward and drop it: one backward per forward."""
        cache = self._saved
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward pass first: it was called before "
                "forward, a second time after one forward, or after a forward under npcnn.no_grad()"
            )
        object.__setattr__(self, "_saved", None)
        return cache

    # ------------------------------------------------------------------ hooks

    def register_forward_hook(self, hook):
        """``hook(module, inputs, output)`` runs after each forward; may return a new output."""
        key = object()
        self._forward_hooks[key] = hook
        return _Handle(lambda: self._forward_hooks.pop(key, None))

    def register_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output)`` runs after each backward; may return a new
        grad_input.

        The class's ``backward`` is shadowed on this one instance while hooks exist, so modules
        without hooks pay nothing and no layer has to know about hooks.
        """
        key = object()
        self._backward_hooks[key] = hook
        object.__setattr__(self, "backward", self._backward_with_hooks)

        def remove():
            self._backward_hooks.pop(key, None)
            if not self._backward_hooks:
                self.__dict__.pop("backward", None)

        return _Handle(remove)

    def _backward_with_hooks(self, dout):
        dx = type(self).backward(self, dout)
        for hook in list(self._backward_hooks.values()):
            replaced = hook(self, dx, dout)
            if replaced is not None:
                dx = replaced
        return dx

    # ------------------------------------------------------------------ traversal

    def named_children(self):
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix=""):
        """This module and all its descendants, each once, with dotted names."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(children))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix=""):
        """Every Parameter once (shared ones too), named like ``"features.0.weight"``."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self):
        for _, param in self.named_parameters():
            yield param

    def named_buffers(self, prefix=""):
        for module_name, module in self.named_modules(prefix):
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self):
        for _, buf in self.named_buffers():
            yield buf

    # ------------------------------------------------------------------ modes and gradients

    def train(self, mode=True):
        """Training mode (dropout active, batch norm uses batch statistics)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode; backward still works (saliency maps need it)."""
        return self.train(False)

    def zero_grad(self):
        for param in self.parameters():
            param.zero_grad()

    def requires_grad_(self, requires_grad=True):
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
            if not requires_grad:
                param.grad = None
        return self

    def freeze(self):
        """Stop training every parameter of this module (optimizers skip frozen parameters)."""
        return self.requires_grad_(False)

    def unfreeze(self):
        return self.requires_grad_(True)

    def num_parameters(self, trainable_only=False):
        """Number of scalar parameters (buffers are not parameters)."""
        return sum(int(p.size) for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------ dtype and backend

    def to(self, dtype=None):
        """Move every parameter and buffer to the active backend, casting floats to ``dtype``.

        ``model.to()`` after ``npcnn.set_backend("cupy")`` moves a model to the GPU;
        ``model.to(np.float64)`` (or ``model.double()``) prepares a gradient check.
        """

        def convert(a):
            a_dtype = np.dtype(a.dtype)
            target = np.dtype(dtype) if dtype is not None and a_dtype.kind == "f" else a_dtype
            return backend.asarray(a, dtype=target)

        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = convert(param.data)
                    param.grad = None if param.grad is None else convert(param.grad)
            for name, buf in list(module._buffers.items()):
                if buf is not None:
                    setattr(module, name, convert(buf))
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    # ------------------------------------------------------------------ state

    def state_dict(self):
        """Ordered ``{name: array}`` of parameters and buffers (references, as in PyTorch)."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                if param is not None:
                    state[f"{module_name}.{name}" if module_name else name] = param.data
            for name, buf in module._buffers.items():
                if buf is not None:
                    state[f"{module_name}.{name}" if module_name else name] = buf
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        Shapes must match exactly; values are cast to each slot's dtype and moved to the active
        backend. With ``strict=True`` a missing or unexpected key is an error naming the keys.
        """
        slots = {}
        for module_name, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name, value in registry.items():
                    if value is not None:
                        slots[f"{module_name}.{name}" if module_name else name] = (module, registry, name)
        missing = [k for k in slots if k not in state_dict]
        unexpected = [k for k in state_dict if k not in slots]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict into {type(self).__name__}: missing keys {missing}, unexpected keys {unexpected}"
            )
        for key, (module, registry, name) in slots.items():
            if key not in state_dict:
                continue
            current = registry[name]
            current_array = current.data if isinstance(current, Parameter) else current
            value = state_dict[key]
            if tuple(np.shape(value)) != tuple(current_array.shape):
                raise ValueError(
                    f"load_state_dict: '{key}' has shape {tuple(np.shape(value))} in the state dict "
                    f"but {tuple(current_array.shape)} in {type(self).__name__}"
                )
            array = backend.asarray(value, dtype=current_array.dtype).copy()
            if isinstance(current, Parameter):
                current.data = array
            else:
                setattr(module, name, array)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        children = list(self.named_children())
        if not children:
            return lines[0] + ")"
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"

    def summary(self, input_shape, file=None):
        """Print the table of layers, output shapes, parameters and multiply-accumulates, and
        return it as a :class:`npcnn.nn.summary.Profile`.

        ``input_shape`` leaves out the batch dimension, e.g. ``(1, 32, 32)`` for LeNet-5.
        """
        from .summary import summary

        return summary(self, input_shape, file=file)
