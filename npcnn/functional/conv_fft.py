"""2-D convolution by the convolution theorem: pointwise products of spectra instead of sliding windows.

The op is PyTorch's conv2d, a cross-correlation:

    out[n, o, i, j] = b[o] + sum_{c, u, v} xpad[n, g*Cg + c, s*i + d*u, s*j + d*v] * w[o, c, u, v]

with x (N, C, H, W), w (O, Cg, kh, kw), Cg = C / groups, g = o // (O / groups), stride s, dilation d.

How it is computed here
-----------------------
1. The kernel is dilated (d-1 zeros between taps, size khd = d*(kh-1) + 1) and the input padded; both
   are zero-extended to one transform size L_H x L_W = next_fast_len(Eh) x next_fast_len(Ew), where
   Eh = s*(Ho-1) + khd <= Hp = H + top + bottom is the extent of the padded input the windows read,
   and transformed with real 2-D FFTs: X[n, c, f], W[o, c, f]. Positions no window reads (past the
   extent, or skipped by a stride larger than the kernel) are zeroed first: they enter no output,
   and zeroing them keeps the transforms' rounding out of outputs that are exactly zero.
2. Correlation theorem: the circular correlation of x with w has the spectrum X * conj(W). For the
   stride-1 output positions i = 0 .. Eh - khd, the window i + u (u < khd) stays below Eh <= L_H, so
   nothing wraps around: L >= Eh is enough (not Eh + khd - 1, as a full linear convolution needs).
3. Summing over the input channels of a group, for every frequency f separately, is a matrix product:
       Y[g, f] (N x Og) = X[g, f] (N x Cg) @ conj(W[g, f]) (Cg x Og)
   done as one batched matmul over (group, frequency). This contraction is the main cost.
4. Inverse real FFT, keep the valid stride-1 region, subsample by the stride, add the bias.

Stride is wasteful here: all (Eh - khd + 1) x (Ew - kwd + 1) stride-1 outputs are computed and only
one in s_h * s_w is kept; the transforms and the frequency-domain matmul do not shrink with the stride,
while im2col's GEMM shrinks by s_h * s_w. (Folding the subsampling into the spectrum, by summing its
aliased copies, would shrink the inverse FFTs only; it is not done.)

Backward (same transform size, so the forward's spectra are reused from the cache):
    dy_up = dout spread onto the stride-1 grid (zeros between, "upsampled"), spectrum DY
    dxpad = full convolution of dy_up with the dilated kernel:  DX[g, f] = DY[g, f] @ W[g, f]^T
            (its length Eh <= L: no wrap); zero the unread positions, crop to the input, un-pad.
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
`fft_cost` (here) and `npcnn.functional.conv.im2col_cost` return these forward estimates.
"""

import math

from .. import backend
from ..backend import get_array_module
from .geometry import conv_geometry, read_extent

# ----------------------------------------------------------------------------- geometry


def _check(x, w, b, stride, padding, dilation, groups, layer):
    """The checked :class:`~npcnn.functional.geometry.Geometry`, or a clear error for shapes or
    options the convolution cannot take."""
    if getattr(x, "ndim", None) != 4 or getattr(w, "ndim", None) != 4:
        raise ValueError(f"{layer}: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), got shapes "
                         f"{getattr(x, 'shape', None)} and {getattr(w, 'shape', None)}")
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layer=layer)
    if b is not None and tuple(b.shape) != (g.O,):
        raise ValueError(f"{layer}: expected bias of shape ({g.O},), got {tuple(b.shape)}")
    return g


def _read_positions(g, axis):
    """(extent, read): the length of the padded axis the windows read, s (out - 1) + d (k - 1) + 1,
    and the set of positions some window reads (every one below the extent at stride 1)."""
    out, kernel = (g.Ho, g.kh) if axis == 0 else (g.Wo, g.kw)
    stride, dilation = g.stride[axis], g.dilation[axis]
    read = set()
    for i in range(kernel):
        read.update(range(dilation * i, dilation * i + stride * (out - 1) + 1, stride))
    return read_extent(out, kernel, stride, dilation), read


