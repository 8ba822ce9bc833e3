"""Winograd F(2x2, 3x3) convolution: 3x3 kernels, stride 1, dilation 1, with a loop twin.

The same convolution as ``functional.conv`` (cross-correlation with zero padding
``((top, bottom), (left, right))``; x (N, C, H, W), w (O, C/groups, 3, 3), out (N, O, Ho, Wo)
with Ho = H + top + bottom - 2), computed with fewer multiplications (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2015). The output is cut into 2x2 tiles; the
tile at (2ty, 2tx) depends only on the 4x4 input tile d = xpad[2ty:2ty+4, 2tx:2tx+4], and

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* elementwise on 4x4, summed over channels)

with the constant matrices

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].

A 2x2 output tile costs 16 multiplications per channel pair instead of 36 (2.25x fewer). Over
a whole batch, the sum over channels at each of the 16 tile positions (k, l) is one matrix
product, so the convolution is 16 GEMMs:

    U[k, l] = (G g G^T)[k, l]       (O, C)        weight transform, once per call
    V[k, l] = (B^T d B)[k, l]       (C, tiles)    input transform of every tile of every sample
    M[k, l] = U[k, l] @ V[k, l]     (O, tiles)
    out     = A^T M A               per tile      output transform

The backward pass runs the same steps transposed (each transform is linear; its adjoint is
the transposed matrix):

    dM = A dY A^T                   (dY: the 2x2 tiles of dout)
    dU[k, l] = dM[k, l] @ V[k, l]^T,    dw = G^T dU G          (summed over tiles)
    dV[k, l] = U[k, l]^T @ dM[k, l],    dd = B dV B^T          (per tile)
    dx = the 4x4 tiles dd added back where they were read (neighbouring tiles overlap by 2)

B and A hold only 0 and +-1, so their transforms are written out as additions of strided
slices (rows first, then columns) instead of matrix products; no Python loop runs over pixels
or tiles, only over the 4 rows / columns of a tile. The batch is processed in chunks whose
V stays near ``CHUNK_TARGET_BYTES`` (cache-sized), and V is rebuilt in backward from x rather
than kept, so a network holds no transformed inputs between its passes (as im2col's columns).

Float32 error: the transforms add and halve numbers of one magnitude, so F(2x2, 3x3) keeps the
relative error of a direct float32 convolution (measured ~1e-7 relative to the output's scale;
tests/test_functional_winograd.py asserts < 1e-5). Larger tiles (F(4x4, 3x3)) need the
fractions 1/4, 1/6, 1/24 and lose about a digit more, which is why only F(2x2, 3x3) is here.
"""

import numpy as np

from ..backend import get_array_module

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

# Samples per chunk are chosen so that a chunk's transformed input V stays near this size (in
# the CPU caches between the input transform, the 16 GEMMs and the output transform).
CHUNK_TARGET_BYTES = 8 * 2 ** 20


# ----------------------------------------------------------------------------- geometry


