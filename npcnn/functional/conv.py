"""Convolution kernels: im2col + GEMM, the algorithm dispatch, and the loop twins.

``conv2d_forward(..., algo=, padding_mode=)`` is the one entry point the layers call: it pads
(padding modes other than zeros, via ``functional/padding.py``), picks the algorithm
(:func:`choose_algorithm`: "im2col" here, "fft" in ``functional/conv_fft.py``, "direct" = the loop
twin :func:`conv2d_naive`) and returns a :class:`ConvCache` tagged with the algorithm that ran;
``conv2d_backward`` dispatches on that tag. ``conv1d_*`` are the same on an (N, C, 1, L) view.
Shapes, sizes and argument checks are in ``functional/geometry.py``.

A 2-D convolution (cross-correlation, as in every deep learning library) with zero padding
``((top, bottom), (left, right))``, stride ``(sh, sw)``, dilation ``(dh, dw)`` and ``groups``:

    out[n, o, y, x] = b[o] + sum_{c in group(o), i, j} xpad[n, c, sh*y + dh*i, sw*x + dw*j] * w[o, c, i, j]

Shapes: x (N, C, H, W), w (O, C/groups, kh, kw), b (O,), out (N, O, Ho, Wo) with

    Ho = floor((H + top + bottom - dh*(kh - 1) - 1) / sh) + 1        (and Wo likewise)

im2col turns this into one matrix product per group. The column matrix holds every input
window as a column,

    cols[(c, i, j), (n, y, x)] = xpad[n, c, sh*y + dh*i, sw*x + dw*j]          (C*kh*kw, N*Ho*Wo)

built by copying a strided *view* of the padded input (no Python loop over pixels), so

    out = W @ cols               W = w.reshape(O, C*kh*kw)            (forward, one GEMM)
    dW  = dout @ cols^T          dout as (O, N*Ho*Wo)                  (weight gradient, one GEMM)
    dcols = W^T @ dout                                                 (column gradient, one GEMM)
    dx  = col2im(dcols)          adds each column entry back to the pixel it was copied from
    db  = sum over n, y, x of dout

The layout (C*kh*kw, N*Ho*Wo) keeps the large matrix contiguous and un-transposed in all three
GEMMs; only the small output / dout (O rows instead of C*kh*kw) is transposed between (N, O, .)
and (O, N, .). col2im loops over the kh*kw kernel offsets (never over pixels) and adds a strided
slice of the gradient per offset. The weight gradient is formed as dW^T = cols @ dout^T (the
orientation BLAS runs faster), and for a first layer's tiny dW one sample at a time.

At stride 1 with "same" padding the input gradient is itself a convolution, of dout with the
flipped, transposed kernel (:func:`_input_gradient_by_convolution`): one more im2col and a GEMM
with C output rows, measured 1.3-1.45x faster than dcols + col2im, so it is used there.

Three refinements keep the copies cheap:

* Chunks. The column matrix of a whole batch can be huge (256 x 3 x 224 x 224 with a 7x7
  kernel: 7.4 GB), so the batch is processed in chunks whose column buffer stays under
  ``max_buffer_bytes`` (module default ``DEFAULT_MAX_BUFFER_BYTES``, changed with
  :func:`set_max_buffer_bytes`; a single sample over the cap is split into bands of output rows,
  each a convolution of the input rows it reads) and near ``CHUNK_TARGET_BYTES`` (8 MB, so that a chunk's columns
  stay in cache between im2col, the GEMMs and col2im). Each thread has one column buffer and one
  padded-input buffer, reused by every chunk it takes; backward reuses the column buffer for
  dcols. Columns are rebuilt in backward rather than kept from forward, so a network holds no
  column buffers between its forward and backward passes.
* Threads. The chunks are shared by ``npcnn.threads.get_num_workers()`` threads
  (``npcnn.threads.run_shared``), each with its own buffers (``npcnn.backend.scratch``, kept
  between calls) and one BLAS thread: the copies run on all cores, not only the GEMMs. Each
  chunk's weight gradient is kept apart and they are summed in chunk order, and the chunks
  depend only on the shapes (at least ``MIN_CHUNKS``), so the result is the same bits on any
  number of threads.
* The flat layout at stride 1 (see ``_row_width``): each output row gets Wp positions instead
  of Wo, which makes every kernel offset's columns one contiguous run of the flattened padded
  image, so im2col and col2im move long runs instead of many short rows.

1x1 convolutions with stride 1 and no padding need no columns at all: the input already is the
column matrix of each sample, so they are a (batched) matmul.

Groups split C and O into ``groups`` equal parts; the GEMMs become batched matmuls over groups.
Conv1d reuses the 2-D kernels with H = 1; the transposed convolution is the adjoint of
convolution: its forward is conv2d's input gradient, its backward is conv2d's forward (for dx)
and conv2d's weight gradient (for dw).
"""

from collections import namedtuple

from ..backend import as_strided, get_array_module, scratch
from ..threads import chunk_ranges, contiguous_runs, kernel_workers, run_shared
from . import conv_fft, winograd
from .geometry import as_tuple, conv_geometry, conv_output_size, conv_transpose_output_size, pair, padding_pairs
from .padding import pad_backward, pad_forward

DEFAULT_MAX_BUFFER_BYTES = 256 * 2 ** 20

_settings = {"max_buffer_bytes": DEFAULT_MAX_BUFFER_BYTES}


def set_max_buffer_bytes(nbytes):
    """Cap (bytes) of the im2col column buffer used when a kernel is not given its own cap."""
    nbytes = int(nbytes)
    if nbytes <= 0:
        raise ValueError(f"max_buffer_bytes must be positive, got {nbytes}")
    _settings["max_buffer_bytes"] = nbytes


def get_max_buffer_bytes():
    """The current default cap of the im2col column buffer, in bytes."""
    return _settings["max_buffer_bytes"]