def _transform_plan(g):
    """(fft_shape, (extent_h, extent_w), (unread rows, unread columns)) of a convolution.

    The transform covers only the read extent of the padded input (never more than Hp x Wp):
    outputs at stride-1 positions i <= s (out - 1) read up to i + d (k - 1) < extent <= L, so
    nothing wraps around. The unread positions (host lists, of range(L)) enter no output and get
    no gradient; zeroing them before the transform, and in dx after it, keeps the FFT's rounding
    from spreading their values into outputs that are exactly zero (e.g. a strided window that
    only ever reads padding). At stride 1 only the zero extension beyond the extent is unread."""
    (eh, read_h), (ew, read_w) = _read_positions(g, 0), _read_positions(g, 1)
    fft_shape = (backend.next_fast_len(eh), backend.next_fast_len(ew))
    unread = tuple([p for p in range(length) if p not in read]
                   for length, read in zip(fft_shape, (read_h, read_w)))
    return fft_shape, (eh, ew), unread


def _embed_input(x, g, fft_shape, extent, unread):
    """Zero (N, C, L_H, L_W) buffer holding the padded input's read extent, unread rows and
    columns zeroed (index assignment, so an unread inf or NaN leaves no trace)."""
    xp = get_array_module(x)
    buffer = xp.zeros(x.shape[:2] + tuple(fft_shape), dtype=x.dtype)
    (top, _), (left, _) = g.pads
    rows, cols = max(0, min(g.H, extent[0] - top)), max(0, min(g.W, extent[1] - left))
    buffer[:, :, top:top + rows, left:left + cols] = x[:, :, :rows, :cols]
    _zero_unread(buffer, unread, below=extent)
    return buffer


def _zero_unread(a, unread, below=None):
    """Zero the unread rows and columns of a (N, C, L_H, L_W) array in place (only those below
    ``below`` = (rows, columns) when given: the rest are zero already)."""
    xp = get_array_module(a)
    rows, cols = unread if below is None else ([p for p in unread[0] if p < below[0]],
                                               [p for p in unread[1] if p < below[1]])
    if rows:
        a[:, :, xp.asarray(rows)] = 0
    if cols:
        a[:, :, :, xp.asarray(cols)] = 0


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


def conv2d_fft_forward(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                       layer="conv2d_fft", geometry=None):
    """Cross-correlation of x (N, C, H, W) with w (O, C/groups, kh, kw) via real FFTs.

    ``padding`` is ((top, bottom), (left, right)) zeros (or any form of
    :func:`~npcnn.functional.geometry.padding_pairs`). Returns (out (N, O, Ho, Wo), cache).

    Rounding: each output is exact to about 1e-16 of the largest |x| |w| products of its sample,
    not of its own window (the transforms mix all positions), and positions no window reads are
    left out, so structurally zero outputs and gradients are exactly zero. Non-finite values: an
    inf or NaN that some window reads makes every output of its sample NaN (and one in ``w`` every
    output); ``Conv2d(algo="auto")`` therefore takes im2col for non-finite input.
    ``layer`` names the caller in errors. ``geometry``: the
    :class:`~npcnn.functional.geometry.Geometry` of these arguments when the caller has checked
    them already (``conv2d_forward``); stride, padding, dilation and groups are then taken from it."""
    g = _check(x, w, b, stride, padding, dilation, groups, layer) if geometry is None else geometry
    xp = get_array_module(x)
    dtype = xp.result_type(x, w)
    fft_shape, extent, unread = _transform_plan(g)

    # Spectra of the padded input and of the dilated kernel, as one matrix per group and frequency.
    # The kernel is conjugated (correlation theorem) and stored transposed, Cg x Og, so that the
    # forward and both backward products are plain (un-transposed) matmuls of contiguous stacks.
    x_mat = _to_matrices(_rfft2(_embed_input(x.astype(dtype, copy=False), g, fft_shape, extent, unread)),
                         g.groups, 1)                                  # (G, F, N, Cg)
    w_spec = _rfft2(_embed(_dilate(w.astype(dtype, copy=False), g.dilation), fft_shape, (0, 0)))
    wc_mat = _to_matrices(xp.conjugate(w_spec, out=w_spec), g.groups, 0, transpose=True)  # (G, F, Cg, Og)

    y_mat = x_mat @ wc_mat                                             # (G, F, N, Og): sum over channels
    spectral_shape = (fft_shape[0], fft_shape[1] // 2 + 1)
    full = _irfft2(_from_matrices(y_mat, 1, False, spectral_shape), fft_shape)  # (N, O, L_H, L_W), stride 1
    (sh, sw) = g.stride
    out = xp.ascontiguousarray(full[:, :, :sh * (g.Ho - 1) + 1:sh, :sw * (g.Wo - 1) + 1:sw])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)                                  # out is fresh: in place is safe
    cache = (x_mat, wc_mat, g, fft_shape, extent, unread, b is not None)
    return out, cache


