"""2-D convolution by the convolution theorem: pointwise products of spectra instead of sliding windows.

The op is PyTorch's conv2d, a cross-correlation:

    out[n, o, i, j] = b[o] + sum_{c, u, v} xpad[n, g*Cg + c, s*i + d*u, s*j + d*v] * w[o, c, u, v]

with x (N, C, H, W), w (O, Cg, kh, kw), Cg = C / groups, g = o // (O / groups), stride s, dilation d.

How it is computed here
-----------------------
1. The kernel is dilated (d-1 zeros between taps, size khd = d*(kh-1) + 1) and the input padded; both
   are zero-extended to one transform size L_H x L_W = next_fast_len(Hp) x next_fast_len(Wp)
   (Hp = H + top + bottom) and transformed with real 2-D FFTs: X[n, c, f], W[o, c, f].
2. Correlation theorem: the circular correlation of x with w has the spectrum X * conj(W). For the
   stride-1 output positions i = 0 .. Hp - khd, the window i + u (u < khd) stays below Hp <= L_H, so
   nothing wraps around: L >= Hp is enough (not Hp + khd - 1, as a full linear convolution needs).
3. Summing over the input channels of a group, for every frequency f separately, is a matrix product:
       Y[g, f] (N x Og) = X[g, f] (N x Cg) @ conj(W[g, f]) (Cg x Og)
   done as one batched matmul over (group, frequency). This contraction is the main cost.
4. Inverse real FFT, keep the valid stride-1 region, subsample by the stride, add the bias.

Stride is wasteful here: all (Hp - khd + 1) x (Wp - kwd + 1) stride-1 outputs are computed and only
one in s_h * s_w is kept; the transforms and the frequency-domain matmul do not shrink with the stride,
while im2col's GEMM shrinks by s_h * s_w. (Folding the subsampling into the spectrum, by summing its
aliased copies, would shrink the inverse FFTs only; it is not done.)

Backward (same transform size, so the forward's spectra are reused from the cache):
    dy_up = dout spread onto the stride-1 grid (zeros between, "upsampled"), spectrum DY
    dxpad = full convolution of dy_up with the dilated kernel:  DX[g, f] = DY[g, f] @ W[g, f]^T
            (its length Hp - khd + 1 + khd - 1 = Hp <= L: no wrap); crop to the input, un-pad.
    dWd   = correlation of xpad with dy_up:  DWd[g, f] = DY[g, f]^H @ X[g, f]   (lag u < khd, no wrap);
            crop to the dilated kernel, then keep every d-th tap: dW = dWd[:, :, ::d_h, ::d_w]
    db    = sum of dout over N, H, W

Cost (real floating-point operations; a complex multiply-add is 8 flops, a real 2-D FFT of
P = L_H * L_W points about 2.5 P log2 P flops, F = L_H * (L_W // 2 + 1) complex frequencies)
    FFT forward:     (N*C + O*Cg + N*O) * 2.5 P log2 P   +   8 * N * Cg * O * F
    im2col forward:  2 * N * O * Ho * Wo * Cg * kh * kw             (the GEMM; building columns is memory)
For stride 1 and small padding (Ho*Wo ~ P, F ~ P/2) the products ratio is im2col/FFT ~ kh*kw / 2, so
the FFT's contraction wins from 3x3 kernels on in flops alone; in practice the batched matmul of small
complex matrices runs below a big GEMM's speed and the transforms and layout changes add memory
traffic, so on a CPU the FFT is about even with im2col at 3x3 and clearly ahead from 5x5 or 7x7 on
(benchmarks/fft_vs_im2col.py). It also loses its edge with stride > 1 (see above) and when the padded
input is much larger than the output. Each backward costs about twice its forward for both methods
(two contractions of the forward's size; the FFT reuses the cached input and kernel spectra).
`fft_cost` and `im2col_cost` return these forward estimates.
"""

import math

from .. import backend
from ..backend import get_array_module

_NAME = "conv2d_fft"


# ----------------------------------------------------------------------------- geometry


def _output_size(size, pad, kernel, stride, dilation):
    """floor((size + pad_lo + pad_hi - dilation*(kernel-1) - 1) / stride) + 1."""
    return (size + pad[0] + pad[1] - dilation * (kernel - 1) - 1) // stride + 1


def _check(x, w, b, stride, padding, dilation, groups):
    """Raise a clear error for shapes or options the convolution cannot take."""
    if getattr(x, "ndim", None) != 4 or getattr(w, "ndim", None) != 4:
        raise ValueError(f"{_NAME}: expected x (N, C, H, W) and w (O, C/groups, kh, kw), got shapes "
                         f"{getattr(x, 'shape', None)} and {getattr(w, 'shape', None)}")
    n_out, c_group = w.shape[:2]
    if groups < 1 or x.shape[1] != c_group * groups or n_out % groups:
        raise ValueError(f"{_NAME}: with groups={groups} expected C = {c_group} * groups and O divisible "
                         f"by groups, got x {tuple(x.shape)} and w {tuple(w.shape)}")
    if b is not None and tuple(b.shape) != (n_out,):
        raise ValueError(f"{_NAME}: expected bias of shape ({n_out},), got {tuple(b.shape)}")
    if min(stride) < 1 or min(dilation) < 1 or min(min(p) for p in padding) < 0:
        raise ValueError(f"{_NAME}: expected stride >= 1, dilation >= 1, padding >= 0, got "
                         f"stride={stride}, dilation={dilation}, padding={padding}")
    for axis in (0, 1):
        if _output_size(x.shape[2 + axis], padding[axis], w.shape[2 + axis], stride[axis], dilation[axis]) < 1:
            raise ValueError(f"{_NAME}: the (dilated) kernel {tuple(w.shape[2:])} with dilation {dilation} is "
                             f"larger than the padded input {tuple(x.shape[2:])} + padding {padding}")