# ----------------------------------------------------------------------------- geometry
# (shapes, sizes and checks live in functional/geometry.py; here only what im2col adds)


def _is_pointwise(g):
    """1x1 kernel, stride 1, no padding: the input already is the column matrix."""
    return (g.kh, g.kw, g.stride, g.Ho, g.Wo) == (1, 1, (1, 1), g.H, g.W) and g.pads == ((0, 0), (0, 0))


def _padded_size(g):
    return g.H + sum(g.pads[0]), g.W + sum(g.pads[1])


def _is_flat(g):
    """Use the flat column layout (stride 1, and at most 50% wasted positions; see _row_width)."""
    Wp = _padded_size(g)[1]
    return g.stride == (1, 1) and 2 * Wp <= 3 * g.Wo


def _row_width(g):
    """Positions per output row in the column matrix: Wo, or Wp in the flat layout.

    At stride 1, output (y, x) with kernel offset (i, j) reads the flattened padded image at
        (y + dh i) Wp + (x + dw j)  =  [dh i Wp + dw j]  +  [y Wp + x],
    so when every output row is given Wp positions (x = 0 .. Wp-1), the Ho*Wp positions of one
    kernel offset are ONE contiguous run of the flattened image: im2col copies and col2im adds
    long runs instead of Ho short rows (about 1.5x faster on 32x32 images). The Wp - Wo extra
    positions per row are wasted GEMM columns: their outputs are dropped and their output
    gradients set to zero, so they contribute nothing.
    """
    return _padded_size(g)[1] if _is_flat(g) else g.Wo


def column_bytes_per_sample(g, itemsize):
    """Bytes of im2col columns one sample needs: C*kh*kw x (Ho * row width) entries."""
    return g.C * g.kh * g.kw * g.Ho * _row_width(g) * itemsize


# Chunks are kept near this size even when the cap allows more: a chunk's columns then stay in
# the CPU caches between im2col, the GEMMs and col2im (measured: a 64x64x32x32 3x3 layer runs
# ~25% faster forward+backward with 8 MB chunks than with one 150 MB buffer), and the buffer's
# pages are not faulted in afresh on every call.
CHUNK_TARGET_BYTES = 8 * 2 ** 20
# ... and a batch is cut into at least this many chunks (when it has that many samples), so that
# the threads sharing them (npcnn.threads.run_shared) stay busy to the end: a 128-sample LeNet-5
# layer otherwise fits into two unequal chunks. A constant, not the thread count: the chunks (and
# so the order the weight gradient is summed in) are the same on every machine.
MIN_CHUNKS = 8


