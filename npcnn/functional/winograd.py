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

B and A hold only 0 and +-1, so their transforms are written out as additions (rows of a tile
first, then its columns) instead of matrix products; no Python loop runs over pixels or tiles,
only over the 4 rows / columns of a tile. The padded input is first split into its four
polyphase planes (even / odd rows x even / odd columns, :func:`_split_input`): tiles step by 2,
so in those planes the rows and columns of every tile are the planes at offsets 0 and 1, and
each addition runs over long contiguous runs of memory instead of stride-2 slices. The batch
is processed in chunks whose V stays near ``CHUNK_TARGET_BYTES`` (1 MB, cache-sized); on NumPy
the chunks are shared by ``npcnn.threads.get_num_workers()`` threads (``npcnn.threads.run_shared``:
the element-wise transforms then run on all cores, not only the GEMMs). V is rebuilt in backward
from x rather than kept, so a network holds no transformed inputs between its passes (as
im2col's columns).

Float32 error: the transforms add and halve numbers of one magnitude, so F(2x2, 3x3) keeps the
relative error of a direct float32 convolution (measured 2e-7 to 7e-7 of the output's scale for
out, dx and dW, 16 to 256 channels, the same as im2col's; the tests assert < 1e-5). Larger tiles
need the fractions 1/4, 1/6, 1/24 and the multipliers 4, 5, 8: F(4x4, 3x3)'s forward alone
measured 5e-6 (16 channels), 9e-6 (64) and 1.4e-5 (256) of the scale, over the 1e-5 allowed,
which is why only F(2x2, 3x3) is here.
"""

import numpy as np

from ..backend import get_array_module, scratch
from ..threads import chunk_ranges, contiguous_runs, kernel_workers, run_shared

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
G_KRON = np.kron(G, G)  # (16, 9): row 4k + l, column 3i + j holds G[k, i] G[l, j]

# Samples per chunk are chosen so that a chunk's transformed input V stays near this size: the
# work arrays of a chunk (V, M and their halves) then stay in a core's L2 cache between the
# transforms and the GEMMs. Measured on a 2 MB-L2 Xeon, 64x64 channels on 32x32: 1 MB chunks
# 1.3x faster than 8 MB ones (forward and backward); 16 channels: 1.5x. With many channels a
# sample's V alone passes 1 MB: then at least CHUNK_MIN_COLUMNS tiles keep the GEMMs wide
# enough to run at BLAS speed (256 channels on 8x8: 1.2x faster than one sample per chunk).
CHUNK_TARGET_BYTES = 2 ** 20
CHUNK_MIN_COLUMNS = 512
# Cap of the per-run partial weight gradients dU of one backward call.
DU_PARTS_BYTES = 32 * 2 ** 20


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
    """Samples per chunk: V of a chunk (16 C th (tw + 1) entries per sample) near
    CHUNK_TARGET_BYTES, but at least CHUNK_MIN_COLUMNS tiles (GEMM columns) per chunk."""
    by_bytes = CHUNK_TARGET_BYTES // (16 * C * th * (tw + 1) * itemsize)
    by_columns = -(-CHUNK_MIN_COLUMNS // (th * (tw + 1)))
    return max(1, min(N, max(by_bytes, by_columns)))


# ----------------------------------------------------------------------------- transforms


def weight_transform(w):
    """U = G w G^T for every (o, c): (O, Cg, 3, 3) -> (4, 4, O, Cg), in w's dtype."""
    xp = get_array_module(w)
    O, Cg = w.shape[:2]
    # U[k, l] = sum_ij G[k, i] G[l, j] w[., ., i, j]: one (16 x 9) @ (9 x O Cg) product with G (x) G
    return (xp.asarray(G_KRON, dtype=w.dtype) @ w.reshape(O * Cg, 9).T).reshape(4, 4, O, Cg)


def weight_transform_backward(dU):
    """dw = G^T dU G: the adjoint of :func:`weight_transform`, (4, 4, O, Cg) -> (O, Cg, 3, 3)."""
    xp = get_array_module(dU)
    O, Cg = dU.shape[2:]
    return (dU.reshape(16, O * Cg).T @ xp.asarray(G_KRON, dtype=dU.dtype)).reshape(O, Cg, 3, 3)


def _split_input(x, pads, th, tw, start, stop, buf=None):
    """Samples start:stop of x, zero-padded to (2th + 2, 2tw + 2), as four polyphase planes.

    Returns Q (2, 2, C, n, th + 1, tw + 1) with Q[pr, pc, c, n, r, j] = xpad[n, c, 2r + pr, 2j + pc]:
    the padded input's (even, odd) rows times (even, odd) columns. Channel-major, so that every
    transform below writes the (C, n * tiles) blocks the GEMMs multiply. In these planes row
    2ty + i of tile ty is row ty + i // 2 of plane i % 2 (and likewise for columns): the four
    rows or columns of every tile are the planes at offsets 0 and 1, so the transforms run on
    long contiguous runs of memory instead of stride-2 slices (measured 3-8x faster per element).
    """
    xp = get_array_module(x)
    (top, _), (left, _) = pads
    C, H, W = x.shape[1:]
    # 2th + 2 >= Ho + 2 = top + H + bottom: x always fits (an odd Ho adds one zero row below)
    shape = (2, 2, C, stop - start, th + 1, tw + 1)
    planes = xp.zeros(shape, dtype=x.dtype) if buf is None else buf.get("planes", shape, zeros=True)
    for pr, (r0, rn, ra) in enumerate(_phases(top, H)):
        for pc, (c0, cn, ca) in enumerate(_phases(left, W)):
            planes[pr, pc, :, :, ra:ra + rn, ca:ca + cn] = x[start:stop, :, r0::2, c0::2].transpose(1, 0, 2, 3)
    return planes


def _phases(before, size):
    """For padded index parity 0 and 1: (first index of x with it, how many, plane index of that one)."""
    phases = []
    for parity in range(2):
        first = (parity - before) % 2
        phases.append((first, len(range(first, size, 2)), (before + first) // 2))
    return phases


def _join_input_gradient(dplanes, pads, dx):
    """The adjoint of :func:`_split_input`: dx[n, c, h, w] = the gradient at padded
    (top + h, left + w) in the polyphase planes, written into ``dx`` (n, C, H, W)."""
    (top, _), (left, _) = pads
    H, W = dx.shape[2:]
    for pr, (r0, rn, ra) in enumerate(_phases(top, H)):
        for pc, (c0, cn, ca) in enumerate(_phases(left, W)):
            dx[:, :, r0::2, c0::2] = dplanes[pr, pc, :, :, ra:ra + rn, ca:ca + cn].transpose(1, 0, 2, 3)


def _rows(planes, th):
    """Row i = 0..3 of every tile, for one column parity: planes (2, C, n, th + 1, tw + 1) ->
    four (C, n, th, tw + 1) views (rows offset 0 and 1 of the even and odd row planes)."""
    return [planes[i % 2, :, :, i // 2:i // 2 + th] for i in range(4)]


def _shifted(planes):
    """Column j = 0..3 of every tile, as flat views of the parity planes (E, O) at offsets 0, 1.

    planes (2, ..., tw + 1) contiguous: returns four 1-D views of length L - 1 (L = the size of
    one plane), d_j[q] = column j of the tile whose first column is at flat position q. The
    position q = tw of each row (the last parity column) starts no tile: its results are
    garbage that the callers never use (see the note below).
    """
    even, odd = planes[0].reshape(-1), planes[1].reshape(-1)
    return [even[:-1], odd[:-1], even[1:], odd[1:]]


# Every tile row of V, M and dM has tw + 1 entries: tiles 0 .. tw-1 and, at tx = tw, one
# garbage column the flat column transform produces. It is multiplied by the GEMMs (1 / (tw + 1)
# extra work) but never reaches an output: the forward drops it, and the backward sets it to
# zero in dM, so it adds nothing to dU and leaves zeros in dV.


def _bt_1d(d, out):
    """out[k] = sum_i B^T[k, i] d[i] for four arrays d (B^T's rows written out)."""
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


def _at_1d(m, out):
    """out[a] = sum_k A^T[a, k] m[k] (A^T's two rows written out)."""
    xp = get_array_module(m[0])
    xp.add(m[0], m[1], out=out[0])
    out[0] += m[2]
    xp.subtract(m[1], m[2], out=out[1])
    out[1] -= m[3]


def _a_1d(dy, out):
    """out[k] = sum_a A^T[a, k] dy[a]: the adjoint of :func:`_at_1d`."""
    xp = get_array_module(dy[0])
    out[0][...] = dy[0]
    xp.add(dy[0], dy[1], out=out[1])
    xp.subtract(dy[0], dy[1], out=out[2])
    xp.negative(dy[1], out=out[3])


class _Buffers:
    """Work arrays reused by every chunk of one call (one thread's).

    A fresh large NumPy array is new memory from the OS, page-faulted in on first touch, which
    costs as much as the additions that fill it; the chunks therefore share one flat buffer per
    name, viewed in the shape asked for (the first chunk is the largest), taken from the
    thread's :func:`npcnn.backend.scratch` memory so that the next call reuses it too.
    """

    def __init__(self, xp, dtype):
        self.xp, self.dtype, self.flat, self.shapes = xp, dtype, {}, {}

    def get(self, name, shape, zeros=False):
        """A ``shape`` view of buffer ``name``. ``zeros``: zero wherever no caller wrote since the
        view of this shape was last handed out (callers write the same entries every time)."""
        size = 1
        for s in shape:
            size *= int(s)
        if name not in self.flat or self.flat[name].size < size:
            self.flat[name] = scratch(self.xp, "winograd." + name, (size,), self.dtype)
            if zeros:
                self.flat[name][...] = 0
        elif zeros and self.shapes.get(name) != tuple(shape):
            self.flat[name][:size] = 0
        self.shapes[name] = tuple(shape)
        return self.flat[name][:size].reshape(shape)


def _buffers(a, buf):
    return buf if buf is not None else _Buffers(get_array_module(a), a.dtype)


def input_transform(planes, th, tw, buf=None):
    """V[k, l] = (B^T d B)[k, l] of every 4x4 tile d, from the polyphase planes of :func:`_split_input`.

    (2, 2, C, n, th + 1, tw + 1) -> V (4, 4, C, n * th * (tw + 1)) (with the garbage column).
    ``buf``: a :class:`_Buffers` to take the work arrays from (None: fresh arrays).
    """
    buf = _buffers(planes, buf)
    C, n = planes.shape[2:4]
    rows = buf.get("rows", (4, 2, C, n, th, tw + 1))
    for parity in range(2):  # B^T along the rows of each tile
        _bt_1d(_rows(planes[:, parity], th), rows[:, parity])
    V = buf.get("V", (4, 4, C * n * th * (tw + 1)))
    for k in range(4):  # ... then along its columns (flat, offsets 0 and 1)
        _bt_1d(_shifted(rows[k]), V[k, :, :-1])
    V[:, :, -1] = 0  # the very last garbage entry, past the end of the shifted views
    return V.reshape(4, 4, C, -1)


def input_transform_backward(dV, th, tw, buf=None):
    """The adjoint of :func:`input_transform`: dV (4, 4, C, n * th * (tw + 1)), zero in the
    garbage column -> the gradient of the polyphase planes (2, 2, C, n, th + 1, tw + 1), each
    tile's B dV B^T added back where it was read (neighbouring tiles overlap by two rows/columns)."""
    buf = _buffers(dV, buf)
    C = dV.shape[2]
    n = dV.shape[3] // (th * (tw + 1))
    drows = buf.get("drows", (4, 2, C * n * th * (tw + 1)))
    dcol = buf.get("dcol", (4, C * n * th * (tw + 1)))
    for k in range(4):
        _b_1d(dV[k].reshape(4, -1), dcol)
        # columns 0, 1 of a tile: offset 0 of the even / odd plane; columns 2, 3: offset 1
        drows[k, 0] = dcol[0]
        drows[k, 1] = dcol[1]
        drows[k, 0, 1:] += dcol[2, :-1]
        drows[k, 1, 1:] += dcol[3, :-1]
    drow = buf.get("drow", (4, 2, C, n, th, tw + 1))
    _b_1d(drows.reshape(4, 2, C, n, th, tw + 1), drow)
    dplanes = buf.get("dplanes", (2, 2, C, n, th + 1, tw + 1))
    for pr in range(2):  # rows 0, 1 of a tile: offset 0 of the even / odd row plane; rows 2, 3: offset 1
        dplanes[pr, :, :, :, :th] = drow[pr]
        dplanes[pr, :, :, :, th] = 0
        dplanes[pr, :, :, :, 1:] += drow[pr + 2]
    return dplanes


def output_transform(M, out, th, tw, buf=None):
    """out[n, o, 2ty + a, 2tx + b] = (A^T M A)[a, b] of each tile.

    M (4, 4, O, n * th * (tw + 1)) -> out (n, O, 2th, 2tw), written in place (garbage dropped).
    """
    buf = _buffers(M, buf)
    s = buf.get("s", (2,) + M.shape[1:])
    _at_1d(M, s)  # A^T along the tile rows
    y = buf.get("y", (2, 2) + M.shape[2:])
    for a in range(2):  # ... and along the columns
        _at_1d(s[a], y[a])
    n = out.shape[0]
    y = y.reshape(2, 2, M.shape[2], n, th, tw + 1)
    for a in range(2):
        for b in range(2):
            out[:, :, a::2, b::2] = y[a, b, :, :, :, :tw].transpose(1, 0, 2, 3)


def output_transform_backward(dout_full, th, tw, buf=None):
    """dM = A dY A^T of each tile (the adjoint of :func:`output_transform`), zero in the garbage column.

    dout_full (n, O, 2th, 2tw) -> dM (4, 4, O, n * th * (tw + 1)).
    """
    buf = _buffers(dout_full, buf)
    n, O = dout_full.shape[:2]
    dy = buf.get("dy", (2, 2, O, n, th, tw + 1), zeros=True)  # the garbage column stays zero
    for a in range(2):
        for b in range(2):
            dy[a, b, :, :, :, :tw] = dout_full[:, :, a::2, b::2].transpose(1, 0, 2, 3)
    dy = dy.reshape(2, 2, O, -1)
    ds = buf.get("ds", (2, 4) + dy.shape[2:])
    for a in range(2):
        _a_1d(dy[a], ds[a])
    dM = buf.get("dM", (4,) + ds.shape[1:])
    _a_1d(ds, dM)
    return dM


# ----------------------------------------------------------------------------- the kernels


def _gemm(a, b, groups, transpose_b=False, out=None):
    """The 16 products a[k, l] @ b[k, l] (@ b[k, l]^T with ``transpose_b``), per group.

    a (4, 4, P, Q) and b (4, 4, Q, R) (or (4, 4, R, Q)) hold ``groups`` blocks of rows along
    their third axis; block i of a multiplies block i of b: the result is (4, 4, P, R), written
    into ``out`` (contiguous) when given.
    """
    xp = get_array_module(a)
    a_g = a.reshape(16, groups, a.shape[2] // groups, a.shape[3])
    b_g = b.reshape(16, groups, b.shape[2] // groups, b.shape[3])
    if transpose_b:
        b_g = b_g.swapaxes(2, 3)  # BLAS reads the transpose in place
    shape = (4, 4, a.shape[2], b_g.shape[-1])
    if out is None:
        return xp.matmul(a_g, b_g).reshape(shape)
    xp.matmul(a_g, b_g, out=out.reshape(a_g.shape[:-1] + b_g.shape[-1:]))
    return out.reshape(shape)


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

    def run(chunks):
        buf = _Buffers(xp, x.dtype)
        for start, stop in chunks:
            V = input_transform(_split_input(x, pads, th, tw, start, stop, buf), th, tw, buf)
            M = _gemm(U, V, g, out=buf.get("M", (4, 4, O, V.shape[3])))
            output_transform(M, out[start:stop], th, tw, buf)

    run_shared(run, chunk_ranges(N, _chunk_size(C, th, tw, x.dtype.itemsize, N)), kernel_workers(xp))
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
    dx = xp.empty(x.shape, dtype=x.dtype) if need_dx else None
    # U^T per group: (4, 4, O, Cg) -> (4, 4, C, Og), group-major rows like the input's channels
    Ut = U.reshape(4, 4, g, O // g, C // g).swapaxes(3, 4).reshape(4, 4, C, O // g) if need_dx else None

    # The chunks go out in runs of consecutive chunks with one dU per run, summed in run order at
    # the end: the same answer whichever thread took which run. A run is one chunk unless the
    # weight is so large that the partial dUs would pass DU_PARTS_BYTES.
    chunks = chunk_ranges(N, _chunk_size(C, th, tw, x.dtype.itemsize, N))
    runs = contiguous_runs(chunks, DU_PARTS_BYTES // (U.size * U.dtype.itemsize))
    dU_parts = xp.empty((len(runs),) + U.shape, dtype=U.dtype) if need_dw else None

    def one_chunk(start, stop, dU, buf):  # dU (when needed) and dx of samples [start, stop)
        dM = output_transform_backward(dout_full[start:stop], th, tw, buf)
        if need_dw:
            V = input_transform(_split_input(x, pads, th, tw, start, stop, buf), th, tw, buf)
            _gemm(dM, V, g, transpose_b=True, out=dU)
        if need_dx:
            dV = _gemm(Ut, dM, g, out=buf.get("dV", (4, 4, C, dM.shape[3])))
            _join_input_gradient(input_transform_backward(dV, th, tw, buf), pads, dx[start:stop])

    def run(queue):  # one thread: its own buffers, the runs it draws from the shared queue
        buf = _Buffers(xp, x.dtype)
        for k, run_chunks in queue:
            for i, (start, stop) in enumerate(run_chunks):
                first = need_dw and i == 0
                one_chunk(start, stop, dU_parts[k] if first else buf.get("dU", U.shape), buf)
                if need_dw and i > 0:
                    dU_parts[k] += buf.get("dU", U.shape)

    run_shared(run, list(enumerate(runs)), kernel_workers(xp))
    dw = weight_transform_backward(dU_parts.sum(axis=0)) if need_dw else None
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
