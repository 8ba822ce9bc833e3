"""Pooling layers: MaxPool2d/1d, AvgPool2d/1d, LPPool2d/1d, AdaptiveAvgPool2d, GlobalAvgPool2d.

The layers keep their arguments as given (PyTorch's attributes and reprs: ``MaxPool2d(2).stride``
is 2, ``AvgPool1d(3).kernel_size`` is ``(3,)``), check them at construction with errors naming the
class and the argument, and call the 2-D kernels of ``npcnn.functional.pooling`` (the 1-D layers
on an (N, C, 1, L) view).
"""

import numbers

from ..functional.geometry import as_tuple, check_pool_args
from ..functional.pooling import (
    adaptive_avg_pool2d_backward,
    adaptive_avg_pool2d_forward,
    adaptive_output_size,
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    lp_pool2d_backward,
    lp_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    max_pool2d_indices,
    pool_args,
)
from .module import Module
from .validation import check_float, check_ndim, check_number


def _pool_pairs(layer, kernel_size, stride, padding=0, dilation=1):
    """Check a 2-D pooling layer's arguments; (kernel, stride, padding, dilation) as pairs."""
    pairs = pool_args(layer, kernel_size, stride, padding, dilation)
    check_pool_args(layer, *pairs)
    return pairs


def _pool_pairs_1d(layer, kernel_size, stride, padding=0, dilation=1):
    """Check a 1-D pooling layer's arguments; the 2-D pairs of its (1, k) window."""
    k = as_tuple(kernel_size, 1, layer, "kernel_size")[0]
    s = k if stride is None else as_tuple(stride, 1, layer, "stride")[0]
    p, d = as_tuple(padding, 1, layer, "padding")[0], as_tuple(dilation, 1, layer, "dilation")[0]
    check_pool_args(layer, (k,), (s,), (p,), (d,))
    return (1, k), (1, s), (0, p), (1, d)


def _check_input(layer, x, layout):
    """Rank (``layout`` e.g. "NCHW") and floating dtype of a pooling layer's input."""
    check_ndim(layer, x, (len(layout),), "(" + ", ".join(layout) + ")")
    check_float(layer, x)


class _MaxPoolNd(Module):
    """What MaxPool1d and MaxPool2d share: arguments kept as given, the repr, backward."""

    def __init__(self, pairs, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
        super().__init__()
        self._pairs = pairs
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.ceil_mode, self.return_indices = bool(ceil_mode), bool(return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """out[n, c, i, j] = max over the window (i, j) of x[n, c], padding counts as -inf.

    Shapes: x (N, C, H, W) -> out (N, C, oh, ow) with
    oh = floor((H + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (ceil with ceil_mode, the
    last window starting inside the input or the left padding), likewise ow.

    Gradient: dL/dx[p] = sum of dout over the windows whose arg-max is p (ties: the first position
    of the window wins, as PyTorch). ``return_indices=True`` also returns the arg-max as flat
    indices into each (H, W) plane, PyTorch's format (-1 for a window without input elements).
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        pairs = _pool_pairs(type(self).__name__, kernel_size, stride, padding, dilation)
        super().__init__(pairs, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCHW")
        out, cache = max_pool2d_forward(x, *self._pairs, self.ceil_mode, layer=name)
        self.save_for_backward(cache)
        return (out, max_pool2d_indices(cache)) if self.return_indices else out

    def backward(self, dout):
        return max_pool2d_backward(dout, self.pop_saved())


class MaxPool1d(_MaxPoolNd):
    """MaxPool2d along the last axis: x (N, C, L) -> out (N, C, oL); the same formulas."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        pairs = _pool_pairs_1d(type(self).__name__, kernel_size, stride, padding, dilation)
        super().__init__(pairs, kernel_size, stride, padding, dilation, ceil_mode, return_indices)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCL")
        # The 2-D kernel on an (N, C, 1, L) view with a 1 x kernel_size window.
        out, cache = max_pool2d_forward(x[:, :, None, :], *self._pairs, self.ceil_mode, layer=name)
        self.save_for_backward(cache)
        out = out[:, :, 0, :]
        return (out, max_pool2d_indices(cache)[:, :, 0, :]) if self.return_indices else out

    def backward(self, dout):
        return max_pool2d_backward(dout[:, :, None, :], self.pop_saved())[:, :, 0, :]


class AvgPool2d(Module):
    """out[n, c, i, j] = sum over the window (i, j) of x[n, c] / divisor(i, j).

    Shapes: x (N, C, H, W) -> out (N, C, oh, ow), sizes as MaxPool2d (no dilation).
    divisor: the window size clipped to the padded input (count_include_pad=True) or the number of
    real input positions in the window (count_include_pad=False), as PyTorch.

    Gradient: dL/dx[p] = sum over the windows w containing p of dout[w] / divisor(w).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self._pairs = _pool_pairs(type(self).__name__, kernel_size, stride, padding)[:3]
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCHW")
        out, cache = avg_pool2d_forward(x, *self._pairs, self.ceil_mode, self.count_include_pad, layer=name)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return avg_pool2d_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """AvgPool2d along the last axis: x (N, C, L) -> out (N, C, oL); the same formulas.

    As PyTorch, kernel_size, stride and padding are kept as 1-tuples."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        name = type(self).__name__
        self._pairs = _pool_pairs_1d(name, kernel_size, stride, padding)[:3]
        self.kernel_size = (self._pairs[0][1],)
        self.stride = (self._pairs[1][1],)
        self.padding = (self._pairs[2][1],)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCL")
        out, cache = avg_pool2d_forward(x[:, :, None, :], *self._pairs, self.ceil_mode, self.count_include_pad,
                                        layer=name)
        self.save_for_backward(cache)
        return out[:, :, 0, :]

    def backward(self, dout):
        return avg_pool2d_backward(dout[:, :, None, :], self.pop_saved())[:, :, 0, :]

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _LPPoolNd(Module):
    """What LPPool1d and LPPool2d share: arguments kept as given (PyTorch keeps stride=None), the repr."""

    def __init__(self, pairs, norm_type, kernel_size, stride, ceil_mode):
        super().__init__()
        self._p = check_number(type(self).__name__, "norm_type", norm_type, low=0, low_open=True)
        self._pairs = pairs
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self._stride_given = stride  # PyTorch keeps (and prints) stride=None here
        self.ceil_mode = bool(ceil_mode)

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self._stride_given}, "
                f"ceil_mode={self.ceil_mode}")


