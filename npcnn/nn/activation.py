"""Activation layers. Each is element-wise (Softmax/LogSoftmax along ``dim``), keeps the shape,
and has no parameters; the kernels and their derivatives live in ``npcnn.functional.activation``."""

from __future__ import annotations

from ..functional import activation as F
from .module import Module
from .validation import check_float, check_number


def _inplace_repr(inplace, prefix=""):
    """PyTorch's text: ``inplace=True`` is shown only when set."""
    if not inplace:
        return prefix
    return f"{prefix}, inplace=True" if prefix else "inplace=True"


class _InplaceActivation(Module):
    """Base of the activations that take PyTorch's ``inplace`` flag: it is accepted and shown in
    the repr, never acted on (npcnn does not write into inputs: the backward may need them and
    another branch may read them)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self):
        return _inplace_repr(self.inplace)


class ReLU(_InplaceActivation):
    """out = max(x, 0);  dx = dout * [x > 0].

    ``inplace`` is accepted for PyTorch compatibility and shown in the repr; npcnn never writes
    into its input (the backward needs it, and another branch may read it).
    """

    def forward(self, x):
        check_float("ReLU", x)
        out, mask = F.relu_forward(x)
        self.save_for_backward(mask)
        return out

    def backward(self, dout):
        return F.relu_backward(dout, self.pop_saved())


class ReLU6(_InplaceActivation):
    """out = min(max(x, 0), 6);  dx = dout * [0 < x < 6]  (MobileNet's bounded ReLU).

    ``inplace`` is accepted for PyTorch compatibility and shown in the repr; npcnn never writes
    into its input (the backward needs it, and another branch may read it).
    """

    def forward(self, x):
        check_float("ReLU6", x)
        out, mask = F.relu6_forward(x)
        self.save_for_backward(mask)
        return out

    def backward(self, dout):
        return F.relu6_backward(dout, self.pop_saved())


class LeakyReLU(_InplaceActivation):
    """out = x if x > 0 else slope * x;  dx = dout if x > 0 else slope * dout.

    ``inplace`` is accepted for PyTorch compatibility and shown in the repr; npcnn never writes
    into its input (the backward needs it, and another branch may read it).
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.negative_slope = check_number("LeakyReLU", "negative_slope", negative_slope)

    def forward(self, x):
        check_float("LeakyReLU", x)
        out, cache = F.leaky_relu_forward(x, self.negative_slope)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.leaky_relu_backward(dout, self.pop_saved())

    def extra_repr(self):
        return _inplace_repr(self.inplace, f"negative_slope={self.negative_slope}")


class Sigmoid(Module):
    """s = 1 / (1 + e^-x);  dx = dout * s (1 - s)  (at most dout / 4: why deep sigmoid nets vanish)."""

    def forward(self, x):
        check_float("Sigmoid", x)
        out, cache = F.sigmoid_forward(x)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.sigmoid_backward(dout, self.pop_saved())


class Tanh(Module):
    """out = tanh(x);  dx = dout * (1 - out^2)."""

    def forward(self, x):
        check_float("Tanh", x)
        out, cache = F.tanh_forward(x)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.tanh_backward(dout, self.pop_saved())


class ELU(_InplaceActivation):
    """out = x if x > 0 else alpha (e^x - 1);  dx = dout if x > 0 else dout (out + alpha).

    ``inplace`` is accepted for PyTorch compatibility and shown in the repr; npcnn never writes
    into its input (the backward needs it, and another branch may read it).
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(inplace)
        self.alpha = check_number("ELU", "alpha", alpha)

    def forward(self, x):
        check_float("ELU", x)
        out, cache = F.elu_forward(x, self.alpha)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.elu_backward(dout, self.pop_saved())

    def extra_repr(self):
        return _inplace_repr(self.inplace, f"alpha={self.alpha}")


class GELU(Module):
    """out = x Phi(x) (Phi: standard normal CDF);  dx = dout (Phi(x) + x phi(x)).

    ``approximate="tanh"`` uses the tanh approximation of Phi, as PyTorch.
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        check_float("GELU", x)
        out, cache = F.gelu_forward(x, self.approximate)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.gelu_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(_InplaceActivation):
    """SiLU ("swish"): out = x s(x), s the logistic sigmoid;  dx = dout s (1 + x (1 - s)).

    ``inplace`` is accepted for PyTorch compatibility and shown in the repr; npcnn never writes
    into its input (the backward needs it, and another branch may read it).
    """

    def forward(self, x):
        check_float("SiLU", x)
        out, cache = F.silu_forward(x)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.silu_backward(dout, self.pop_saved())


class Hardswish(_InplaceActivation):
    """Hardswish (MobileNetV3): out = x relu6(x + 3) / 6;
    dx = 0 (x <= -3),  dout (x / 3 + 1/2) (-3 < x < 3),  dout (x >= 3).

    ``inplace`` is accepted for PyTorch compatibility; npcnn never writes into its input. PyTorch
    prints ``Hardswish()`` whatever ``inplace`` is, and so does npcnn.
    """

    def forward(self, x):
        check_float("Hardswish", x)
        out, cache = F.hardswish_forward(x)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.hardswish_backward(dout, self.pop_saved())

    def extra_repr(self):
        return ""  # PyTorch prints Hardswish() whatever inplace is


class Softmax(Module):
    """s = e^x / sum e^x along ``dim``;  dx = s * (dout - sum(dout * s))."""

    def __init__(self, dim=-1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"{type(self).__name__}: dim must be an int, got {dim!r}")
        self.dim = dim

    def forward(self, x):
        check_float("Softmax", x)
        out, cache = F.softmax_forward(x, self.dim)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.softmax_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """out = x - log sum e^x along ``dim``;  dx = dout - softmax(x) * sum(dout)."""

    def __init__(self, dim=-1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"{type(self).__name__}: dim must be an int, got {dim!r}")
        self.dim = dim

    def forward(self, x):
        check_float("LogSoftmax", x)
        out, cache = F.log_softmax_forward(x, self.dim)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return F.log_softmax_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"dim={self.dim}"