def _pads(padding):
    """int, (ph, pw) or ((top, bottom), (left, right)) -> ((top, bottom), (left, right))."""
    if isinstance(padding, int):
        return ((padding, padding), (padding, padding))
    padding = tuple(padding)
    if len(padding) != 2:
        raise ValueError(f"winograd_conv2d: padding must be an int, (ph, pw) or ((top, bottom), (left, right)), "
                         f"got {padding}")
    return tuple((int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding)


def winograd_applicable(w_shape, stride=(1, 1), dilation=(1, 1)):
    """True when a convolution of weight shape ``w_shape`` can use the Winograd kernels:
    a 3x3 kernel with stride 1 and dilation 1 (any padding, any groups)."""
    return (len(w_shape) == 4 and tuple(w_shape[2:]) == (3, 3) and tuple(np.broadcast_to(stride, 2)) == (1, 1)
            and tuple(np.broadcast_to(dilation, 2)) == (1, 1))


def _geometry(x_shape, w_shape, padding):
    """(N, C, H, W, O, groups, pads, Ho, Wo, th, tw) of a Winograd convolution, checked."""
    if len(x_shape) != 4:
        raise ValueError(f"winograd_conv2d: expected input of shape (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4 or tuple(w_shape[2:]) != (3, 3):
        raise ValueError(f"winograd_conv2d: expected a 3x3 weight of shape (O, C/groups, 3, 3), got shape "
                         f"{tuple(w_shape)} (F(2x2, 3x3) handles 3x3 kernels only)")
    N, C, H, W = (int(s) for s in x_shape)
    O, Cg = int(w_shape[0]), int(w_shape[1])
    if Cg < 1 or C % Cg or O % (C // Cg):
        raise ValueError(f"winograd_conv2d: weight of shape {tuple(w_shape)} does not fit input of shape "
                         f"{tuple(x_shape)} (in_channels must be a multiple of w.shape[1], out_channels of groups)")
    pads = _pads(padding)
    if min(min(p) for p in pads) < 0:
        raise ValueError(f"winograd_conv2d: padding must be >= 0, got {pads}")
    Ho, Wo = H + sum(pads[0]) - 2, W + sum(pads[1]) - 2
    if Ho < 1 or Wo < 1:
        raise ValueError(f"winograd_conv2d: the 3x3 kernel is larger than the padded input "
                         f"({H + sum(pads[0])}, {W + sum(pads[1])})")
    return N, C, H, W, O, C // Cg, pads, Ho, Wo, (Ho + 1) // 2, (Wo + 1) // 2


def _chunk_size(C, th, tw, itemsize, N):
    """Samples per chunk: V of a chunk (16 C th tw entries per sample) near CHUNK_TARGET_BYTES."""
    return max(1, min(N, CHUNK_TARGET_BYTES // (16 * C * th * tw * itemsize)))


# ----------------------------------------------------------------------------- transforms


def weight_transform(w):
    """U = G w G^T for every (o, c): (O, Cg, 3, 3) -> (4, 4, O, Cg), in w's dtype."""
    xp = get_array_module(w)
    g = xp.asarray(G, dtype=w.dtype)
    return xp.einsum("ki,ocij,lj->kloc", g, w, g)


def weight_transform_backward(dU):
    """dw = G^T dU G: the adjoint of :func:`weight_transform`, (4, 4, O, Cg) -> (O, Cg, 3, 3)."""
    xp = get_array_module(dU)
    g = xp.asarray(G, dtype=dU.dtype)
    return xp.einsum("ki,kloc,lj->ocij", g, dU, g)


def _padded_cn(x, pads, th, tw, start, stop):
    """Samples start:stop of x, zero-padded to (2th + 2, 2tw + 2), as (C, n, Hp, Wp).

    The channel-major layout makes every transform below write contiguous (C, n, ...) blocks,
    which is the layout the GEMMs multiply (C rows, tiles of all n samples as columns).
    """
    xp = get_array_module(x)
    (top, _), (left, _) = pads
    N, C, H, W = x.shape
    # 2th + 2 >= Ho + 2 = top + H + bottom: x always fits (odd Ho adds one zero row below)
    xpad = xp.zeros((C, stop - start, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    xpad[:, :, top:top + H, left:left + W] = x[start:stop].transpose(1, 0, 2, 3)
    return xpad


def _tiles_1d(a, axis, t):
    """The four strided slices a[..., i:i + 2t:2, ...] (i = 0..3) along ``axis``: element i of every tile."""
    index = [slice(None)] * a.ndim
    views = []
    for i in range(4):
        index[axis] = slice(i, i + 2 * t, 2)
        views.append(a[tuple(index)])
    return views


def _bt_1d(d, out):
    """out[k] = sum_i B^T[k, i] d[i] for the four slices d (B^T's rows written out)."""
    xp = get_array_module(d[0])
    xp.subtract(d[0], d[2], out=out[0])
    xp.add(d[1], d[2], out=out[1])
    xp.subtract(d[2], d[1], out=out[2])
    xp.subtract(d[1], d[3], out=out[3])


def _b_1d(dv, out):
    """out[i] = sum_k B^T[k, i] dv[k]: the adjoint of :func:`_bt_1d`."""
    xp = get_array_module(dv[0])
    xp.add(dv[1], dv[3], out=out[1])
    out[1] -= dv[2]
    xp.add(dv[1], dv[2], out=out[2])
    out[2] -= dv[0]
    out[0][...] = dv[0]
    xp.negative(dv[3], out=out[3])


def input_transform(xpad, th, tw):
    """V[k, l] = (B^T d B)[k, l] of every 4x4 tile d: (C, n, 2th+2, 2tw+2) -> (4, 4, C, n, th, tw)."""
    xp = get_array_module(xpad)
    C, n = xpad.shape[:2]
    rows = xp.empty((4, C, n, th, xpad.shape[3]), dtype=xpad.dtype)
    _bt_1d(_tiles_1d(xpad, 2, th), rows)  # B^T along the rows of each tile
    V = xp.empty((4, 4, C, n, th, tw), dtype=xpad.dtype)
    for k in range(4):  # ... then along its columns
        _bt_1d(_tiles_1d(rows[k], 3, tw), V[k])
    return V


def input_transform_backward(dV, th, tw):
    """The adjoint of :func:`input_transform`: each tile's B dV B^T added back where it was read."""
    xp = get_array_module(dV)
    C, n = dV.shape[2:4]
    drows = xp.zeros((4, C, n, th, 2 * tw + 2), dtype=dV.dtype)
    dcol = xp.empty((4, C, n, th, tw), dtype=dV.dtype)
    for k in range(4):
        _b_1d(dV[k], dcol)
        for j, view in enumerate(_tiles_1d(drows[k], 3, tw)):
            view += dcol[j]  # overlapping tiles: columns 2, 3 of one tile are columns 0, 1 of the next
    dxpad = xp.zeros((C, n, 2 * th + 2, 2 * tw + 2), dtype=dV.dtype)
    drow = xp.empty_like(drows)
    _b_1d(drows, drow)
    for i, view in enumerate(_tiles_1d(dxpad, 2, th)):
        view += drow[i]
    return dxpad


def output_transform(M, out):
    """out[n, o, 2ty + a, 2tx + b] = (A^T M A)[a, b] of each tile: M (4, 4, O, n, th, tw) -> out (n, O, 2th, 2tw)."""
    xp = get_array_module(M)
    s = xp.empty((2, 4) + M.shape[2:], dtype=M.dtype)  # A^T along k
    xp.add(M[0], M[1], out=s[0])
    s[0] += M[2]
    xp.subtract(M[1], M[2], out=s[1])
    s[1] -= M[3]
    for a in range(2):  # ... then along l, written straight into the output's strided tiles
        y0 = out[:, :, a::2, 0::2].transpose(1, 0, 2, 3)
        y1 = out[:, :, a::2, 1::2].transpose(1, 0, 2, 3)
        xp.add(s[a, 0], s[a, 1], out=y0)
        y0 += s[a, 2]
        xp.subtract(s[a, 1], s[a, 2], out=y1)
        y1 -= s[a, 3]


def output_transform_backward(dout_full):
    """dM = A dY A^T of each tile: the adjoint of :func:`output_transform`, (n, O, 2th, 2tw) -> (4, 4, O, n, th, tw)."""
    xp = get_array_module(dout_full)
    n, O, h2, w2 = dout_full.shape
    ds = xp.empty((2, 4, O, n, h2 // 2, w2 // 2), dtype=dout_full.dtype)
    for a in range(2):  # adjoint of the step along l
        d0 = dout_full[:, :, a::2, 0::2].transpose(1, 0, 2, 3)
        d1 = dout_full[:, :, a::2, 1::2].transpose(1, 0, 2, 3)
        ds[a, 0] = d0
        xp.add(d0, d1, out=ds[a, 1])
        xp.subtract(d0, d1, out=ds[a, 2])
        xp.negative(d1, out=ds[a, 3])
    dM = xp.empty((4,) + ds.shape[1:], dtype=ds.dtype)  # adjoint of the step along k
    dM[0] = ds[0]
    xp.add(ds[0], ds[1], out=dM[1])
    xp.subtract(ds[0], ds[1], out=dM[2])
    xp.negative(ds[1], out=dM[3])
    return dM


# ----------------------------------------------------------------------------- the kernels


def _gemm(a, b, groups, transpose_b=False):
    """The 16 products a[k, l] @ b[k, l] (@ b[k, l]^T with ``transpose_b``), per group.

    a (4, 4, P, Q) and b (4, 4, Q, R) (or (4, 4, R, Q)) hold ``groups`` blocks of rows along
    their third axis; block i of a multiplies block i of b: the result is (4, 4, P, R).
    """
    xp = get_array_module(a)
    a_g = a.reshape(16, groups, a.shape[2] // groups, a.shape[3])
    b_g = b.reshape(16, groups, b.shape[2] // groups, b.shape[3])
    if transpose_b:
        b_g = b_g.swapaxes(2, 3)  # BLAS reads the transpose in place
    out = xp.matmul(a_g, b_g)
    return out.reshape(4, 4, a.shape[2], out.shape[-1])


def winograd_conv2d_forward(x, w, b=None, padding=((0, 0), (0, 0)), groups=None):
    """out = conv(x, w) + b for a 3x3 kernel, stride 1, by Winograd F(2x2, 3x3). Returns (out, cache).

    Args:
        x (array): input (N, C, H, W).
        w (array): weight (O, C/groups, 3, 3).
        b (array or None): bias (O,).
        padding: int, (ph, pw) or ((top, bottom), (left, right)) zeros around x.
        groups (int or None): channel groups; None: C // w.shape[1] (checked against it).

    Returns ``out`` (N, O, H + top + bottom - 2, W + left + right - 2), in x's dtype, and the
    cache for :func:`winograd_conv2d_backward` (x, w, U and the geometry: no transformed input).
    """
    N, C, H, W, O, g, pads, Ho, Wo, th, tw = _geometry(x.shape, w.shape, padding)
    if groups is not None and int(groups) != g:
        raise ValueError(f"winograd_conv2d: groups={groups} does not fit input of shape {tuple(x.shape)} and "
                         f"weight of shape {tuple(w.shape)} (expected {g})")
    xp = get_array_module(x)
    U = weight_transform(w)
    out = xp.empty((N, O, 2 * th, 2 * tw), dtype=x.dtype)
    chunk = _chunk_size(C, th, tw, x.dtype.itemsize, N)
    for start in range(0, N, chunk):
        stop = min(N, start + chunk)
        V = input_transform(_padded_cn(x, pads, th, tw, start, stop), th, tw)
        M = _gemm(U, V.reshape(4, 4, C, -1), g)
        output_transform(M.reshape(4, 4, O, stop - start, th, tw), out[start:stop])
    if (2 * th, 2 * tw) != (Ho, Wo):  # odd output size: the last tile row/column was half outside
        out = xp.ascontiguousarray(out[:, :, :Ho, :Wo])
    if b is not None:
        out += b.reshape(1, O, 1, 1)
    return out, (x, w, U, b is not None, pads, g)


def winograd_conv2d_backward(dout, cache, need_dx=True, need_dw=True):
    """Gradients (dx, dw, db) of :func:`winograd_conv2d_forward` for the output gradient ``dout``.

    Args:
        dout (array): gradient of the output (N, O, Ho, Wo); not modified.
        cache: the forward's cache.
        need_dx (bool, default True): False skips the input gradient (returns None for dx).
        need_dw (bool, default True): False skips the weight gradient (returns None for dw).

    ``db`` is the sum of dout over (n, y, x), or None when the forward had no bias.
    """
    x, w, U, has_bias, pads, g = cache
    N, C, H, W, O, _, _, Ho, Wo, th, tw = _geometry(x.shape, w.shape, pads)
    xp = get_array_module(dout)
    if dout.shape != (N, O, Ho, Wo):
        raise ValueError(f"winograd_conv2d_backward: expected dout of shape {(N, O, Ho, Wo)}, got {tuple(dout.shape)}")
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if not (need_dx or need_dw):
        return None, None, db
    if (2 * th, 2 * tw) != (Ho, Wo):
        dout_full = xp.zeros((N, O, 2 * th, 2 * tw), dtype=dout.dtype)
        dout_full[:, :, :Ho, :Wo] = dout
    else:
        dout_full = dout  # only read
    (top, _), (left, _) = pads
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    dU = xp.zeros_like(U) if need_dw else None
    # U^T per group: (4, 4, O, Cg) -> (4, 4, C, Og), group-major rows like the input's channels
    Ut = U.reshape(4, 4, g, O // g, C // g).swapaxes(3, 4).reshape(4, 4, C, O // g) if need_dx else None
    chunk = _chunk_size(C, th, tw, x.dtype.itemsize, N)
    for start in range(0, N, chunk):
        stop = min(N, start + chunk)
        dM = output_transform_backward(dout_full[start:stop]).reshape(4, 4, O, -1)
        if need_dw:
            V = input_transform(_padded_cn(x, pads, th, tw, start, stop), th, tw).reshape(4, 4, C, -1)
            dU += _gemm(dM, V, g, transpose_b=True)
        if need_dx:
            dV = _gemm(Ut, dM, g).reshape(4, 4, C, stop - start, th, tw)
            dxpad = input_transform_backward(dV, th, tw)
            dx[start:stop] = dxpad[:, :, top:top + H, left:left + W].transpose(1, 0, 2, 3)
    dw = weight_transform_backward(dU) if need_dw else None
    return dx, dw, db


# ----------------------------------------------------------------------------- the loop twin


def winograd_conv2d_naive(x, w, b=None, padding=((0, 0), (0, 0))):
    """Winograd F(2x2, 3x3) tile by tile, with Python loops over samples and tiles (tests only).

    Each output tile is A^T [sum_c (G w[o, c] G^T) * (B^T d_c B)] A of its 4x4 input tiles d_c,
    with exactly the matrices of the module docstring; groups = C // w.shape[1].
    """
    N, C, H, W, O, g, pads, Ho, Wo, th, tw = _geometry(x.shape, w.shape, padding)
    (top, _), (left, _) = pads
    xpad = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=np.float64)
    xpad[:, :, top:top + H, left:left + W] = x
    Cg, Og = C // g, O // g
    U = np.einsum("ki,ocij,lj->ockl", G, np.asarray(w, dtype=np.float64), G)  # (O, Cg, 4, 4)
    out = np.zeros((N, O, 2 * th, 2 * tw))
    for n in range(N):
        for ty in range(th):
            for tx in range(tw):
                d = xpad[n, :, 2 * ty:2 * ty + 4, 2 * tx:2 * tx + 4]  # (C, 4, 4)
                V = B_T @ d @ B_T.T
                for o in range(O):
                    group = o // Og
                    M = (U[o] * V[group * Cg:(group + 1) * Cg]).sum(axis=0)
                    out[n, o, 2 * ty:2 * ty + 2, 2 * tx:2 * tx + 2] = A_T @ M @ A_T.T
    out = out[:, :, :Ho, :Wo]
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64).reshape(1, O, 1, 1)
    return out.astype(x.dtype)