class LPPool2d(_LPPoolNd):
    """Power-average pooling, PyTorch's definition: out = (sum over the window of x^p)^(1/p).

    Shapes as AvgPool2d without padding. Gradient (S = the window sum of x^p):
    dL/dx[q] = sum over windows w containing q of dout[w] * S_w^(1/p - 1) * x[q]^(p-1).
    Like PyTorch, out is NaN where S < 0 (odd p and negative inputs) and the gradient is not
    finite where S = 0. norm_type (p) must be a finite number > 0.
    """

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        pairs = _pool_pairs(type(self).__name__, kernel_size, stride)[:2]
        super().__init__(pairs, norm_type, kernel_size, stride, ceil_mode)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCHW")
        out, cache = lp_pool2d_forward(x, self._p, *self._pairs, self.ceil_mode, layer=name)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return lp_pool2d_backward(dout, self.pop_saved())


class LPPool1d(_LPPoolNd):
    """LPPool2d along the last axis: x (N, C, L) -> out (N, C, oL), out = (sum over the window of
    x^p)^(1/p); the same gradient formula."""

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        pairs = _pool_pairs_1d(type(self).__name__, kernel_size, stride)[:2]
        super().__init__(pairs, norm_type, kernel_size, stride, ceil_mode)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCL")
        out, cache = lp_pool2d_forward(x[:, :, None, :], self._p, *self._pairs, self.ceil_mode, layer=name)
        self.save_for_backward(cache)
        return out[:, :, 0, :]

    def backward(self, dout):
        return lp_pool2d_backward(dout[:, :, None, :], self.pop_saved())[:, :, 0, :]


def _check_output_size(layer, output_size):
    """An int >= 1, or a pair of (int >= 1 or None)."""
    entries = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,)
    if not all(e is None or isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in entries):
        raise TypeError(f"{layer}: output_size must be an int >= 1 or a pair of ints >= 1 (or None: keep that "
                        f"input size), got {output_size!r}")
    if (len(entries) != (2 if isinstance(output_size, (tuple, list)) else 1) or output_size is None
            or any(e is not None and e < 1 for e in entries)):
        raise ValueError(f"{layer}: output_size must be an int >= 1 or a pair of ints >= 1 (or None: keep that "
                         f"input size), got {output_size!r}")


class AdaptiveAvgPool2d(Module):
    """Average over adaptive windows that produce a fixed output size (PyTorch's windows).

    Shapes: x (N, C, H, W) -> out (N, C, oh, ow); window (i, j) spans rows
    [floor(i H / oh), ceil((i+1) H / oh)) and columns likewise. ``output_size`` is an int, a pair,
    or a pair with None (keep that input size).
    As matrices: out = A_h x A_w^T with A's rows averaging the windows, so dL/dx = A_h^T dout A_w.
    """

    def __init__(self, output_size):
        super().__init__()
        _check_output_size(type(self).__name__, output_size)
        self.output_size = output_size

    def forward(self, x):
        _check_input(type(self).__name__, x, "NCHW")
        out, cache = adaptive_avg_pool2d_forward(x, adaptive_output_size(x.shape, self.output_size))
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return adaptive_avg_pool2d_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"output_size={self.output_size}"


class GlobalAvgPool2d(Module):
    """The mean of each channel plane, AdaptiveAvgPool2d(1): x (N, C, H, W) -> out (N, C, 1, 1).

    Gradient: dL/dx[n, c, h, w] = dout[n, c, 0, 0] / (H W).
    """

    def forward(self, x):
        _check_input(type(self).__name__, x, "NCHW")
        out, cache = global_avg_pool2d_forward(x)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return global_avg_pool2d_backward(dout, self.pop_saved())


__all__ = ["MaxPool2d", "MaxPool1d", "AvgPool2d", "AvgPool1d", "LPPool2d", "LPPool1d", "AdaptiveAvgPool2d",
           "GlobalAvgPool2d"]