def chunk_plan(g, itemsize, max_buffer_bytes=None):
    """(samples per chunk, column buffer bytes) for a convolution of geometry ``g``.

    As many samples as fit under min(cap, CHUNK_TARGET_BYTES), at most ceil(N / MIN_CHUNKS),
    at least one (a single sample
    larger than that is processed alone; one larger than the cap itself is split into bands of
    output rows, see :func:`row_bands`). Pointwise convolutions use no column buffer.
    """
    if _is_pointwise(g):
        return g.N, 0
    cap = get_max_buffer_bytes() if max_buffer_bytes is None else int(max_buffer_bytes)
    per_sample = column_bytes_per_sample(g, itemsize)
    chunk = max(1, min(-(-g.N // MIN_CHUNKS), min(cap, CHUNK_TARGET_BYTES) // per_sample))
    return chunk, chunk * per_sample


def row_bands(g, itemsize, max_buffer_bytes=None):
    """None when one sample's columns fit under the cap; else the output-row bands
    [(y0, y1), ...] whose columns do (each band then is a convolution of its own).

    A band of r output rows needs C*kh*kw * r * row width entries (a band keeps the layout, flat
    or not, of the whole sample). If a single output row is over the cap, a MemoryError says how
    many bytes it needs and what the cap is, before anything is allocated."""
    cap = get_max_buffer_bytes() if max_buffer_bytes is None else int(max_buffer_bytes)
    if _is_pointwise(g) or column_bytes_per_sample(g, itemsize) <= cap:
        return None
    row = g.C * g.kh * g.kw * _row_width(g) * itemsize
    rows = cap // row
    if rows < 1:
        raise MemoryError(f"conv2d: one output row needs {row:,} bytes of im2col columns (C*kh*kw*width = "
                          f"{g.C}*{g.kh}*{g.kw}*{_row_width(g)} entries), more than the column buffer cap "
                          f"of {cap:,} bytes; raise it with npcnn.functional.conv.set_max_buffer_bytes")
    return [(y0, min(g.Ho, y0 + rows)) for y0 in range(0, g.Ho, rows)]


def _band(g, y0, y1):
    """(geometry, row slice of the padded input) of output rows [y0, y1) of one sample: a
    convolution without padding of the rows those windows read."""
    rows = g.stride[0] * (y1 - 1 - y0) + g.dilation[0] * (g.kh - 1) + 1
    start = g.stride[0] * y0
    band = g._replace(N=1, H=rows, W=_padded_size(g)[1], Ho=y1 - y0, pads=((0, 0), (0, 0)))
    return band, slice(start, start + rows)


def _output_banded(x, w, b, g, bands, max_buffer_bytes):
    """_output one sample and one band of output rows at a time (a sample too large for the cap)."""
    xp = get_array_module(x)
    out = xp.empty((g.N, g.O, g.Ho, g.Wo), dtype=x.dtype)
    for n in range(g.N):
        xpad = _pad(x[n:n + 1], g)
        for y0, y1 in bands:
            band, rows = _band(g, y0, y1)
            out[n:n + 1, :, y0:y1] = _output(xpad[:, :, rows], w, b, band, max_buffer_bytes)
    return out


def _gradients_banded(dout, x, w, g, bands, max_buffer_bytes, need_dx, need_dw):
    """_gradients one sample and one band of output rows at a time; dx bands overlap, so they are
    added into the sample's padded gradient."""
    xp = get_array_module(dout)
    (top, _), (left, _) = g.pads
    dx = xp.empty((g.N, g.C, g.H, g.W), dtype=dout.dtype) if need_dx else None
    dw = xp.zeros((g.O, g.C // g.groups, g.kh, g.kw), dtype=dout.dtype) if need_dw else None
    for n in range(g.N):
        xpad = _pad(x[n:n + 1], g) if need_dw else None
        dxpad = xp.zeros((1, g.C) + _padded_size(g), dtype=dout.dtype) if need_dx else None
        for y0, y1 in bands:
            band, rows = _band(g, y0, y1)
            dx_band, dw_band = _gradients(dout[n:n + 1, :, y0:y1], None if xpad is None else xpad[:, :, rows], w,
                                          band, max_buffer_bytes, need_dx, need_dw)
            if need_dx:
                dxpad[:, :, rows] += dx_band
            if need_dw:
                dw += dw_band
        if need_dx:
            dx[n] = dxpad[0, :, top: top + g.H, left: left + g.W]
    return dx, dw


# Cap of the per-run partial weight gradients of one backward call (see _gradients).
DW_PARTS_BYTES = 32 * 2 ** 20
# dW per group at most this many entries (K x O/groups) is computed one sample at a time (see _gradients).
PER_SAMPLE_DW_ENTRIES = 1024
PER_SAMPLE_DW_MIN_POSITIONS = 256  # ... when a sample has at least this many column positions
# Input channels per group from which dx of a "same" stride-1 convolution is a convolution of dout.
DX_CONV_MIN_CHANNELS = 16




# ----------------------------------------------------------------------------- im2col / col2im


def _pad(x, g):
    """Zero-padded copy of x (or x itself when there is no padding)."""
    if g.pads == ((0, 0), (0, 0)):
        return x
    return get_array_module(x).pad(x, ((0, 0), (0, 0)) + g.pads)


def _padder(x, g, chunk, flat):
    """A function (n0, n1) -> padded x[n0:n1] (or x[n0:n1] itself when nothing is padded).

    Each chunk is copied into the interior of one reused zero-bordered buffer (cache-sized, and
    no padded copy of the whole batch); every thread makes a padder, so a buffer of its own.
    The flat layout adds a zero row at the bottom: its last wasted positions read up to
    dw*(kw-1) entries past the padded image.
    """
    if g.pads == ((0, 0), (0, 0)) and not flat:
        return lambda n0, n1: x[n0:n1]
    (top, _), (left, _) = g.pads
    Hp, Wp = _padded_size(g)
    buffer = scratch(get_array_module(x), "conv.pad", (chunk, g.C, Hp + int(flat), Wp), x.dtype)
    buffer[...] = 0  # the border; the interior is overwritten chunk by chunk

    def pad(n0, n1):
        buffer[: n1 - n0, :, top: top + g.H, left: left + g.W] = x[n0:n1]
        return buffer[: n1 - n0]

    return pad


def _im2col_into(xpad, g, buffer, flat):
    """Fill ``buffer`` with the columns of the samples in ``xpad``; return them as
    (groups, C/groups*kh*kw, n*Ho*row_width).

    The strided view indexes xpad[n, c, sh*y + dh*i, sw*x + dw*j] as [c, i, j, n, y, x]; one copy
    lays it out as the column matrix. In the flat layout (contiguous xpad with an extra row)
    (y, x) is the single index y*Wp + x.
    """
    xp = get_array_module(xpad)
    n = xpad.shape[0]
    sN, sC, sH, sW = xpad.strides
    (sh, sw), (dh, dw) = g.stride, g.dilation
    if flat:
        shape, strides = (g.C, g.kh, g.kw, n, g.Ho * xpad.shape[3]), (sC, dh * sH, dw * sW, sN, sW)
    else:
        shape, strides = (g.C, g.kh, g.kw, n, g.Ho, g.Wo), (sC, dh * sH, dw * sW, sN, sh * sH, sw * sW)
    windows = as_strided(xpad, shape, strides)
    size = g.C * g.kh * g.kw * n * shape[4] * (1 if flat else g.Wo)
    cols = buffer[:size].reshape(shape)
    xp.copyto(cols, windows)
    return cols.reshape(g.groups, g.C // g.groups * g.kh * g.kw, -1)


def _col2im_into(cols, g, dxpad, flat):
    """Add columns (C*kh*kw, n*Ho*row_width) back into the zeroed padded gradient ``dxpad``,
    laid out (C, n, Hp (+1 if flat), Wp): one strided slice-add per kernel offset (i, j)."""
    n, Wp = dxpad.shape[1], dxpad.shape[3]
    (sh, sw), (dh, dw) = g.stride, g.dilation
    if flat:  # offset (i, j) adds one contiguous run of Ho*Wp positions per (c, n)
        planes, run = dxpad.reshape(g.C, n, -1), g.Ho * Wp
        cols = cols.reshape(g.C, g.kh, g.kw, n, run)
        for i in range(g.kh):
            for j in range(g.kw):
                start = dh * i * Wp + dw * j
                planes[:, :, start: start + run] += cols[:, i, j]
        return
    cols = cols.reshape(g.C, g.kh, g.kw, n, g.Ho, g.Wo)
    for i in range(g.kh):
        rows = slice(dh * i, dh * i + sh * (g.Ho - 1) + 1, sh)
        for j in range(g.kw):
            dxpad[:, :, rows, dw * j: dw * j + sw * (g.Wo - 1) + 1: sw] += cols[:, i, j]


def im2col(x, kernel_size, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
    """Column matrix (C*kh*kw, N*Ho*Wo) of x (N, C, H, W): cols[(c,i,j), (n,y,x)] = xpad[n, c, sh*y+dh*i, sw*x+dw*j]."""
    kh, kw = pair(kernel_size, "im2col", "kernel_size")
    g = conv_geometry(x.shape, (1, x.shape[1], kh, kw), stride, padding, dilation, 1, layer="im2col")
    buffer = get_array_module(x).empty(g.C * kh * kw * g.N * g.Ho * g.Wo, dtype=x.dtype)
    return _im2col_into(_pad(x, g), g, buffer, flat=False).reshape(g.C * kh * kw, g.N * g.Ho * g.Wo)


def col2im(cols, x_shape, kernel_size, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)):
    """Adjoint of :func:`im2col`: sums each column entry into the pixel of x (shape x_shape) it came from."""
    xp = get_array_module(cols)
    kh, kw = pair(kernel_size, "col2im", "kernel_size")
    g = conv_geometry(x_shape, (1, x_shape[1], kh, kw), stride, padding, dilation, 1, layer="col2im")
    (top, _), (left, _) = g.pads
    dxpad = xp.zeros((g.C, g.N) + _padded_size(g), dtype=cols.dtype)
    _col2im_into(cols, g, dxpad, flat=False)
    return xp.ascontiguousarray(dxpad[:, :, top: top + g.H, left: left + g.W].transpose(1, 0, 2, 3))


# ----------------------------------------------------------------------------- the three products


def _output(x, w, b, g, max_buffer_bytes):
    """out = W @ cols + b, chunk by chunk: (N, O, Ho, Wo)."""
    xp = get_array_module(x)
    bands = row_bands(g, x.dtype.itemsize, max_buffer_bytes)
    if bands is not None:
        return _output_banded(x, w, b, g, bands, max_buffer_bytes)
    G = g.groups
    wg = w.reshape(G, g.O // G, -1)
    if _is_pointwise(g):
        x4 = x.reshape(g.N, G, g.C // G, g.H * g.W)
        out = xp.matmul(wg, x4).reshape(g.N, g.O, g.Ho, g.Wo)
        if b is not None:
            out += b.reshape(-1, 1, 1)  # out is a fresh array
        return out
    flat, Wr = _is_flat(g), _row_width(g)
    P = g.Ho * Wr
    chunk, nbytes = chunk_plan(g, x.dtype.itemsize, max_buffer_bytes)
    out = xp.empty((g.N, g.O, g.Ho, g.Wo), dtype=x.dtype)

    def run(queue):  # one thread: its own buffers, the chunks it draws from the shared queue
        pad = _padder(x, g, chunk, flat)
        buffer = scratch(xp, "conv.cols", (nbytes // x.dtype.itemsize,), x.dtype)
        result = scratch(xp, "conv.result", (g.O * chunk * P,), x.dtype)
        for n0, n1 in queue:
            n = n1 - n0
            cols = _im2col_into(pad(n0, n1), g, buffer, flat)
            res = result[: g.O * n * P].reshape(G, g.O // G, n * P)
            xp.matmul(wg, cols, out=res)
            res = res.reshape(g.O, n, g.Ho, Wr)[..., : g.Wo].transpose(1, 0, 2, 3)
            # (O, n, Ho, Wr) -> (n, O, Ho, Wo): the small transposed copy, dropping wasted
            # positions and adding the bias on the way
            if b is None:
                out[n0:n1] = res
            else:
                xp.add(res, b.reshape(-1, 1, 1), out=out[n0:n1])

    run_shared(run, chunk_ranges(g.N, chunk), kernel_workers(xp))
    return out


def _dx_pads(g):
    """Padding ((top, bottom), (left, right)) of the input gradient as a convolution of dout."""
    (top, bottom), (left, right) = g.pads
    reach_h, reach_w = g.dilation[0] * (g.kh - 1), g.dilation[1] * (g.kw - 1)
    return (reach_h - top, reach_h - bottom), (reach_w - left, reach_w - right)


def _dx_by_convolution(g):
    """Whether the input gradient is computed as a forward convolution of dout (see
    :func:`_input_gradient_by_convolution`): at stride 1, when that convolution pads dout no
    more than the forward padded x (a "same" convolution: 3x3 with padding 1, 5x5 with 2) and
    the layer has at least DX_CONV_MIN_CHANNELS input channels per group. Measured 1.3-1.45x
    faster than W^T dout + col2im there (16 to 64 channels, forward and backward on 2 threads);
    slower for a "valid" convolution (dout padded by kh - 1 all round) and for 1 input channel."""
    pads = _dx_pads(g)
    return (g.stride == (1, 1) and g.C // g.groups >= DX_CONV_MIN_CHANNELS
            and all(0 <= q <= p for qs, ps in zip(pads, g.pads) for q, p in zip(qs, ps)))


def _input_gradient_by_convolution(dout, w, g, max_buffer_bytes):
    """dx as the convolution of dout with the flipped, transposed kernel (stride 1):

        dx[n, c, h, w] = sum_{o in group(c), i, j} dpad[n, o, h + dh i, w + dw j] * w'[c, o, i, j],
        w'[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]   (per group),

    dout padded by dh (kh - 1) - top above (and likewise on every side, see _dx_pads): the
    adjoint of the forward, written as a forward, so it is one im2col and one GEMM whose output
    is small (C rows), instead of a GEMM with C*kh*kw rows and kh*kw slice-adds (col2im)."""
    G, (O, Cg, kh, kw) = g.groups, w.shape
    flipped = w[:, :, ::-1, ::-1].reshape(G, O // G, Cg, kh, kw).transpose(0, 2, 1, 3, 4)
    flipped = flipped.reshape(G * Cg, O // G, kh, kw)  # (C, O/groups, kh, kw), group-major as x's channels
    dg = conv_geometry(dout.shape, flipped.shape, (1, 1), _dx_pads(g), g.dilation, G, layer="conv2d backward")
    return _output(dout, flipped, None, dg, max_buffer_bytes)


def _gradients(dout, x, w, g, max_buffer_bytes, need_dx=True, need_dw=True):
    """(dx, dw) of out = conv(x, w) given dout (N, O, Ho, Wo); ``x`` may be None when only dx
    is needed, ``w`` may be None when only dw is needed."""
    xp = get_array_module(dout)
    bands = row_bands(g, dout.dtype.itemsize, max_buffer_bytes)
    if bands is not None:
        return _gradients_banded(dout, x, w, g, bands, max_buffer_bytes, need_dx, need_dw)
    G, dtype = g.groups, dout.dtype
    Og, Cg = g.O // G, g.C // G
    if _is_pointwise(g):
        d4 = dout.reshape(g.N, G, Og, g.H * g.W)
        dx = dw = None
        if need_dx:
            dx = xp.matmul(w.reshape(G, Og, Cg).transpose(0, 2, 1), d4).reshape(g.N, g.C, g.H, g.W)
        if need_dw:
            x4 = x.reshape(g.N, G, Cg, g.H * g.W)
            dw = xp.matmul(d4, x4.transpose(0, 1, 3, 2)).sum(axis=0).reshape(g.O, Cg, 1, 1)
        return dx, dw
    if need_dx and _dx_by_convolution(g):
        dx = _input_gradient_by_convolution(dout, w, g, max_buffer_bytes)
        return dx, (_gradients(dout, x, w, g, max_buffer_bytes, False, True)[1] if need_dw else None)
    flat, Wr = _is_flat(g), _row_width(g)
    P, K = g.Ho * Wr, Cg * g.kh * g.kw
    chunk, nbytes = chunk_plan(g, dtype.itemsize, max_buffer_bytes)
    (top, _), (left, _) = g.pads
    Hp, Wp = _padded_size(g)
    Hp += int(flat)
    wt = w.reshape(G, Og, -1).transpose(0, 2, 1) if need_dx else None
    dx = xp.empty((g.N, g.C, g.H, g.W), dtype=dtype) if need_dx else None
    # The chunks go out in runs of consecutive chunks with one weight gradient per run, summed in
    # run order at the end: the same answer whichever thread took which run. A run is one chunk
    # unless the weight is so large that the partial gradients would pass DW_PARTS_BYTES.
    # Each part is dW^T = cols @ dout^T, (K, O/groups) per group: BLAS runs this orientation of
    # the long-and-thin product 1.3-1.8x faster than dout @ cols^T (measured, 6 to 64 channels).
    # A first layer (1 to 3 input channels) has a tiny dW and a huge inner dimension n*P, which
    # OpenBLAS handles badly, and not at all on two threads at once: there one product per
    # sample, summed, measured 3-7x faster (LeNet-5's c1, a ResNet stem); elsewhere 1-1.6x slower.
    per_sample = K * Og <= PER_SAMPLE_DW_ENTRIES and P >= PER_SAMPLE_DW_MIN_POSITIONS
    runs = contiguous_runs(chunk_ranges(g.N, chunk), DW_PARTS_BYTES // (g.O * K * dtype.itemsize))
    dw_parts = xp.empty((len(runs), G, K, Og), dtype=dtype) if need_dw else None

    def run(queue):  # one thread: its own buffers, the runs it draws from the shared queue
        pad = _padder(x, g, chunk, flat) if need_dw else None
        buffer = scratch(xp, "conv.cols", (nbytes // dtype.itemsize,), dtype)
        dout_t = scratch(xp, "conv.result", (g.O * chunk * P,), dtype)
        dxpad = scratch(xp, "conv.dxpad", (g.C * chunk * Hp * Wp,), dtype) if need_dx else None
        partial = xp.empty((G, K, Og), dtype=dtype) if need_dw else None
        for k, run_chunks in queue:
            for i, (n0, n1) in enumerate(run_chunks):
                n = n1 - n0
                # dout of the chunk as (groups, O/groups, n*Ho*Wr): the small transposed copy,
                # with zero gradient for the wasted positions of the flat layout
                d = dout_t[: g.O * n * P].reshape(g.O, n, g.Ho, Wr)
                d[..., : g.Wo] = dout[n0:n1].transpose(1, 0, 2, 3)
                d[..., g.Wo:] = 0
                d = d.reshape(G, Og, n * P)
                if need_dw:
                    cols = _im2col_into(pad(n0, n1), g, buffer, flat)
                    target = dw_parts[k] if i == 0 else partial
                    if per_sample:  # (G, n, K, P) @ (G, n, P, Og), then the sum over the n samples
                        xp.matmul(cols.reshape(G, K, n, P).transpose(0, 2, 1, 3),
                                  d.reshape(G, Og, n, P).transpose(0, 2, 3, 1)).sum(axis=1, out=target)
                    else:
                        xp.matmul(cols, d.transpose(0, 2, 1), out=target)
                    if i > 0:
                        dw_parts[k] += partial
                if need_dx:
                    dcols = buffer[: g.C * g.kh * g.kw * n * P].reshape(G, -1, n * P)
                    xp.matmul(wt, d, out=dcols)
                    dpad = dxpad[: g.C * n * Hp * Wp].reshape(g.C, n, Hp, Wp)
                    dpad[...] = 0
                    _col2im_into(dcols, g, dpad, flat)
                    dx[n0:n1] = dpad[:, :, top: top + g.H, left: left + g.W].transpose(1, 0, 2, 3)

    run_shared(run, list(enumerate(runs)), kernel_workers(xp))
    dw = dw_parts.sum(axis=0).transpose(0, 2, 1).reshape(g.O, Cg, g.kh, g.kw) if need_dw else None
    return dx, dw


# ----------------------------------------------------------------------------- conv2d


ALGORITHMS = ("auto", "im2col", "fft", "winograd", "direct")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

ConvCache = namedtuple("ConvCache", "algo saved pad")
ConvCache.__doc__ = """The cache of conv2d_forward: ``algo`` (the algorithm that ran, "im2col", "fft",
"winograd" or "direct"), ``saved`` (that algorithm's own cache) and ``pad`` (pad_forward's cache for a padding mode
other than zeros, else None). conv2d_backward dispatches on ``algo``."""


def _is_finite(a):
    """True when every entry of ``a`` is finite (one pass over the array; a bool on the host)."""
    return bool(get_array_module(a).isfinite(a).all())


def choose_algorithm(algo, kernel_size, stride, dilation, groups, x=None, w=None):
    """The algorithm a convolution with these settings runs: ``algo`` unless it is "auto".

    "auto" decides on the settings:

    * FFT for kernels of 7x7 or more at stride 1, dilation 1, groups 1: its cost does not grow
      with the kernel area;
    * im2col otherwise, and whenever ``x`` or ``w`` (when given) holds an inf or NaN: the FFT
      adds and subtracts inputs, so a single inf becomes NaN in outputs where a direct sum
      gives inf; "auto" never changes such answers.

    Winograd F(2x2, 3x3) is not chosen. It beat im2col at 32-128 channels while only its own
    chunks ran on both cores; with im2col's chunks on both cores too, and dx as a convolution
    of dout, im2col is as fast or faster from 3 to 256 channels (Winograd forward + backward at
    0.5x-1.04x of im2col's speed: ``benchmarks/conv_bench.py --algos im2col winograd``, README
    "Performance"). It stays one ``algo="winograd"`` away.
    """
    if algo != "auto":
        return algo
    large = min(kernel_size) >= 7 and set(stride) == {1} and set(dilation) == {1} and groups == 1
    if large and all(a is None or _is_finite(a) for a in (x, w)):
        return "fft"
    return "im2col"


def conv2d_forward(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                   max_buffer_bytes=None, algo="im2col", padding_mode="zeros", layer="conv2d"):
    """out = conv(x, w) + b. Returns (out, :class:`ConvCache`).

    padding: int, (ph, pw) or ((top, bottom), (left, right)).
    max_buffer_bytes: cap of the im2col column buffer (default :func:`get_max_buffer_bytes`).
    algo: "im2col" (GEMM), "fft" (:mod:`npcnn.functional.conv_fft`), "winograd" (F(2x2, 3x3) for
    3x3 kernels at stride 1, dilation 1: :mod:`npcnn.functional.winograd`; never chosen by "auto"),
    "direct" (the loop twin :func:`conv2d_naive`, for teaching and tiny inputs) or "auto"
    (:func:`choose_algorithm`).
    padding_mode: "zeros", or "reflect", "replicate", "circular" (:mod:`npcnn.functional.padding`
    pads first, then the convolution pads nothing).
    layer: the caller's name in errors.
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"{layer}: algo must be one of {ALGORITHMS}, got {algo!r}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"{layer}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    pad_cache = None
    if padding_mode != "zeros":
        x, pad_cache = pad_forward(x, padding_pairs(padding, 2, layer), padding_mode, layer)
        padding = 0
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layer=layer)
    algo = choose_algorithm(algo, (g.kh, g.kw), g.stride, g.dilation, g.groups, x, w)
    if algo == "fft":
        out, saved = conv_fft.conv2d_fft_forward(x, w, b, layer=layer, geometry=g)
    elif algo == "winograd":
        if not winograd.winograd_applicable(w.shape, g.stride, g.dilation):
            raise ValueError(f"{layer}: algo='winograd' needs a 3x3 kernel with stride 1 and dilation 1, "
                             f"got kernel {(g.kh, g.kw)}, stride {g.stride}, dilation {g.dilation}")
        out, saved = winograd.winograd_conv2d_forward(x, w, b, g.pads, g.groups)
    elif algo == "direct":
        out, saved = conv2d_naive(x, w, b, g.stride, g.pads, g.dilation, g.groups), (x, w, b is not None, g)
    else:
        out, saved = _output(x, w, b, g, max_buffer_bytes), (x, w, b is not None, g, max_buffer_bytes)
    return out, ConvCache(algo, saved, pad_cache)


def conv2d_backward(dout, cache, need_dx=True, need_dw=True):
    """(dx, dw, db) of conv2d_forward, by the algorithm the forward ran; a gradient that is not
    needed (or a missing bias's) comes back as None."""
    if cache.algo == "fft":
        dx, dw, db = conv_fft.conv2d_fft_backward(dout, cache.saved, need_dx, need_dw)
    elif cache.algo == "winograd":
        dx, dw, db = winograd.winograd_conv2d_backward(dout, cache.saved, need_dx, need_dw)
    elif cache.algo == "direct":
        x, w, has_bias, g = cache.saved
        dx, dw, db = conv2d_naive_backward(dout, x, w, g.stride, g.pads, g.dilation, g.groups)
        dx, dw, db = (dx if need_dx else None), (dw if need_dw else None), (db if has_bias else None)
    else:
        x, w, has_bias, g, max_buffer_bytes = cache.saved
        dx, dw = _gradients(dout, x, w, g, max_buffer_bytes, need_dx, need_dw)
        db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    if cache.pad is not None and dx is not None:
        dx = pad_backward(dx, cache.pad)
    return dx, dw, db


def im2col_cost(x_shape, w_shape, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Estimated real flops of an im2col forward: the GEMM, 2 * N * O * Ho * Wo * Cg * kh * kw
    (one multiply and one add per tap; building the columns is memory traffic, not counted).
    Compare :func:`npcnn.functional.conv_fft.fft_cost`."""
    g = conv_geometry(x_shape, w_shape, stride, padding, dilation, groups, layer="im2col_cost")
    return float(2 * g.N * g.O * g.Ho * g.Wo * (g.C // g.groups) * g.kh * g.kw)


def conv2d_naive(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Loop twin of conv2d_forward: one output pixel at a time, straight from the definition."""
    xp = get_array_module(x)
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layer="conv2d_naive")
    xpad = _pad(x, g)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    Og, Cg = g.O // g.groups, g.C // g.groups
    out = xp.zeros((g.N, g.O, g.Ho, g.Wo), dtype=x.dtype)
    for n in range(g.N):
        for o in range(g.O):
            c0 = (o // Og) * Cg  # first input channel of o's group
            for y in range(g.Ho):
                for x_ in range(g.Wo):
                    window = xpad[n, c0: c0 + Cg, sh * y: sh * y + dh * (g.kh - 1) + 1: dh,
                                  sw * x_: sw * x_ + dw * (g.kw - 1) + 1: dw]
                    out[n, o, y, x_] = (window * w[o]).sum() + (b[o] if b is not None else 0.0)
    return out


def conv2d_naive_backward(dout, x, w, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    """Loop twin of conv2d_backward: (dx, dw, db), each output pixel's gradient added to its window."""
    xp = get_array_module(x)
    g = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, layer="conv2d_naive")
    xpad = _pad(x, g)
    dxpad = xp.zeros_like(xpad)
    dw_ = xp.zeros_like(w)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    Og, Cg = g.O // g.groups, g.C // g.groups
    for n in range(g.N):
        for o in range(g.O):
            c0 = (o // Og) * Cg
            for y in range(g.Ho):
                for x_ in range(g.Wo):
                    window = (n, slice(c0, c0 + Cg), slice(sh * y, sh * y + dh * (g.kh - 1) + 1, dh),
                              slice(sw * x_, sw * x_ + dw * (g.kw - 1) + 1, dw))
                    dxpad[window] += dout[n, o, y, x_] * w[o]
                    dw_[o] += dout[n, o, y, x_] * xpad[window]
    (top, _), (left, _) = g.pads
    dx = dxpad[:, :, top: top + g.H, left: left + g.W].copy()
    return dx, dw_, dout.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------- conv1d (H = 1)


def _pads_1d(padding, layer="conv1d"):
    """int, (left, right) or ((left, right),) -> (left, right)."""
    if isinstance(padding, (tuple, list)) and len(padding) == 1:
        padding = padding[0]
    return pair(padding, layer, "padding")


def _check_1d(x, w, layer):
    if x.ndim != 3:
        raise ValueError(f"{layer}: expected input of shape (N, C, L), got shape {tuple(x.shape)}")
    if w.ndim != 3:
        raise ValueError(f"{layer}: expected weight of shape (O, C/groups, k), got shape {tuple(w.shape)}")


def conv1d_forward(x, w, b=None, stride=1, padding=(0, 0), dilation=1, groups=1, max_buffer_bytes=None,
                   algo="im2col", padding_mode="zeros", layer="conv1d"):
    """1-D convolution of x (N, C, L) with w (O, C/groups, k): the 2-D kernel on (N, C, 1, L).

    ``padding`` is an int or a (left, right) pair; the other arguments are conv2d_forward's.
    Returns (out (N, O, Lo), cache)."""
    _check_1d(x, w, layer)
    stride2 = (1, as_tuple(stride, 1, layer, "stride")[0])
    dilation2 = (1, as_tuple(dilation, 1, layer, "dilation")[0])
    # "auto" decides on the 1-D kernel (a 1 x k kernel of the 2-D view would never pick FFT)
    algo = choose_algorithm(algo, w.shape[2:], stride2[1:], dilation2[1:], groups, x, w)
    out, cache = conv2d_forward(x[:, :, None, :], w[:, :, None, :], b, stride2, ((0, 0), _pads_1d(padding, layer)),
                                dilation2, groups, max_buffer_bytes, algo, padding_mode, layer)
    return out[:, :, 0, :], cache


def conv1d_backward(dout, cache, need_dx=True, need_dw=True):
    """(dx, dw, db) of conv1d_forward; a gradient that is not needed comes back as None."""
    dx, dw, db = conv2d_backward(dout[:, :, None, :], cache, need_dx, need_dw)
    return (None if dx is None else dx[:, :, 0, :]), (None if dw is None else dw[:, :, 0, :]), db


def conv1d_naive(x, w, b=None, stride=1, padding=(0, 0), dilation=1, groups=1):
    """Loop twin of conv1d_forward: out[n, o, t] = b[o] + sum_{c, i} xpad[n, c, s*t + d*i] w[o, c, i]."""
    xp = get_array_module(x)
    _check_1d(x, w, "conv1d_naive")
    left, right = _pads_1d(padding, "conv1d_naive")
    xpad = xp.pad(x, ((0, 0), (0, 0), (left, right)))
    N, C, L = xpad.shape
    O, Cg, k = w.shape
    Og = O // groups
    Lo = conv_output_size(L, k, stride, 0, dilation)
    out = xp.zeros((N, O, Lo), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            c0 = (o // Og) * Cg
            for t in range(Lo):
                window = xpad[n, c0: c0 + Cg, stride * t: stride * t + dilation * (k - 1) + 1: dilation]
                out[n, o, t] = (window * w[o]).sum() + (b[o] if b is not None else 0.0)
    return out


# ----------------------------------------------------------------------------- transposed convolution


def _transpose_geometry(x_shape, w_shape, stride, padding, output_padding, dilation, groups):
    """The geometry of the convolution whose input gradient this transposed convolution is.

    x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw): the convolution maps (N, Cout, Ho, Wo) to
    (N, Cin, H, W) with the same w, so its O is Cin and its C is Cout.
    """
    name = "conv_transpose2d"
    if len(x_shape) != 4:
        raise ValueError(f"{name}: expected input of shape (N, C_in, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"{name}: expected weight of shape (C_in, C_out/groups, kh, kw), got shape {tuple(w_shape)}")
    stride, dilation = pair(stride, name, "stride"), pair(dilation, name, "dilation")
    pads, output_padding = padding_pairs(padding, 2, name), pair(output_padding, name, "output_padding")
    for axis in range(2):
        if not 0 <= output_padding[axis] < max(stride[axis], dilation[axis]):
            raise ValueError(f"{name}: output_padding {output_padding} must be smaller than either stride "
                             f"{stride} or dilation {dilation}")
    if x_shape[1] != w_shape[0]:
        raise ValueError(f"{name}: weight expects {w_shape[0]} input channels, got input of shape {tuple(x_shape)}")
    groups = int(groups)
    if groups < 1 or w_shape[0] % groups:
        raise ValueError(f"{name}: in_channels ({w_shape[0]}) must be divisible by groups ({groups})")
    size = [conv_transpose_output_size(x_shape[2 + a], w_shape[2 + a], stride[a], pads[a], output_padding[a],
                                       dilation[a]) for a in range(2)]
    if min(size) < 1:
        raise ValueError(f"{name}: output size {tuple(size)} is not positive (input {tuple(x_shape)}, "
                         f"padding {pads}, stride {stride})")
    conv_x_shape = (x_shape[0], w_shape[1] * groups, size[0], size[1])
    return conv_geometry(conv_x_shape, w_shape, stride, pads, dilation, groups, out_size=x_shape[2:], layer=name)


def conv_transpose2d_forward(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), output_padding=(0, 0),
                             dilation=(1, 1), groups=1, max_buffer_bytes=None):
    """Transposed convolution (the adjoint of conv2d with the same w), by GEMM + col2im.

    x (N, Cin, H, W), w (Cin, Cout/groups, kh, kw), b (Cout,); out (N, Cout, Ho, Wo) with
    Ho = sh(H-1) - top - bottom + dh(kh-1) + output_padding + 1.
    Returns (out, cache).
    """
    g = _transpose_geometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    out, _ = _gradients(x, None, w, g, max_buffer_bytes, need_dx=True, need_dw=False)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out, (x, w, b is not None, g, max_buffer_bytes)


def conv_transpose2d_backward(dout, cache, need_dx=True, need_dw=True):
    """(dx, dw, db) of conv_transpose2d_forward: dx = conv2d(dout, w), dw = conv2d's weight
    gradient with the roles of input and output gradient exchanged."""
    x, w, has_bias, g, max_buffer_bytes = cache
    dx = _output(dout, w, None, g, max_buffer_bytes) if need_dx else None
    dw = _gradients(x, dout, None, g, max_buffer_bytes, need_dx=False, need_dw=True)[1] if need_dw else None
    db = dout.sum(axis=(0, 2, 3)) if has_bias else None
    return dx, dw, db


def conv_transpose2d_naive(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), output_padding=(0, 0),
                           dilation=(1, 1), groups=1):
    """Loop twin of conv_transpose2d_forward: each input pixel scatters x[n, c, y, x] * w[c] into
    the output window it would have come from in a convolution."""
    xp = get_array_module(x)
    g = _transpose_geometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    (top, bottom), (left, right) = g.pads
    (sh, sw), (dh, dw) = g.stride, g.dilation
    full = xp.zeros((g.N, g.C, g.H + top + bottom, g.W + left + right), dtype=x.dtype)
    Cin_g, Cout_g = g.O // g.groups, g.C // g.groups
    for n in range(g.N):
        for c in range(g.O):
            o0 = (c // Cin_g) * Cout_g  # first output channel of c's group
            for y in range(x.shape[2]):
                for x_ in range(x.shape[3]):
                    full[n, o0: o0 + Cout_g, sh * y: sh * y + dh * (g.kh - 1) + 1: dh,
                         sw * x_: sw * x_ + dw * (g.kw - 1) + 1: dw] += x[n, c, y, x_] * w[c]
    out = full[:, :, top: top + g.H, left: left + g.W].copy()
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv_transpose2d_naive_backward(dout, x, w, stride=(1, 1), padding=((0, 0), (0, 0)), output_padding=(0, 0),
                                    dilation=(1, 1), groups=1):
    """Loop twin of conv_transpose2d_backward: (dx, dw, db), straight from the scatter form of
    the forward (each input pixel adds x[n, c, y, x] * w[c] to one output window):
    dx[n, c, y, x] = sum of dout over that window times w[c], dw[c] = sum of x[n, c, y, x] times it."""
    xp = get_array_module(dout)
    g = _transpose_geometry(x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    (top, bottom), (left, right) = g.pads
    (sh, sw), (dh, dw) = g.stride, g.dilation
    full = xp.zeros((g.N, g.C, g.H + top + bottom, g.W + left + right), dtype=dout.dtype)
    full[:, :, top: top + g.H, left: left + g.W] = dout  # the cropped border had no gradient
    dx, dw_ = xp.zeros_like(x), xp.zeros_like(w)
    Cin_g, Cout_g = g.O // g.groups, g.C // g.groups
    for n in range(g.N):
        for c in range(g.O):
            o0 = (c // Cin_g) * Cout_g
            for y in range(x.shape[2]):
                for x_ in range(x.shape[3]):
                    window = full[n, o0: o0 + Cout_g, sh * y: sh * y + dh * (g.kh - 1) + 1: dh,
                                  sw * x_: sw * x_ + dw * (g.kw - 1) + 1: dw]
                    dx[n, c, y, x_] = (window * w[c]).sum()
                    dw_[c] += x[n, c, y, x_] * window
    return dx, dw_, dout.sum(axis=(0, 2, 3))
