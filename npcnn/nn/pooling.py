"""Pooling layers: MaxPool2d/1d, AvgPool2d/1d, LPPool2d, AdaptiveAvgPool2d, GlobalAvgPool2d."""

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
)
from .module import Module
from .validation import check_float, check_ndim


class MaxPool2d(Module):
    """out[n, c, i, j] = max over the window (i, j) of x[n, c], padding counts as -inf.

    Shapes: x (N, C, H, W) -> out (N, C, oh, ow) with
    oh = floor((H + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (ceil with ceil_mode, the
    last window starting inside the input or the left padding), likewise ow.

    Gradient: dL/dx[p] = sum of dout over the windows whose arg-max is p (ties: the first position
    of the window wins, as PyTorch). ``return_indices=True`` also returns the arg-max as flat
    indices into each (H, W) plane, PyTorch's format.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.ceil_mode, self.return_indices = bool(ceil_mode), bool(return_indices)

    def forward(self, x):
        check_ndim("MaxPool2d", x, (4,), "(N, C, H, W)")
        check_float("MaxPool2d", x)
        out, cache = max_pool2d_forward(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                        self.ceil_mode)
        self.save_for_backward(cache)
        return (out, max_pool2d_indices(cache)) if self.return_indices else out

    def backward(self, dout):
        return max_pool2d_backward(dout, self.pop_saved())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(Module):
    """MaxPool2d along the last axis: x (N, C, L) -> out (N, C, oL); the same formulas."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)
        self.padding, self.dilation = int(padding), int(dilation)
        self.ceil_mode, self.return_indices = bool(ceil_mode), bool(return_indices)

    def forward(self, x):
        check_ndim("MaxPool1d", x, (3,), "(N, C, L)")
        check_float("MaxPool1d", x)
        # The 2-D kernel on an (N, C, 1, L) view with a 1 x kernel_size window.
        out, cache = max_pool2d_forward(x[:, :, None, :], (1, self.kernel_size), (1, self.stride),
                                        (0, self.padding), (1, self.dilation), self.ceil_mode, layer="MaxPool1d")
        self.save_for_backward(cache)
        out = out[:, :, 0, :]
        return (out, max_pool2d_indices(cache)[:, :, 0, :]) if self.return_indices else out

    def backward(self, dout):
        return max_pool2d_backward(dout[:, :, None, :], self.pop_saved())[:, :, 0, :]

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """out[n, c, i, j] = sum over the window (i, j) of x[n, c] / divisor(i, j).

    Shapes: x (N, C, H, W) -> out (N, C, oh, ow), sizes as MaxPool2d (no dilation).
    divisor: the window size clipped to the padded input (count_include_pad=True) or the number of
    real input positions in the window (count_include_pad=False), as PyTorch.

    Gradient: dL/dx[p] = sum over the windows w containing p of dout[w] / divisor(w).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, x):
        check_ndim("AvgPool2d", x, (4,), "(N, C, H, W)")
        check_float("AvgPool2d", x)
        out, cache = avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                        self.count_include_pad)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return avg_pool2d_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(Module):
    """AvgPool2d along the last axis: x (N, C, L) -> out (N, C, oL); the same formulas."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = self.kernel_size if stride is None else int(stride)
        self.padding = int(padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)

    def forward(self, x):
        check_ndim("AvgPool1d", x, (3,), "(N, C, L)")
        check_float("AvgPool1d", x)
        out, cache = avg_pool2d_forward(x[:, :, None, :], (1, self.kernel_size), (1, self.stride),
                                        (0, self.padding), self.ceil_mode, self.count_include_pad,
                                        layer="AvgPool1d")
        self.save_for_backward(cache)
        return out[:, :, 0, :]

    def backward(self, dout):
        return avg_pool2d_backward(dout[:, :, None, :], self.pop_saved())[:, :, 0, :]

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class LPPool2d(Module):
    """Power-average pooling, PyTorch's definition: out = (sum over the window of x^p)^(1/p).

    Shapes as AvgPool2d without padding. Gradient (S = the window sum of x^p):
    dL/dx[q] = sum over windows w containing q of dout[w] * S_w^(1/p - 1) * x[q]^(p-1).
    Like PyTorch, out is NaN where S < 0 (odd p and negative inputs) and the gradient is not
    finite where S = 0.
    """

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.norm_type = float(norm_type)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        check_ndim("LPPool2d", x, (4,), "(N, C, H, W)")
        check_float("LPPool2d", x)
        out, cache = lp_pool2d_forward(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return lp_pool2d_backward(dout, self.pop_saved())

    def extra_repr(self):
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class AdaptiveAvgPool2d(Module):
    """Average over adaptive windows that produce a fixed output size (PyTorch's windows).

    Shapes: x (N, C, H, W) -> out (N, C, oh, ow); window (i, j) spans rows
    [floor(i H / oh), ceil((i+1) H / oh)) and columns likewise. ``output_size`` is an int, a pair,
    or a pair with None (keep that input size).
    As matrices: out = A_h x A_w^T with A's rows averaging the windows, so dL/dx = A_h^T dout A_w.
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        check_ndim("AdaptiveAvgPool2d", x, (4,), "(N, C, H, W)")
        check_float("AdaptiveAvgPool2d", x)
        oh, ow = adaptive_output_size(x.shape, self.output_size)
        if oh < 1 or ow < 1:
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be positive, got {self.output_size}")
        out, cache = adaptive_avg_pool2d_forward(x, (oh, ow))
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
        check_ndim("GlobalAvgPool2d", x, (4,), "(N, C, H, W)")
        check_float("GlobalAvgPool2d", x)
        out, cache = global_avg_pool2d_forward(x)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return global_avg_pool2d_backward(dout, self.pop_saved())


__all__ = ["MaxPool2d", "MaxPool1d", "AvgPool2d", "AvgPool1d", "LPPool2d", "AdaptiveAvgPool2d",
           "GlobalAvgPool2d"]
