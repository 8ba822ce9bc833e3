"""Convolution layers: Conv2d, Conv1d, ConvTranspose2d.

The layers hold the weight and bias (PyTorch's layouts and default initialization), resolve the
padding ("same", "valid", padding modes) and pick an algorithm; the arithmetic lives in
``npcnn.functional.conv`` (im2col + GEMM and the loop reference) and
``npcnn.functional.conv_fft`` (FFT), which is imported only when it is used.

Choosing the algorithm (``algo="auto"``): FFT costs O(N C P log P) for the transforms plus
O(N O C P) complex multiply-adds, independent of the kernel size, while im2col costs
2 N O C kh kw Ho Wo flops. With a kernel of 7x7 or larger, stride 1, dilation 1 and no groups,
the kernel-size factor (>= 49) outweighs the FFT's overheads, so "auto" picks FFT there and
im2col everywhere else (strides and dilations waste FFT work on outputs that are thrown away;
groups make the per-frequency products tiny). The choice is in ``layer.algo_used`` after each
forward. If ``npcnn.functional.conv_fft`` is missing, "auto" uses im2col.
"""

from .. import backend
from ..functional import conv as F
from ..functional import conv_fft
from ..functional.padding import pad_backward, pad_forward
from . import init
from .module import Module
from .parameter import Parameter
from .validation import check_float, check_ndim, check_size

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
ALGORITHMS = ("auto", "im2col", "fft", "direct")


def _tuple(value, n, name, layer):
    """An int or an n-sequence of ints as an n-tuple."""
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{layer}: {name} must be an int or {n} ints, got {value}")
    return value