def conv2d_fft_backward(dout, cache, need_dx=True, need_dw=True):
    """Returns (dx, dw, db); a gradient that is not needed (or a missing bias's) is None."""
    x_mat, wc_mat, g, fft_shape, extent, unread, has_bias = cache
    xp = get_array_module(dout)
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if not (need_dx or need_dw):
        return None, None, db
    spectral_shape = (fft_shape[0], fft_shape[1] // 2 + 1)
    # dout on the stride-1 grid (zeros between), zero-extended to the transform size; dout is only read.
    dy_spec = _rfft2(_embed(dout.astype(x_mat.real.dtype, copy=False), fft_shape, (0, 0), g.stride))
    dyc_mat = _to_matrices(xp.conjugate(dy_spec, out=dy_spec), g.groups, 1, transpose=True)  # (G, F, Og, N)
    dx = dw = None
    if need_dx:
        # Full convolution DX = DY W = conj(conj(W)^T conj(DY)^T)^T, computed as (G, F, Cg, N).
        dxt_mat = wc_mat @ dyc_mat
        dx_pad = _irfft2(_from_matrices(xp.conjugate(dxt_mat, out=dxt_mat), 1, True, spectral_shape), fft_shape)
        _zero_unread(dx_pad, unread)  # unread positions get no gradient, exactly
        (top, _), (left, _) = g.pads
        rows, cols = max(0, min(g.H, extent[0] - top)), max(0, min(g.W, extent[1] - left))
        dx = xp.zeros((g.N, g.C, g.H, g.W), dtype=dx_pad.dtype)
        dx[:, :, :rows, :cols] = dx_pad[:, :, top:top + rows, left:left + cols]
    if need_dw:
        dw_mat = dyc_mat @ x_mat                                       # (G, F, Og, Cg): correlation
        dw_full = _irfft2(_from_matrices(dw_mat, 0, False, spectral_shape), fft_shape)
        (dh, dwl) = g.dilation
        dw = xp.ascontiguousarray(dw_full[:, :, :dh * (g.kh - 1) + 1:dh, :dwl * (g.kw - 1) + 1:dwl])
    return dx, dw, db


# ----------------------------------------------------------------------------- cost model


def _fft_flops(points):
    """About 2.5 P log2 P real flops for one real 2-D FFT of P points (half a complex FFT's 5 P log2 P)."""
    return 2.5 * points * math.log2(max(points, 2))


def fft_cost(x_shape, w_shape, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Estimated real flops of conv2d_fft_forward (see the module docstring):

        (N*C + O*Cg + N*O) * 2.5 P log2 P  +  8 * N * Cg * O * F

    P = L_H * L_W, the transform size (next fast lengths of the read extent of the padded input,
    s (out - 1) + d (k - 1) + 1 per axis: stride and dilation enter only there, since the FFT
    computes every stride-1 output anyway), F = L_H * (L_W//2 + 1). Groups enter through Cg:
    the contraction is G products of (N x Cg) by (Cg x O/G) per frequency, N*Cg*O multiply-adds."""
    g = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, layer="fft_cost")
    (lh, lw), _, _ = _transform_plan(g)
    frequencies = lh * (lw // 2 + 1)
    transforms = (g.N * g.C + g.O * g.C // g.groups + g.N * g.O) * _fft_flops(lh * lw)
    return float(transforms + 8 * g.N * (g.C // g.groups) * g.O * frequencies)


__all__ = ["conv2d_fft_forward", "conv2d_fft_backward", "fft_cost"]
