"""Convolution layers: Conv2d, Conv1d, ConvTranspose2d.

The layers hold the weight and bias (PyTorch's layouts, defaults and initialization), check
their arguments and inputs, and call the kernels of ``npcnn.functional.conv``, which pad (the
padding modes), choose the algorithm (``algo``) and keep everything backward needs in one cache.

Choosing the algorithm (``algo="auto"``, :func:`npcnn.functional.conv.choose_algorithm`): FFT
costs O(N C P log P) for the transforms plus O(N O C P) complex multiply-adds, independent of the
kernel size, while im2col costs 2 N O C kh kw Ho Wo flops. With a kernel of 7x7 or larger,
stride 1, dilation 1 and no groups, the kernel-size factor (>= 49) outweighs the FFT's overheads,
so "auto" picks FFT there (when the input and weight are finite) and im2col everywhere else
(strides and dilations waste FFT work on outputs that are thrown away; groups make the
per-frequency products tiny). The choice is in ``layer.algo_used`` after each forward.
"""

from .. import backend
from ..functional.conv import (
    ALGORITHMS,
    PADDING_MODES,
    choose_algorithm,
    conv1d_backward,
    conv1d_forward,
    conv2d_backward,
    conv2d_forward,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)
from ..functional.geometry import (
    as_tuple,
    check_at_least,
    check_channels,
    conv_transpose_output_size,
    resolve_padding,
)
from . import init
from .module import Module
from .parameter import Parameter
from .validation import check_float, check_ndim, check_size

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d", "choose_algorithm"]


def _check_input(layer, x, layout, channels, dtype):
    """Rank, channel count and dtype of a convolution layer's input (the kernel checks that the
    kernel fits, with the same ``layer`` name in its error)."""
    check_ndim(layer, x, (len(layout),), "(" + ", ".join(layout) + ")")
    check_size(layer, x, 1, channels, "in_channels (dimension 1)")
    check_float(layer, x, dtype)


def _conv_args(layer, dims, in_channels, out_channels, kernel_size, stride, dilation, groups):
    """Checked (in, out, groups, kernel_size, stride, dilation), the sizes as ``dims``-tuples."""
    check_channels(layer, in_channels, out_channels, groups)
    kernel_size = as_tuple(kernel_size, dims, layer, "kernel_size")
    stride, dilation = as_tuple(stride, dims, layer, "stride"), as_tuple(dilation, dims, layer, "dilation")
    for name, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
        check_at_least(layer, name, value, 1)
    return int(in_channels), int(out_channels), int(groups), kernel_size, stride, dilation


def _parameters(module, weight_shape, out_channels, bias):
    """weight and bias (or None) in PyTorch's default initialization."""
    xp, dtype = backend.xp(), backend.get_default_dtype()
    module.weight = Parameter(xp.empty(weight_shape, dtype=dtype))
    module.bias = Parameter(xp.empty(out_channels, dtype=dtype)) if bias else None
    init.default_weight_and_bias_(module.weight, module.bias)


def _conv_repr(m):
    """PyTorch's _ConvNd.extra_repr: the defaults are left out."""
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    if isinstance(m.padding, str) or any(m.padding):
        s += f", padding={m.padding}"
    if any(d != 1 for d in m.dilation):
        s += f", dilation={m.dilation}"
    if any(getattr(m, "output_padding", ())):
        s += f", output_padding={m.output_padding}"
    if m.groups != 1:
        s += f", groups={m.groups}"
    if m.bias is None:
        s += ", bias=False"
    if m.padding_mode != "zeros":
        s += f", padding_mode={m.padding_mode}"
    return s + (f", algo={m.algo}" if getattr(m, "algo", "auto") != "auto" else "")