def _resolve_padding(padding, kernel_size, stride, dilation, layer):
    """PyTorch's padding argument -> one (before, after) pair per spatial axis.

    "same" pads d*(k-1) in total, the extra one (even kernels) after, as PyTorch does.
    """
    n = len(kernel_size)
    if padding == "valid":
        return ((0, 0),) * n
    if padding == "same":
        if any(s != 1 for s in stride):
            raise ValueError(f"{layer}: padding='same' needs stride 1, got stride {stride}")
        totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, str):
        raise ValueError(f"{layer}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    padding = _tuple(padding, n, "padding", layer)
    if min(padding) < 0:
        raise ValueError(f"{layer}: padding must be >= 0, got {padding}")
    return tuple((p, p) for p in padding)


def _check_channels(layer, in_channels, out_channels, groups):
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must both be divisible by groups ({groups})")


def _check_fits(layer, spatial, pads, kernel_size, dilation):
    """The dilated kernel must fit in the padded input."""
    for size, (before, after), k, d in zip(spatial, pads, kernel_size, dilation):
        if d * (k - 1) + 1 > size + before + after:
            raise ValueError(f"{layer}: kernel of size {tuple(kernel_size)} (dilation {tuple(dilation)}) is "
                             f"larger than the padded input: input size {tuple(spatial)}, padding {tuple(pads)}")


def choose_algorithm(algo, kernel_size, stride, dilation, groups):
    """The algorithm a Conv2d with these settings runs: ``algo`` unless it is "auto".

    "auto": FFT for kernels of 7x7 or more at stride 1, dilation 1, groups 1 (where the
    benchmarks show it faster: its cost does not grow with the kernel area), im2col otherwise.
    """
    if algo != "auto":
        return algo
    large = min(kernel_size) >= 7 and set(stride) == {1} and set(dilation) == {1} and groups == 1
    return "fft" if large else "im2col"


def _conv2d_forward(algo, x, w, b, pads, stride, dilation, groups):
    """Run one algorithm's forward; returns (out, cache for _conv2d_backward)."""
    if algo == "im2col":
        return F.conv2d_forward(x, w, b, stride, pads, dilation, groups)
    if algo == "fft":
        return conv_fft.conv2d_fft_forward(x, w, b, stride, pads, dilation, groups)
    out = F.conv2d_naive(x, w, b, stride, pads, dilation, groups)
    return out, (x, w, b is not None, stride, pads, dilation, groups)


def _conv2d_backward(algo, dout, cache, need_dw):
    if algo == "im2col":
        return F.conv2d_backward(dout, cache, need_dw=need_dw)
    if algo == "fft":
        return conv_fft.conv2d_fft_backward(dout, cache, need_dw=need_dw)
    x, w, has_bias, stride, pads, dilation, groups = cache
    dx, dw, db = F.conv2d_naive_backward(dout, x, w, stride, pads, dilation, groups)
    return dx, dw, (db if has_bias else None)


class _ConvNd(Module):
    """What Conv1d and Conv2d share: arguments, checks, parameters (PyTorch's default init), repr."""

    def __init__(self, dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, algo):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        _check_channels(name, self.in_channels, self.out_channels, self.groups)
        self.kernel_size = _tuple(kernel_size, dims, "kernel_size", name)
        self.stride = _tuple(stride, dims, "stride", name)
        self.dilation = _tuple(dilation, dims, "dilation", name)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, dims, "padding", name)
        self._pads = _resolve_padding(padding, self.kernel_size, self.stride, self.dilation, name)
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if algo not in ALGORITHMS:
            raise ValueError(f"{name}: algo must be one of {ALGORITHMS}, got {algo!r}")
        self.padding_mode, self.algo, self.algo_used = padding_mode, algo, None
        xp, dtype = backend.xp(), backend.get_default_dtype()
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(xp.empty(shape, dtype=dtype))
        self.bias = Parameter(xp.empty(self.out_channels, dtype=dtype)) if bias else None
        init.default_weight_and_bias_(self.weight, self.bias)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s + (f", algo={self.algo}" if self.algo != "auto" else "")


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over images.

    Shapes: x (N, C_in, H, W) -> out (N, C_out, Ho, Wo); weight (C_out, C_in/groups, kh, kw),
    bias (C_out,), PyTorch's layout and default initialization. With padding (pt, pb, pl, pr),
    Ho = floor((H + pt + pb - dh(kh-1) - 1) / sh) + 1 (Wo likewise).

    Forward:  out[n, o, y, x] = b[o] + sum_{c in group(o), i, j} w[o, c, i, j] xpad[n, c, sh y + dh i, sw x + dw j]
    Gradients: dL/dw[o, c, i, j] = sum_{n, y, x} dout[n, o, y, x] xpad[n, c, sh y + dh i, sw x + dw j]
               dL/db[o] = sum_{n, y, x} dout[n, o, y, x]
               dL/dxpad[n, c, sh y + dh i, sw x + dw j] += dout[n, o, y, x] w[o, c, i, j]  (the transposed
               convolution of dout), then dL/dx = the adjoint of the padding applied to dL/dxpad.

    padding: int, tuple, "valid" (0) or "same" (stride 1; total d(k-1), the odd one after).
    padding_mode: "zeros", "reflect", "replicate" or "circular".
    algo: "im2col", "fft" (npcnn.functional.conv_fft), "direct" (the loop reference, tiny
    inputs only) or "auto" (FFT for >= 7x7 kernels at stride 1, dilation 1, groups 1, else
    im2col); ``algo_used`` tells which one ran last.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", algo="auto"):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, algo)

    def forward(self, x):
        name = type(self).__name__
        check_ndim(name, x, (4,), "(N, C, H, W)")
        check_size(name, x, 1, self.in_channels, "in_channels (dimension 1)")
        check_float(name, x, self.weight.dtype)
        _check_fits(name, x.shape[2:], self._pads, self.kernel_size, self.dilation)
        pads, pad_cache = self._pads, None
        if self.padding_mode != "zeros":  # pad here; the kernel then pads nothing
            x, pad_cache = pad_forward(x, self._pads, self.padding_mode, name)
            pads = ((0, 0), (0, 0))
        self.algo_used = choose_algorithm(self.algo, self.kernel_size, self.stride, self.dilation, self.groups)
        b = None if self.bias is None else self.bias.data
        out, cache = _conv2d_forward(self.algo_used, x, self.weight.data, b, pads, self.stride, self.dilation,
                                     self.groups)
        self.save_for_backward((self.algo_used, cache, pad_cache))
        return out

    def backward(self, dout):
        algo, cache, pad_cache = self.pop_saved()
        dx, dw, db = _conv2d_backward(algo, dout, cache, need_dw=self.weight.requires_grad)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx if pad_cache is None else pad_backward(dx, pad_cache)

