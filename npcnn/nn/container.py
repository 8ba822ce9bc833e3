"""Containers and shape utilities: Sequential, ModuleList, ModuleDict, ParameterList, Identity,
Flatten, Unflatten, Reshape."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .module import Module, no_input_grad
from .parameter import Parameter
from .validation import check_ndim


class ModuleList(Module):
    """A list of modules whose parameters are registered (children named "0", "1", ...)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end (named by its position)."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Append each of ``modules``."""
        for module in modules:
            self.append(module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        return list(self._modules.values())[index]


class ModuleDict(Module):
    """An ordered dict of modules whose parameters are registered (keys are the children's
    names, so ``state_dict`` keys read ``"heads.cls.weight"``, as PyTorch's ``nn.ModuleDict``).

    Like ModuleList it has no forward of its own: the owner's forward picks the modules.
    """

    def __init__(self, modules: Optional[Union[Mapping[str, Module], Iterable[tuple[str, Module]]]] = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without '.', got {key!r}")
        if hasattr(type(self), key):
            raise KeyError(f"ModuleDict: key {key!r} would hide the method ModuleDict.{key}; choose another name")
        self.add_module(key, module)

    def __delitem__(self, key):
        del self._modules[key]
        object.__delattr__(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def keys(self) -> Any:
        """The names, in insertion order."""
        return self._modules.keys()

    def items(self) -> Any:
        """(name, module) pairs, in insertion order."""
        return self._modules.items()

    def values(self) -> Any:
        """The modules, in insertion order."""
        return self._modules.values()

    def update(self, modules: Union[Mapping[str, Module], Iterable[tuple[str, Module]]]) -> None:
        """Add (or replace) the modules of a mapping or an iterable of (name, module) pairs."""
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module

    def pop(self, key: str) -> Module:
        """Remove ``key`` and return its module."""
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        """Remove every module."""
        for key in list(self._modules):
            del self[key]


class ParameterList(Module):
    """A list of Parameters registered under the names "0", "1", ... (PyTorch's
    ``nn.ParameterList``); arrays are wrapped in a Parameter when added."""

    def __init__(self, values: Optional[Iterable[Any]] = None) -> None:
        super().__init__()
        for value in values or ():
            self.append(value)

    def append(self, value: Any) -> ParameterList:
        """Add ``value`` (a Parameter, or an array to wrap in one) at the end."""
        self.register_parameter(str(len(self._parameters)), value if isinstance(value, Parameter) else Parameter(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        """Append each of ``values``."""
        for value in values:
            self.append(value)
        return self

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __getitem__(self, index):
        return list(self._parameters.values())[index]

    def __setitem__(self, index, value):
        index = range(len(self))[index]  # negative indices, and an IndexError out of range
        self.register_parameter(str(index), value if isinstance(value, Parameter) else Parameter(value))

    def extra_repr(self):
        return "\n".join(f"  ({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for i, p in enumerate(self))

    def __repr__(self):
        body = self.extra_repr()
        # PyTorch indents a multi-line extra_repr by two more spaces than the parentheses
        return "ParameterList(\n  " + body.replace("\n", "\n  ") + "\n)" if body else "ParameterList()"


class Sequential(ModuleList):
    """Layers applied in order; backward runs them in reverse.

    forward:  x -> m_1(x) -> m_2(...) -> ... -> m_n(...)
    backward: dout -> m_n.backward -> ... -> m_1.backward -> dx  (the chain rule, layer by layer)

    Under :func:`npcnn.nn.no_input_grad` (as the training loops call it) m_1 is told that its dx
    is not needed (a first Conv2d or Linear then returns None and skips that product).

    ``Sequential(a, b)`` names the children "0", "1" (PyTorch's keys);
    ``Sequential(OrderedDict(conv1=a, relu1=b))`` names them.
    """

    def __init__(self, *modules: Any) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def backward(self, dout):
        modules = list(self._modules.values())
        for module in reversed(modules[1:]):
            dout = module.backward(dout)
        if not modules:
            return dout
        if self.needs_input_grad:
            return modules[0].backward(dout)
        with no_input_grad():  # nobody uses dL/dinput: neither does the first layer need it
            return modules[0].backward(dout)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        if isinstance(index, str):
            return self._modules[index]
        return super().__getitem__(index)


class Identity(Module):
    """out = x;  dx = dout."""

    def forward(self, x):
        return x

    def backward(self, dout):
        return dout


class Flatten(Module):
    """Flatten dimensions ``start_dim`` .. ``end_dim`` into one: (N, C, H, W) -> (N, C*H*W).

    backward reshapes dout back to the input's shape.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        shape = x.shape
        start = self.start_dim % x.ndim
        end = self.end_dim % x.ndim
        self.save_for_backward(shape)
        return x.reshape(shape[:start] + (-1,) + shape[end + 1:])

    def backward(self, dout):
        return dout.reshape(self.pop_saved())

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``: e.g. (N, 12) -> (N, 3, 4) with
    ``Unflatten(1, (3, 4))`` (the inverse of Flatten). One entry of ``unflattened_size`` may be -1.

    backward reshapes dout back to the input's shape.
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim = int(dim)
        if isinstance(unflattened_size, (int, np.integer)) or not all(
                isinstance(n, (int, np.integer)) for n in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        self.unflattened_size = tuple(int(n) for n in unflattened_size)
        if not self.unflattened_size or any(n < -1 or n == 0 for n in self.unflattened_size) or \
                self.unflattened_size.count(-1) > 1:
            raise ValueError(f"Unflatten: unflattened_size must hold sizes >= 1 and at most one -1, "
                             f"got {self.unflattened_size}")

    def forward(self, x):
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Unflatten: dim {self.dim} is out of range for input of shape {tuple(x.shape)}")
        dim = self.dim % x.ndim
        known = int(np.prod([n for n in self.unflattened_size if n != -1]))
        if (-1 in self.unflattened_size and x.shape[dim] % known) or \
                (-1 not in self.unflattened_size and known != x.shape[dim]):
            raise ValueError(f"Unflatten: cannot split dimension {self.dim} of size {x.shape[dim]} (input of "
                             f"shape {tuple(x.shape)}) into {self.unflattened_size}")
        self.save_for_backward(x.shape)
        return x.reshape(x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def backward(self, dout):
        return dout.reshape(self.pop_saved())

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Reshape(Module):
    """Reshape each sample to ``shape`` (the batch dimension is kept): (N, ...) -> (N, *shape)."""

    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape

    def forward(self, x):
        check_ndim("Reshape", x, range(1, 10), "(N, ...)")
        self.save_for_backward(x.shape)
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, dout):
        return dout.reshape(self.pop_saved())

    def extra_repr(self):
        return f"shape={self.shape}"