class _ConvNd(Module):
    """What Conv1d and Conv2d share: arguments, checks, parameters (PyTorch's default init), repr."""

    def __init__(self, dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, algo):
        super().__init__()
        name = type(self).__name__
        (self.in_channels, self.out_channels, self.groups, self.kernel_size, self.stride,
         self.dilation) = _conv_args(name, dims, in_channels, out_channels, kernel_size, stride, dilation, groups)
        self._pads = resolve_padding(padding, self.kernel_size, self.stride, self.dilation, name)
        self.padding = padding if isinstance(padding, str) else as_tuple(padding, dims, name, "padding")
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        if algo not in ALGORITHMS:
            raise ValueError(f"{name}: algo must be one of {ALGORITHMS}, got {algo!r}")
        self.padding_mode, self.algo, self.algo_used = padding_mode, algo, None
        _parameters(self, (self.out_channels, self.in_channels // self.groups) + self.kernel_size,
                    self.out_channels, bias)

    def extra_repr(self):
        return _conv_repr(self)


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
    algo: "im2col", "fft" (npcnn.functional.conv_fft), "direct" (the loop twin, for teaching and
    tiny inputs only) or "auto" (FFT for >= 7x7 kernels at stride 1, dilation 1, groups 1 when
    the input and weight are finite, else im2col); ``algo_used`` tells which one ran last.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", algo="auto"):
        super().__init__(2, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, algo)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCHW", self.in_channels, self.weight.dtype)
        b = None if self.bias is None else self.bias.data
        out, cache = conv2d_forward(x, self.weight.data, b, self.stride, self._pads, self.dilation, self.groups,
                                    algo=self.algo, padding_mode=self.padding_mode, layer=name)
        self.algo_used = cache.algo
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        # need_dx False only under no_input_grad (the network's input): dx comes back as None
        dx, dw, db = conv2d_backward(dout, self.pop_saved(), need_dx=self.needs_input_grad,
                                     need_dw=self.weight.requires_grad)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx


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
        _check_input(name, x, "NCL", self.in_channels, self.weight.dtype)
        b = None if self.bias is None else self.bias.data
        out, cache = conv1d_forward(x, self.weight.data, b, self.stride, self._pads, self.dilation, self.groups,
                                    algo=self.algo, padding_mode=self.padding_mode, layer=name)
        self.algo_used = cache.algo
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        # need_dx False only under no_input_grad (the network's input): dx comes back as None
        dx, dw, db = conv1d_backward(dout, self.pop_saved(), need_dx=self.needs_input_grad,
                                     need_dw=self.weight.requires_grad)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx


class ConvTranspose2d(Module):
    """2-D transposed convolution (the adjoint of Conv2d with the same weight; "deconvolution").

    Shapes: x (N, C_in, H, W) -> out (N, C_out, Ho, Wo) with
    Ho = sh(H-1) - 2 ph + dh(kh-1) + output_padding_h + 1 (Wo likewise), which must be >= 1;
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
                 bias=True, dilation=1, padding_mode="zeros"):
        super().__init__()
        name = type(self).__name__
        (self.in_channels, self.out_channels, self.groups, self.kernel_size, self.stride,
         self.dilation) = _conv_args(name, 2, in_channels, out_channels, kernel_size, stride, dilation, groups)
        self.padding = as_tuple(padding, 2, name, "padding")
        self.output_padding = as_tuple(output_padding, 2, name, "output_padding")
        check_at_least(name, "padding", self.padding, 0)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= op < max(s, d):
                raise ValueError(f"{name}: output_padding {self.output_padding} must be >= 0 and smaller than "
                                 f"either stride {self.stride} or dilation {self.dilation}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported (as PyTorch), got {padding_mode!r}")
        self.padding_mode = "zeros"
        _parameters(self, (self.in_channels, self.out_channels // self.groups) + self.kernel_size,
                    self.out_channels, bias)

    def forward(self, x):
        name = type(self).__name__
        _check_input(name, x, "NCHW", self.in_channels, self.weight.dtype)
        size = [conv_transpose_output_size(x.shape[2 + a], self.kernel_size[a], self.stride[a], self.padding[a],
                                           self.output_padding[a], self.dilation[a]) for a in range(2)]
        if min(size) < 1:
            raise ValueError(f"{name}: output size {tuple(size)} is not positive for input of shape "
                             f"{tuple(x.shape)} and padding {self.padding}")
        b = None if self.bias is None else self.bias.data
        out, cache = conv_transpose2d_forward(x, self.weight.data, b, self.stride, self.padding, self.output_padding,
                                              self.dilation, self.groups)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        dx, dw, db = conv_transpose2d_backward(dout, self.pop_saved(), need_dw=self.weight.requires_grad)
        self.weight.accumulate_grad(dw)
        if self.bias is not None:
            self.bias.accumulate_grad(db)
        return dx

    def extra_repr(self):
        return _conv_repr(self)
