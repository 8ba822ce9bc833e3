"""Containers and shape utilities: Sequential, ModuleList, Identity, Flatten, Reshape."""

from collections import OrderedDict

from .module import Module
from .validation import check_ndim


class ModuleList(Module):
    """A list of modules whose parameters are registered (children named "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        return list(self._modules.values())[index]


class Sequential(ModuleList):
    """Layers applied in order; backward runs them in reverse.

    forward:  x -> m_1(x) -> m_2(...) -> ... -> m_n(...)
    backward: dout -> m_n.backward -> ... -> m_1.backward -> dx  (the chain rule, layer by layer)

    ``Sequential(a, b)`` names the children "0", "1" (PyTorch's keys);
    ``Sequential(OrderedDict(conv1=a, relu1=b))`` names them.
    """

    def __init__(self, *modules):
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
        for module in reversed(list(self._modules.values())):
            dout = module.backward(dout)
        return dout

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

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

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


class Reshape(Module):
    """Reshape each sample to ``shape`` (the batch dimension is kept): (N, ...) -> (N, *shape)."""

    def __init__(self, *shape):
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
