"""Branching modules: Residual (ResNet's skip connection), Add, Concat (Inception, DenseNet).

A value that feeds several branches receives the SUM of the gradients coming back from them
(the multivariate chain rule). That is all the backward passes here do.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional

from ..backend import get_array_module
from .module import Module


class Residual(Module):
    """out = body(x) + shortcut(x), the shortcut being the identity when ``shortcut`` is None.

    Shapes: x -> body(x), and shortcut(x) must have the same shape (use a 1x1 convolution as the
    shortcut when the body changes the shape).

    Gradient: both paths receive dout and their input gradients add up,
        dL/dx = body.backward(dout) + shortcut.backward(dout),
    so with the identity shortcut  dL/dx = dL/dH (dF/dx + 1):  the "+1" is the identity path,
    which carries dout to x unchanged however small dF/dx gets (why deep ResNets still train).
    """

    def __init__(self, body: Module, shortcut: Optional[Module] = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut  # a Module (registered as a child) or None for the identity

    def forward(self, x):
        h = self.body(x)
        s = x if self.shortcut is None else self.shortcut(x)
        if h.shape != s.shape:
            raise ValueError(f"Residual: body output of shape {tuple(h.shape)} and shortcut output of shape "
                             f"{tuple(s.shape)} differ; give Residual a shortcut that maps x to the body's shape")
        return h + s

    def backward(self, dout):
        dx_body = self.body.backward(dout)  # dL/dH * dF/dx
        if self.shortcut is None:
            dx_shortcut = dout  # dL/dH * 1: the identity path passes dout through untouched
        else:
            dx_shortcut = self.shortcut.backward(dout)
        return dx_body + dx_shortcut  # a new array: dout itself is never modified


class Add(Module):
    """out = a + b (NumPy broadcasting allowed).

    Gradient: da = dout, db = dout, each summed over the dimensions broadcasting stretched.
    ``backward`` returns the pair (da, db).
    """

    def forward(self, a, b):
        self.save_for_backward((a.shape, b.shape))
        return a + b

    def backward(self, dout):
        a_shape, b_shape = self.pop_saved()
        return _unbroadcast(dout, a_shape), _unbroadcast(dout, b_shape)


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched so it has ``shape``."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Concat(Module):
    """Parallel branches on the same input, outputs concatenated along ``dim`` (channels by default).

    out = concat([branch_1(x), ..., branch_k(x)], dim); the branches' other dimensions must agree.
    Children are named "0", "1", ... or by the keys of an OrderedDict, like Sequential.

    Gradient: dout is split along ``dim`` into the branches' pieces, each branch back-propagates its
    piece, and x (shared by all branches) receives the sum:  dL/dx = sum_i branch_i.backward(dout_i).
    """

    def __init__(self, *branches: Module, dim: int = 1) -> None:
        super().__init__()
        if len(branches) == 1 and isinstance(branches[0], (OrderedDict, dict)):
            for name, branch in branches[0].items():
                self.add_module(name, branch)
        else:
            for index, branch in enumerate(branches):
                self.add_module(str(index), branch)
        if not self._modules:
            raise ValueError("Concat: needs at least one branch")
        self.dim = int(dim)

    def forward(self, x):
        outs = [branch(x) for branch in self._modules.values()]
        dim = self.dim % outs[0].ndim
        def others(shape):  # every dimension but the concatenated one
            return shape[:dim] + shape[dim + 1:]

        for name, out in zip(self._modules, outs):
            if out.ndim != outs[0].ndim or others(out.shape) != others(outs[0].shape):
                raise ValueError(f"Concat: branch '{name}' output shape {tuple(out.shape)} does not match "
                                 f"{tuple(outs[0].shape)} outside dimension {self.dim}")
        self.save_for_backward((dim, [out.shape[dim] for out in outs]))
        return get_array_module(*outs).concatenate(outs, axis=dim)

    def backward(self, dout):
        dim, sizes = self.pop_saved()
        dx, start = None, 0
        for branch, size in zip(self._modules.values(), sizes):
            index = (slice(None),) * dim + (slice(start, start + size),)
            grad = branch.backward(dout[index])  # a view of dout: branches never write into dout
            dx = grad if dx is None else dx + grad
            start += size
        return dx

    def __len__(self):
        return len(self._modules)

    def extra_repr(self):
        return f"dim={self.dim}"