# ----------------------------------------------------------------------------- transforms and layout


def _fft_options(a):
    """scipy.fft may use every core (workers=-1); cupyx.scipy.fft takes no such argument."""
    return {} if backend.is_cupy_array(a) else {"workers": -1}


def _rfft2(a):
    return backend.fft_module(a).rfft2(a, axes=(-2, -1), **_fft_options(a))


def _irfft2(spectrum, shape):
    """Inverse of _rfft2; the spectrum is always a temporary here, so the FFT may overwrite it."""
    fft = backend.fft_module(spectrum)
    return fft.irfft2(spectrum, s=shape, axes=(-2, -1), overwrite_x=True, **_fft_options(spectrum))


def _to_matrices(spectra, groups, grouped_axis, transpose=False):
    """(A, B, L_H, L_Wr) spectra -> contiguous (G, F, A', B') stack of matrices, one per group and
    frequency, for the batched matmul; (G, F, B', A') with ``transpose``.

    ``grouped_axis`` is split into the groups: 1 for images (N, C) -> A' = N, B' = C/G;
    0 for kernels (O, Cg) -> A' = O/G, B' = Cg."""
    xp = get_array_module(spectra)
    a, b = spectra.shape[:2]
    if grouped_axis == 1:
        split = spectra.reshape(a, groups, b // groups, -1).transpose(1, 0, 2, 3)   # (G, A, B/G, F)
    else:
        split = spectra.reshape(groups, a // groups, b, -1)                          # (G, A/G, B, F)
    return xp.ascontiguousarray(split.transpose((0, 3, 2, 1) if transpose else (0, 3, 1, 2)))


def _from_matrices(matrices, grouped_axis, transposed, spectral_shape):
    """The inverse of _to_matrices: (G, F, A', B') (or (G, F, B', A')) -> contiguous (A, B, L_H, L_Wr)."""
    xp = get_array_module(matrices)
    split = matrices.transpose((0, 3, 2, 1) if transposed else (0, 2, 3, 1))         # (G, A', B', F)
    g, a, b = split.shape[:3]
    if grouped_axis == 1:
        return xp.ascontiguousarray(split.transpose(1, 0, 2, 3)).reshape((a, g * b) + spectral_shape)
    return xp.ascontiguousarray(split).reshape((g * a, b) + spectral_shape)


def _embed(a, fft_shape, offset, step=(1, 1)):
    """Zero (N, C, L_H, L_W) buffer holding ``a`` from ``offset`` on, every ``step``-th position.

    This pads (the offset), zero-extends to the transform size and upsamples (the step) in one copy."""
    xp = get_array_module(a)
    buffer = xp.zeros(a.shape[:2] + tuple(fft_shape), dtype=a.dtype)
    (top, left), (sh, sw) = offset, step
    buffer[:, :, top:top + sh * a.shape[2]:sh, left:left + sw * a.shape[3]:sw] = a
    return buffer


def _dilate(w, dilation):
    """The dilated kernel: d-1 zeros between taps, shape (O, Cg, d_h*(kh-1)+1, d_w*(kw-1)+1)."""
    if dilation == (1, 1):
        return w
    xp = get_array_module(w)
    dh, dw = dilation
    out = xp.zeros(w.shape[:2] + (dh * (w.shape[2] - 1) + 1, dw * (w.shape[3] - 1) + 1), dtype=w.dtype)
    out[:, :, ::dh, ::dw] = w
    return out


# ----------------------------------------------------------------------------- kernels


def conv2d_fft_forward(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw) via real FFTs.

    ``padding`` is ((top, bottom), (left, right)) zeros. Returns (out (N, O, Ho, Wo), cache)."""
    stride, dilation = tuple(stride), tuple(dilation)
    padding = (tuple(padding[0]), tuple(padding[1]))
    _check(x, w, b, stride, padding, dilation, groups)
    xp = get_array_module(x)
    dtype = xp.result_type(x, w)
    n, _, h, wd = x.shape
    padded = (h + sum(padding[0]), wd + sum(padding[1]))
    fft_shape = (backend.next_fast_len(padded[0]), backend.next_fast_len(padded[1]))
    out_size = tuple(_output_size(x.shape[2 + a], padding[a], w.shape[2 + a], stride[a], dilation[a])
                     for a in (0, 1))

    # Spectra of the padded input and of the dilated kernel, as one matrix per group and frequency.
    # The kernel is conjugated (correlation theorem) and stored transposed, Cg x Og, so that the
    # forward and both backward products are plain (un-transposed) matmuls of contiguous stacks.
    x_mat = _to_matrices(_rfft2(_embed(x.astype(dtype, copy=False), fft_shape, (padding[0][0], padding[1][0]))),
                         groups, 1)                                    # (G, F, N, Cg)
    w_spec = _rfft2(_embed(_dilate(w.astype(dtype, copy=False), dilation), fft_shape, (0, 0)))
    wc_mat = _to_matrices(xp.conjugate(w_spec, out=w_spec), groups, 0, transpose=True)  # (G, F, Cg, Og)

    y_mat = x_mat @ wc_mat                                             # (G, F, N, Og): sum over channels
    spectral_shape = (fft_shape[0], fft_shape[1] // 2 + 1)
    full = _irfft2(_from_matrices(y_mat, 1, False, spectral_shape), fft_shape)  # (N, O, L_H, L_W), stride 1
    (sh, sw), (ho, wo) = stride, out_size
    out = xp.ascontiguousarray(full[:, :, :sh * (ho - 1) + 1:sh, :sw * (wo - 1) + 1:sw])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)                                  # out is fresh: in place is safe
    cache = (x_mat, wc_mat, x.shape, w.shape, stride, padding, dilation, groups, fft_shape, b is not None)
    return out, cache


def conv2d_fft_backward(dout, cache, need_dx=True, need_dw=True):
    """Returns (dx, dw, db); a gradient that is not needed (or a missing bias's) is None."""
    x_mat, wc_mat, x_shape, w_shape, stride, padding, dilation, groups, fft_shape, has_bias = cache
    xp = get_array_module(dout)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if not (need_dx or need_dw):
        return None, None, db
    spectral_shape = (fft_shape[0], fft_shape[1] // 2 + 1)
    # dout on the stride-1 grid (zeros between), zero-extended to the transform size; dout is only read.
    dy_spec = _rfft2(_embed(dout.astype(x_mat.real.dtype, copy=False), fft_shape, (0, 0), stride))
    dyc_mat = _to_matrices(xp.conjugate(dy_spec, out=dy_spec), groups, 1, transpose=True)  # (G, F, Og, N)
    dx = dw = None
    if need_dx:
        # Full convolution DX = DY W = conj(conj(W)^T conj(DY)^T)^T, computed as (G, F, Cg, N).
        dxt_mat = wc_mat @ dyc_mat
        dx_pad = _irfft2(_from_matrices(xp.conjugate(dxt_mat, out=dxt_mat), 1, True, spectral_shape), fft_shape)
        top, left = padding[0][0], padding[1][0]
        dx = xp.ascontiguousarray(dx_pad[:, :, top:top + x_shape[2], left:left + x_shape[3]])
    if need_dw:
        dw_mat = dyc_mat @ x_mat                                       # (G, F, Og, Cg): correlation
        dw_full = _irfft2(_from_matrices(dw_mat, 0, False, spectral_shape), fft_shape)
        (dh, dwl), (kh, kw) = dilation, w_shape[2:]
        dw = xp.ascontiguousarray(dw_full[:, :, :dh * (kh - 1) + 1:dh, :dwl * (kw - 1) + 1:dwl])
    return dx, dw, db


# ----------------------------------------------------------------------------- cost model


def _fft_flops(points):
    """About 2.5 P log2 P real flops for one real 2-D FFT of P points (half a complex FFT's 5 P log2 P)."""
    return 2.5 * points * math.log2(max(points, 2))


def fft_cost(x_shape, w_shape, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Estimated real flops of conv2d_fft_forward (see the module docstring):

        (N*C + O*Cg + N*O) * 2.5 P log2 P  +  8 * N * Cg * O * F

    P = L_H * L_W, the transform size (next fast lengths of the padded input), F = L_H * (L_W//2 + 1).
    It does not depend on stride or dilation: the FFT computes every stride-1 output anyway."""
    n, c, h, w = x_shape
    n_out, c_group = w_shape[:2]
    lh = backend.next_fast_len(h + padding[0][0] + padding[0][1])
    lw = backend.next_fast_len(w + padding[1][0] + padding[1][1])
    frequencies = lh * (lw // 2 + 1)
    transforms = (n * c + n_out * c_group + n * n_out) * _fft_flops(lh * lw)
    return float(transforms + 8 * n * c_group * n_out * frequencies)


def im2col_cost(x_shape, w_shape, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Estimated real flops of an im2col forward: the GEMM, 2 * N * O * Ho * Wo * Cg * kh * kw
    (one multiply and one add per tap; building the columns is memory traffic, not counted)."""
    n, _, h, w = x_shape
    n_out, c_group, kh, kw = w_shape
    ho = _output_size(h, padding[0], kh, stride[0], dilation[0])
    wo = _output_size(w, padding[1], kw, stride[1], dilation[1])
    return float(2 * n * n_out * ho * wo * c_group * kh * kw)


__all__ = ["conv2d_fft_forward", "conv2d_fft_backward", "fft_cost", "im2col_cost"]
