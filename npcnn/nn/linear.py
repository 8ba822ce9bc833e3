"""Linear (fully connected) layer."""

from __future__ import annotations

from .. import backend
from ..functional.linear import linear_backward, linear_forward
from . import init
from .module import Module
from .parameter import Parameter
from .validation import check_float, check_int, check_ndim, check_size


class Linear(Module):
    """y = x W^T + b.

    Shapes: x (N, *, in_features) -> y (N, *, out_features); W (out_features, in_features) and
    b (out_features,), PyTorch's layout, initialized as PyTorch does (U(-1/sqrt(in), 1/sqrt(in))).

    Gradients: dL/dx = dout W,  dL/dW = dout^T x,  dL/db = sum_n dout.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = check_int("Linear", "in_features", in_features)
        self.out_features = check_int("Linear", "out_features", out_features)
        xp, dtype = backend.xp(), backend.get_default_dtype()
        self.weight = Parameter(xp.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(xp.empty(self.out_features, dtype=dtype)) if bias else None
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, x):
        check_ndim("Linear", x, range(1, 10), "(N, *, in_features)")
        check_size("Linear", x, -1, self.in_features, "in_features (last dimension)")
        check_float("Linear", x, self.weight.dtype)
        b = None if self.bias is None else self.bias.data
        out, cache = linear_forward(x, self.weight.data, b)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        need_dw = self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad)
        # need_dx False only under no_input_grad (the network's input): dx comes back as None
        dx, dw, db = linear_backward(dout, self.pop_saved(), need_dx=self.needs_input_grad, need_dw=need_dw)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
