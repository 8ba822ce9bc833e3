"""Parameter: a trainable array together with the gradient that backward accumulates into it."""


class Parameter:
    """A trainable array.

    Attributes:
        data: the array (NumPy or CuPy), updated in place by optimizers.
        grad: ``None`` until a backward pass accumulates a gradient of the same shape and dtype.
        requires_grad: when False (a frozen parameter) layers skip its gradient and optimizers
            skip its update.
    """

    def __init__(self, data, requires_grad=True):
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def ndim(self):
        return self.data.ndim

    def accumulate_grad(self, g):
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

    def zero_grad(self):
        """Forget the accumulated gradient (``grad = None``, as PyTorch's set_to_none)."""
        self.grad = None

    def __repr__(self):
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.dtype}{frozen})"
