"""Parameter: a trainable array together with the gradient that backward accumulates into it."""

from __future__ import annotations

from typing import Any

from .. import backend


class Parameter:
    """A trainable array.

    Attributes:
        data: the array (NumPy or CuPy), updated in place by optimizers.
        grad: ``None`` until a backward pass accumulates a gradient of the same shape and dtype.
        requires_grad: when False (a frozen parameter) layers skip its gradient and optimizers
            skip its update.
    """

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self) -> tuple[int, ...]:
        """The data's shape."""
        return self.data.shape

    @property
    def dtype(self) -> Any:
        """The data's dtype."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """The number of entries (NumPy's name; :meth:`numel` is PyTorch's)."""
        return self.data.size

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self.data.ndim

    def numel(self) -> int:
        """The number of entries, as PyTorch's ``Tensor.numel()``."""
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> Any:
        """``param[i]`` indexes the data (a view of it, as NumPy does)."""
        return self.data[index]

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(param)`` gives the data (copied to the host from a CuPy parameter)."""
        array = backend.to_numpy(self.data)
        if dtype is not None:
            array = array.astype(dtype, copy=False)
        return array.copy() if copy else array

    def accumulate_grad(self, g: Any) -> None:
        """``grad += g`` for a trainable parameter, written out of place.

        Out of place on purpose: ``g`` may be a view of an upstream gradient that another branch
        still reads, and the first ``grad`` may be ``g`` itself.
        """
        if not self.requires_grad or g is None:
            return
        if g.shape != self.data.shape:
            raise ValueError(f"gradient of shape {g.shape} for a parameter of shape {self.data.shape}")
        g = g.astype(self.data.dtype, copy=False)
        self.grad = g if self.grad is None else self.grad + g

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradient: ``grad = None`` (PyTorch's ``set_to_none``), or an
        array of zeros with ``set_to_none=False`` when there is a gradient."""
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad = backend.get_array_module(self.grad).zeros_like(self.grad)

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.dtype}{frozen})"