class Conv1d(_ConvNd):
    """1-D convolution over sequences: Conv2d on (N, C, 1, L) with a 1 x k kernel.

    Shapes: x (N, C_in, L) -> out (N, C_out, Lo), Lo = floor((L + pl + pr - d(k-1) - 1) / s) + 1;
    weight (C_out, C_in/groups, k), bias (C_out,).

    Forward:  out[n, o, t] = b[o] + sum_{c in group(o), i} w[o, c, i] xpad[n, c, s t + d i]
    Gradients: dL/dw[o, c, i] = sum_{n, t} dout[n, o, t] xpad[n, c, s t + d i],  dL/db[o] = sum_{n, t} dout[n, o, t],
               dL/dxpad[n, c, s t + d i] += dout[n, o, t] w[o, c, i], then the adjoint of the padding.

    Same options as Conv2d (padding "same"/"valid", padding_mode, algo, algo_used).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", algo="auto"):
        super().__init__(1, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, algo)

    def forward(self, x):
        name = type(self).__name__
        check_ndim(name, x, (3,), "(N, C, L)")
        check_size(name, x, 1, self.in_channels, "in_channels (dimension 1)")
        check_float(name, x, self.weight.dtype)
        _check_fits(name, x.shape[2:], self._pads, self.kernel_size, self.dilation)
        pads, pad_cache = ((0, 0),) + self._pads, None
        if self.padding_mode != "zeros":
            x, pad_cache = pad_forward(x, self._pads, self.padding_mode, name)
            pads = ((0, 0), (0, 0))
        self.algo_used = choose_algorithm(self.algo, self.kernel_size, self.stride, self.dilation, self.groups)
        stride, dilation = (1,) + self.stride, (1,) + self.dilation
        b = None if self.bias is None else self.bias.data
        out, cache = _conv2d_forward(self.algo_used, x[:, :, None, :], self.weight.data[:, :, None, :], b, pads,
                                     stride, dilation, self.groups)
        self.save_for_backward((self.algo_used, cache, pad_cache))
        return out[:, :, 0, :]

    def backward(self, dout):
        algo, cache, pad_cache = self.pop_saved()
        dx, dw, db = _conv2d_backward(algo, dout[:, :, None, :], cache, need_dw=self.weight.requires_grad)
        self.weight.accumulate_grad(None if dw is None else dw[:, :, 0, :])
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        dx = dx[:, :, 0, :]
        return dx if pad_cache is None else pad_backward(dx, pad_cache)


class ConvTranspose2d(Module):
    """2-D transposed convolution (the adjoint of Conv2d with the same weight; "deconvolution").

    Shapes: x (N, C_in, H, W) -> out (N, C_out, Ho, Wo) with
    Ho = sh(H-1) - 2 ph + dh(kh-1) + output_padding_h + 1 (Wo likewise);
    weight (C_in, C_out/groups, kh, kw) and bias (C_out,), PyTorch's layout and initialization.

    Forward:  out = crop_padding( sum_{c in group, i, j} x[n, c, y, x] w[c, o, i, j] added at
              (sh y + dh i, sw x + dw j) ) + b[o]     -- Conv2d's input gradient, by GEMM + col2im
    Gradients: dL/dx = Conv2d(dout_padded, w)   (the convolution it is the adjoint of)
               dL/dw[c, o, i, j] = sum_{n, y, x} x[n, c, y, x] dout_padded[n, o, sh y + dh i, sw x + dw j]
               dL/db[o] = sum_{n, y, x} dout[n, o, y, x]

    output_padding (< stride or < dilation) adds rows/columns at the bottom/right so that a
    strided Conv2d's input size can be recovered exactly.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        _check_channels(name, self.in_channels, self.out_channels, self.groups)
        self.kernel_size = _tuple(kernel_size, 2, "kernel_size", name)
        self.stride = _tuple(stride, 2, "stride", name)
        self.dilation = _tuple(dilation, 2, "dilation", name)
        self.padding = _tuple(padding, 2, "padding", name)
        self.output_padding = _tuple(output_padding, 2, "output_padding", name)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= op < max(s, d):
                raise ValueError(f"{name}: output_padding {self.output_padding} must be smaller than either "
                                 f"stride {self.stride} or dilation {self.dilation}")
        self.padding_mode = "zeros"
        xp, dtype = backend.xp(), backend.get_default_dtype()
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        self.weight = Parameter(xp.empty(shape, dtype=dtype))
        self.bias = Parameter(xp.empty(self.out_channels, dtype=dtype)) if bias else None
        init.default_weight_and_bias_(self.weight, self.bias)

    def forward(self, x):
        name = type(self).__name__
        check_ndim(name, x, (4,), "(N, C, H, W)")
        check_size(name, x, 1, self.in_channels, "in_channels (dimension 1)")
        check_float(name, x, self.weight.dtype)
        size = [F.conv_transpose_output_size(x.shape[2 + a], self.kernel_size[a], self.stride[a], self.padding[a],
                                             self.output_padding[a], self.dilation[a]) for a in range(2)]
        if min(size) < 1:
            raise ValueError(f"{name}: output size {tuple(size)} is not positive for input of shape "
                             f"{tuple(x.shape)} and padding {self.padding}")
        b = None if self.bias is None else self.bias.data
        pads = tuple((p, p) for p in self.padding)
        out, cache = F.conv_transpose2d_forward(x, self.weight.data, b, self.stride, pads, self.output_padding,
                                                self.dilation, self.groups)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        dx, dw, db = F.conv_transpose2d_backward(dout, self.pop_saved(), need_dw=self.weight.requires_grad)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
             f"padding={self.padding}")
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")
