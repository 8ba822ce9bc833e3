"""Dropout layers: Dropout (entries) and Dropout2d (whole channels)."""

from __future__ import annotations

from ..functional.dropout import channel_mask_shape, dropout_backward, dropout_forward
from .module import Module
from .validation import check_float, check_ndim, check_number


def _check_p(layer, p):
    """The drop probability: a number in [0, 1]."""
    return check_number(layer, "p", p, 0.0, 1.0)


class Dropout(Module):
    """Inverted dropout: each entry is zeroed with probability p during training.

    Shapes: any -> same. Training: out = x * m / (1 - p) with m ~ Bernoulli(1 - p) per entry
    (so E[out] = x); eval: out = x. Gradient: dx = dout * m / (1 - p) (training), dout (eval).
    p = 1 gives zeros; p = 0 the identity.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p("Dropout", p)
        self.inplace = bool(inplace)  # accepted for PyTorch compatibility; npcnn never writes in place

    def forward(self, x):
        check_float("Dropout", x)
        out, cache = dropout_forward(x, self.p if self.training else 0.0)  # eval: the identity
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return dropout_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Module):
    """Channel dropout: each (sample, channel) plane is zeroed with probability p in training.

    Shapes: (N, C, H, W) -> same (also (N, C, L), one mask entry per (n, c) as PyTorch).
    Training: out[n, c] = x[n, c] * m[n, c] / (1 - p), m ~ Bernoulli(1 - p); eval: out = x.
    Gradient: dx[n, c] = dout[n, c] * m[n, c] / (1 - p) (training), dout (eval).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        self.p = _check_p("Dropout2d", p)
        self.inplace = bool(inplace)

    def forward(self, x):
        check_ndim("Dropout2d", x, (3, 4), "(N, C, H, W)")
        check_float("Dropout2d", x)
        out, cache = dropout_forward(x, self.p if self.training else 0.0, channel_mask_shape(x))
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return dropout_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
