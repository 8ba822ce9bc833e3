"""Upsample: enlarge feature maps by nearest-neighbour or (bi)linear interpolation."""

from __future__ import annotations

import numbers
from typing import Optional, Sequence, Union

from ..functional.upsample import upsample_backward, upsample_forward
from .module import Module
from .validation import check_float, check_ndim

_MODES = {"nearest": (3, 4), "linear": (3,), "bilinear": (4,)}


def _per_axis(name, value, kind):
    """A number or a tuple of numbers, checked positive; returns (original, tuple or None)."""
    if value is None:
        return None, None
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"Upsample: {name} must be a {kind} or a tuple of them, got {value!r}")
    if not all(v > 0 for v in values):
        raise ValueError(f"Upsample: {name} must be > 0, got {value!r}")
    return value, values


class Upsample(Module):
    """Upsampling of x (N, C, L) or (N, C, H, W) (PyTorch's ``nn.Upsample``).

    Give either ``size`` (the output's spatial size) or ``scale_factor`` (out = floor(in * s)).
    mode "nearest": out[o] = x[min(floor(o / s), in - 1)] per axis (s = out / in with ``size``);
    mode "linear" (3-D) / "bilinear" (4-D): out[o] = w0 x[i0] + w1 x[i1] with PyTorch's source
    coordinate src = (o + 1/2) / s - 1/2 (clamped at 0), or src = o (in - 1) / (out - 1) with
    ``align_corners=True``; i0 = floor(src), i1 = i0 + 1 (clamped), w1 = src - i0, w0 = 1 - w1.

    Gradient: the map is linear, so dx is dout sent back through the transposed map: every
    input position receives the sum of w dout over the outputs that read it.
    """

    def __init__(self, size: Union[None, int, Sequence[int]] = None,
                 scale_factor: Union[None, float, Sequence[float]] = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Upsample: mode must be one of {tuple(_MODES)}, got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size and scale_factor")
        if mode == "nearest" and align_corners is not None:
            raise ValueError("Upsample: align_corners can only be set with the interpolating modes "
                             "'linear' and 'bilinear'")
        if isinstance(size, (tuple, list)) and not all(isinstance(n, int) for n in size) or \
                size is not None and not isinstance(size, (int, tuple, list)):
            raise TypeError(f"Upsample: size must be an int or a tuple of ints, got {size!r}")
        self.size, self._sizes = _per_axis("size", size, "int")
        if self.size is not None:
            self.size = tuple(self._sizes) if isinstance(size, (tuple, list)) else int(self.size)
        factor, factors = _per_axis("scale_factor", scale_factor, "number")
        self.scale_factor = None if factor is None else (
            tuple(float(f) for f in factors) if isinstance(factor, (tuple, list)) else float(factor))
        self.mode = mode
        self.align_corners = None if align_corners is None else bool(align_corners)

    def _expanded(self, values, ndim, name):
        """One value per spatial axis."""
        if values is None:
            return None
        values = tuple(values) if isinstance(values, tuple) else (values,) * ndim
        if len(values) != ndim:
            raise ValueError(f"Upsample: {name} {values} has {len(values)} entries for {ndim} spatial dimensions")
        return values

    def forward(self, x):
        check_ndim("Upsample", x, _MODES[self.mode], "(N, C, H, W)" if self.mode == "bilinear" else
                   "(N, C, L)" if self.mode == "linear" else "(N, C, L) or (N, C, H, W)")
        check_float("Upsample", x)
        spatial = x.ndim - 2
        size = self._expanded(self.size, spatial, "size")
        factor = self._expanded(self.scale_factor, spatial, "scale_factor")
        if factor is not None and any(int(n * f) < 1 for n, f in zip(x.shape[2:], factor)):
            raise ValueError(f"Upsample: scale_factor {self.scale_factor} gives an empty output for input of "
                             f"shape {tuple(x.shape)}")
        out, cache = upsample_forward(x, size, factor, self.mode, bool(self.align_corners))
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return upsample_backward(dout, self.pop_saved())

    def extra_repr(self):
        info = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"
