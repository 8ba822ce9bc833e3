"""Weight initializers with PyTorch's names, formulas and defaults.

Each fills an array or Parameter in place from npcnn's seeded generator and returns it.
fan_in = in_channels * receptive field, fan_out = out_channels * receptive field, where the
weight has shape (out, in, *kernel) as in PyTorch.

=====================  ===================================================
xavier_uniform_        U(-a, a),      a = gain * sqrt(6 / (fan_in + fan_out))
xavier_normal_         N(0, std^2),   std = gain * sqrt(2 / (fan_in + fan_out))
kaiming_uniform_       U(-b, b),      b = gain * sqrt(3 / fan)
kaiming_normal_        N(0, std^2),   std = gain / sqrt(fan)
=====================  ===================================================
"""

from __future__ import annotations

import math
from typing import Any, Optional

from .. import backend
from .parameter import Parameter


def _array(tensor):
    return tensor.data if isinstance(tensor, Parameter) else tensor


def _fill(tensor, values):
    array = _array(tensor)
    array[...] = backend.get_array_module(array).asarray(values, dtype=array.dtype)
    return tensor


def calculate_gain(nonlinearity: str, param: Optional[float] = None) -> float:
    """The factor that keeps activation variance steady through the nonlinearity.

    linear, conv, sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);  leaky_relu: sqrt(2 / (1 + slope^2));
    selu: 3/4.
    """
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity == "selu":
        return 0.75
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _fan(tensor, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


# Random fills are drawn this many elements at a time: the float64 draws of VGG-16's 102M-weight
# layer would otherwise need 0.8 GB per temporary. Consecutive draws continue one stream, so the
# numbers are the same as one draw of the whole tensor.
_CHUNK = 1 << 22


def _fill_drawn(tensor, draw):
    """Fill ``tensor`` with ``draw(n)`` (n float64 values), chunk by chunk in C order."""
    array = _array(tensor)
    if not array.flags.c_contiguous:  # reshape would copy: draw it whole
        return _fill(tensor, draw(array.size).reshape(array.shape))
    flat = array.reshape(-1)
    for start in range(0, flat.size, _CHUNK):
        _fill(flat[start:start + _CHUNK], draw(min(_CHUNK, flat.size - start)))
    return tensor


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0) -> Any:
    """Fill with U(a, b)."""
    return _fill_drawn(tensor, lambda n: backend.rng().uniform(a, b, size=n))


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0) -> Any:
    """Fill with N(mean, std^2)."""
    # mean + std * z rather than Generator.normal, which CuPy's Generator lacks; on NumPy the two
    # give the same numbers.
    return _fill_drawn(tensor, lambda n: mean + std * backend.rng().standard_normal(size=n))


def constant_(tensor: Any, val: float) -> Any:
    """Fill with the constant ``val``."""
    return _fill(tensor, val)


def zeros_(tensor: Any) -> Any:
    """Fill with 0."""
    return _fill(tensor, 0.0)


def ones_(tensor: Any) -> Any:
    """Fill with 1."""
    return _fill(tensor, 1.0)


def xavier_uniform_(tensor: Any, gain: float = 1.0) -> Any:
    """Glorot & Bengio (2010): keeps the variance of activations and gradients equal."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a)


def xavier_normal_(tensor: Any, gain: float = 1.0) -> Any:
    """Glorot & Bengio (2010), normal form: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Any:
    """He et al. (2015): variance 2/fan for ReLU nets. ``a`` is the leaky-ReLU slope."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Any, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Any:
    """He et al. (2015), normal form: N(0, std^2) with std = gain / sqrt(fan); ``a`` is the
    leaky-ReLU slope, ``mode`` picks fan_in (forward variance) or fan_out (backward variance)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def default_weight_and_bias_(weight: Any, bias: Any) -> None:
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) on the weight, which is
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5.0))
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
