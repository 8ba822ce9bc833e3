"""Pooling kernels (NCHW): max, average, Lp, adaptive average and global average pooling.

Geometry, as PyTorch: along one axis of size ``n`` with kernel ``k``, stride ``s``, padding ``p``
and dilation ``d`` the window ``o`` covers input positions ``o*s - p + j*d`` for ``j < k``, and

    out = floor((n + 2p - d(k-1) - 1) / s) + 1                       (ceil_mode=False)
    out = ceil((n + 2p - d(k-1) - 1) / s) + 1,  minus 1 if the last window would start
          at or past n + p (it must start inside the input or the left padding)   (ceil_mode=True)

Max pooling:  out = max over the window;  dx routes dout to the window's arg-max only (ties: the
first position in the window wins, as PyTorch). Padding holds -inf, so it never wins.
Average pooling:  out = sum over the window / divisor;  dx spreads dout/divisor over the window.
The divisor counts the window clipped to the padded input (count_include_pad=True) or to the
input itself (count_include_pad=False); with ceil_mode a window may overhang both.

There are no separate 1-D kernels: MaxPool1d, AvgPool1d and LPPool1d call the 2-D ones on an
(N, C, 1, L) view with a 1 x k window. The sizes and checks are in ``functional/geometry.py``.
"""

import math

from .. import backend
from ..backend import get_array_module
from ..threads import each_batch_chunk
from .geometry import pair, pool_geometry


# ----------------------------------------------------------------------------- geometry


def pool_args(layer, kernel_size, stride=None, padding=0, dilation=1):
    """(kernel, stride, padding, dilation) as pairs; ``stride=None`` means the kernel size (PyTorch).

    Each may be an int or a pair; ``layer`` names the caller in errors."""
    kernel = pair(kernel_size, layer, "kernel_size")
    stride = kernel if stride is None else pair(stride, layer, "stride")
    return kernel, stride, pair(padding, layer, "padding"), pair(dilation, layer, "dilation")


def _pad_hw(x, top, bottom, left, right, value):
    """``x`` (N, C, H, W) inside a border of ``value``; ``x`` itself when there is no border."""
    if top == bottom == left == right == 0:
        return x
    xp = get_array_module(x)
    N, C, H, W = x.shape
    out = xp.full((N, C, H + top + bottom, W + left + right), value, dtype=x.dtype)
    out[:, :, top:top + H, left:left + W] = x
    return out


def _padding_needed(size, out, kernel, stride, padding, dilation):
    """(before, after): padding so that every window lies inside the padded axis.

    ``after`` may be less than ``padding`` (unused right padding is not built) or more (a
    ceil_mode window that overhangs the padded input).
    """
    needed = (out - 1) * stride + dilation * (kernel - 1) + 1
    return padding, max(0, needed - padding - size)


def _windows(xpad, out_hw, kernel, stride, dilation):
    """Read-only (N, C, oh, ow, kh, kw) view of the pooling windows of a padded input."""
    N, C = xpad.shape[:2]
    sN, sC, sH, sW = xpad.strides
    shape = (N, C, out_hw[0], out_hw[1], kernel[0], kernel[1])
    strides = (sN, sC, sH * stride[0], sW * stride[1], sH * dilation[0], sW * dilation[1])
    return backend.as_strided(xpad, shape, strides)


def _offset_slice(i, j, out_hw, stride, dilation):
    """Index of the (oh, ow) input positions that kernel offset (i, j) reads in the padded input."""
    h0, w0 = i * dilation[0], j * dilation[1]
    return (slice(None), slice(None),
            slice(h0, h0 + stride[0] * (out_hw[0] - 1) + 1, stride[0]),
            slice(w0, w0 + stride[1] * (out_hw[1] - 1) + 1, stride[1]))


def _is_tiling(shape, out_hw, kernel, stride, padding, dilation):
    """True when the windows are disjoint blocks inside the input: stride == kernel, no padding
    or dilation, and no window overhanging the input (rows and columns past the last whole
    block, which floor mode drops, are allowed)."""
    H, W = shape[-2:]
    return (tuple(stride) == tuple(kernel) and padding == (0, 0) and dilation == (1, 1)
            and out_hw[0] * kernel[0] <= H and out_hw[1] * kernel[1] <= W)


def _blocks(a, out_hw, kernel):
    """The disjoint blocks of ``a`` (N, C, H, W) as a (N, C, oh, kh, ow, kw) view (no copy:
    splitting an axis never needs one); block (r, s) offset (i, j) is [:, :, r, i, s, j]."""
    N, C = a.shape[:2]
    (oh, ow), (kh, kw) = out_hw, kernel
    return a[:, :, :oh * kh, :ow * kw].reshape(N, C, oh, kh, ow, kw)


def _tile_hits(x, out, kernel, out_hw):
    """Yield (i, j, hit) per kernel offset in window order: hit marks the windows whose first
    maximum (the one PyTorch picks) is at offset (i, j); a NaN counts as the maximum."""
    xp = get_array_module(x)
    blocks, taken = _blocks(x, out_hw, kernel), xp.zeros(out.shape, dtype=bool)
    has_nan = bool(xp.isnan(out).any())  # one pass over the output; NaN != NaN needs its own test
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            v = blocks[:, :, :, i, :, j]
            hit = v == out
            if has_nan:
                hit |= xp.isnan(v)
            hit &= ~taken
            taken |= hit
            yield i, j, hit


def _unpad(dpad, x_shape, top, left):
    H, W = x_shape[-2:]
    return dpad[:, :, top:top + H, left:left + W]


# ----------------------------------------------------------------------------- max pooling


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, layer="MaxPool2d"):
    """x (N, C, H, W) -> (out (N, C, oh, ow), cache). ``cache`` holds the arg-max of each window
    (for disjoint windows: x and out, from which backward finds it)."""
    xp = get_array_module(x)
    kernel, stride, padding, dilation = pool_args(layer, kernel_size, stride, padding, dilation)
    oh, ow = pool_geometry(layer, x.shape, kernel, stride, padding, dilation, ceil_mode)
    if _is_tiling(x.shape, (oh, ow), kernel, stride, padding, dilation):
        return _max_pool_tiles(x, kernel, (oh, ow))
    N, C, H, W = x.shape
    top, bottom = _padding_needed(H, oh, kernel[0], stride[0], padding[0], dilation[0])
    left, right = _padding_needed(W, ow, kernel[1], stride[1], padding[1], dilation[1])
    pads = (top, bottom, left, right)
    xpad = _pad_hw(x, top, bottom, left, right, -math.inf)
    win = _windows(xpad, (oh, ow), kernel, stride, dilation).reshape(N, C, oh, ow, kernel[0] * kernel[1])
    arg = win.argmax(axis=-1)  # first maximum in the window wins, as in PyTorch
    out = xp.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    return out, ("windows", arg, x.shape, kernel, stride, dilation, pads)


def _max_pool_tiles(x, kernel, out_hw):
    """Fast path for disjoint windows: out = the elementwise maximum of the kh*kw strided slices
    of the block view, kh*kw - 1 passes over an output-sized array; no copy of x, no (.., kh*kw)
    window array, no arg-max array kept (backward finds the first maximum again from x and out)."""
    xp = get_array_module(x)
    blocks = _blocks(x, out_hw, kernel)
    out = xp.empty(blocks.shape[:3] + blocks.shape[4:5], dtype=x.dtype)

    def chunk(k, rows):  # chunks of the batch on all cores (npcnn.threads.each_batch_chunk)
        o, b = out[rows], blocks[rows]
        o[...] = b[:, :, :, 0, :, 0]
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    xp.maximum(o, b[:, :, :, i, :, j], out=o)  # NaN propagates, as argmax picks it

    each_batch_chunk(chunk, x)
    return out, ("tiles", x, out, kernel)


def _masker(dout, finite=None):
    """A function hit -> (dout where hit, else 0) for boolean masks of dout's shape.

    For a finite dout that is the product dout * hit: one branch-free pass, measured 10-20x
    faster than ``where`` on the random-looking masks of max pooling (where branches on every
    entry). An inf or NaN in dout would make inf * 0 = NaN outside the mask, so then ``where``.
    ``finite``: whether dout is all finite, when the caller already knows (None: look)."""
    xp = get_array_module(dout)
    if finite is None:
        finite = bool(xp.isfinite(dout).all())
    if finite:
        return lambda hit: dout * hit
    zero = xp.zeros((), dtype=dout.dtype)
    return lambda hit: xp.where(hit, dout, zero)


def max_pool2d_backward(dout, cache):
    """dx: each dout entry goes to the one input position that won its window."""
    xp = get_array_module(dout)
    if cache[0] == "tiles":
        _, x, out, kernel = cache
        dx = xp.empty(x.shape, dtype=dout.dtype)
        oh, ow = out.shape[-2:]
        if (oh * kernel[0], ow * kernel[1]) != x.shape[-2:]:
            dx[...] = 0  # rows / columns past the last whole block get no gradient
        dblocks = _blocks(dx, out.shape[-2:], kernel)
        finite = bool(xp.isfinite(dout).all())  # once for the batch, not per chunk

        def chunk(k, rows):  # chunks of the batch on all cores
            masked = _masker(dout[rows], finite)
            for i, j, hit in _tile_hits(x[rows], out[rows], kernel, out.shape[-2:]):
                dblocks[rows, :, :, i, :, j] = masked(hit)  # every block entry is written once

        each_batch_chunk(chunk, x)
        return dx
    _, arg, x_shape, kernel, stride, dilation, (top, bottom, left, right) = cache
    N, C, oh, ow = dout.shape
    H, W = x_shape[-2:]
    masked = _masker(dout)
    dpad = xp.zeros((N, C, H + top + bottom, W + left + right), dtype=dout.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            # Windows may overlap, so offsets are added one at a time (never a fancy-index '+=').
            dpad[_offset_slice(i, j, (oh, ow), stride, dilation)] += masked(arg == i * kernel[1] + j)
    return _unpad(dpad, x_shape, top, left)


def max_pool2d_indices(cache):
    """PyTorch's ``return_indices``: the arg-max as a flat index into each (H, W) input plane.

    A window that covers no input element (possible with ceil_mode and dilation: every tap falls in
    the padding) has index -1; its output is -inf and it passes no gradient. (PyTorch reports an
    index computed from the window's first in-range row and column there, which may lie outside the
    window or the plane, and sends the gradient to it.)"""
    if cache[0] == "tiles":
        _, x, out, kernel = cache
        xp = get_array_module(x)
        arg = xp.zeros(out.shape, dtype=xp.int64)
        for i, j, hit in _tile_hits(x, out, kernel, out.shape[-2:]):
            arg[hit] = i * kernel[1] + j
        stride, dilation, top, left, x_shape = kernel, (1, 1), 0, 0, x.shape
    else:
        _, arg, x_shape, kernel, stride, dilation, pads = cache
        xp = get_array_module(arg)
        top, left = pads[0], pads[2]
    oh, ow = arg.shape[-2:]
    H, W = x_shape[-2:]
    rows = xp.arange(oh)[:, None] * stride[0] + (arg // kernel[1]) * dilation[0] - top
    cols = xp.arange(ow)[None, :] * stride[1] + (arg % kernel[1]) * dilation[1] - left
    inside = (rows >= 0) & (rows < H) & (cols >= 0) & (cols < W)
    return xp.where(inside, rows * W + cols, -1).astype(xp.int64)


def max_pool2d_naive(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Loop twin: (out, flat indices) with plain loops over every window (slow; tests only)."""
    xp = get_array_module(x)
    kernel, stride, padding, dilation = pool_args("max_pool2d_naive", kernel_size, stride, padding, dilation)
    oh, ow = pool_geometry("max_pool2d_naive", x.shape, kernel, stride, padding, dilation, ceil_mode)
    N, C, H, W = x.shape
    out = xp.zeros((N, C, oh, ow), dtype=x.dtype)
    index = xp.zeros((N, C, oh, ow), dtype=xp.int64)
    for n in range(N):
        for c in range(C):
            for r in range(oh):
                for s in range(ow):
                    best, where = -math.inf, -1
                    for i in range(kernel[0]):
                        for j in range(kernel[1]):
                            h = r * stride[0] - padding[0] + i * dilation[0]
                            w = s * stride[1] - padding[1] + j * dilation[1]
                            if 0 <= h < H and 0 <= w < W and float(x[n, c, h, w]) > best:
                                best, where = float(x[n, c, h, w]), h * W + w
                    out[n, c, r, s], index[n, c, r, s] = best, where
    return out, index


def max_pool2d_backward_naive(dout, index, x_shape):
    """Loop twin of the backward: dx[index] += dout, window by window (index -1, a window without
    input elements, passes nothing)."""
    xp = get_array_module(dout)
    N, C, H, W = x_shape
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for r in range(dout.shape[2]):
                for s in range(dout.shape[3]):
                    flat = int(index[n, c, r, s])
                    if flat >= 0:
                        dx[n, c, flat // W, flat % W] += dout[n, c, r, s]
    return dx


# ----------------------------------------------------------------------------- average pooling


def _avg_divisor(size, out, kernel, stride, padding, count_include_pad):
    """Per-output divisors along one axis (PyTorch's avg_pool2d rule), as a Python list."""
    divisors = []
    for o in range(out):
        start = o * stride - padding
        end = min(start + kernel, size + padding)  # a ceil_mode window is clipped to the padded input
        count = end - start
        if not count_include_pad:
            count = min(end, size) - max(start, 0)
        divisors.append(count)
    return divisors


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       layer="AvgPool2d"):
    """x (N, C, H, W) -> (out (N, C, oh, ow), cache)."""
    xp = get_array_module(x)
    kernel, stride, padding, _ = pool_args(layer, kernel_size, stride, padding)
    oh, ow = pool_geometry(layer, x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    N, C, H, W = x.shape
    if _is_tiling(x.shape, (oh, ow), kernel, stride, padding, (1, 1)):
        # Fast path: disjoint blocks, every divisor is kh*kw. The kh*kw strided slices of the
        # block view added up: ~20x faster than .mean(axis=(3, 5)) over the strided axes.
        blocks = _blocks(x, (oh, ow), kernel)
        out = blocks[:, :, :, 0, :, 0].copy()
        for i in range(kernel[0]):
            for j in range(kernel[1]):
                if i or j:
                    out += blocks[:, :, :, i, :, j]
        out /= float(kernel[0] * kernel[1])
        return out, (x.shape, kernel, stride, None, None)
    top, bottom = _padding_needed(H, oh, kernel[0], stride[0], padding[0], 1)
    left, right = _padding_needed(W, ow, kernel[1], stride[1], padding[1], 1)
    xpad = _pad_hw(x, top, bottom, left, right, 0.0)
    # Window sums as kh*kw strided slices added up: faster than reducing the (.., kh, kw) window
    # view, and no (N, C, oh, ow, kh, kw) temporary.
    sums = xp.zeros((N, C, oh, ow), dtype=x.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            sums += xpad[_offset_slice(i, j, (oh, ow), stride, (1, 1))]
    div_h = _avg_divisor(H, oh, kernel[0], stride[0], padding[0], count_include_pad)
    div_w = _avg_divisor(W, ow, kernel[1], stride[1], padding[1], count_include_pad)
    divisor = xp.asarray(div_h, dtype=x.dtype)[:, None] * xp.asarray(div_w, dtype=x.dtype)[None, :]
    return sums / divisor, (x.shape, kernel, stride, (top, bottom, left, right), divisor)


def avg_pool2d_backward(dout, cache):
    """dx: each window's input positions receive dout / divisor (overlaps add up)."""
    x_shape, kernel, stride, pads, divisor = cache
    xp = get_array_module(dout)
    N, C, oh, ow = dout.shape
    if pads is None:  # fast path: repeat dout / (kh*kw) over each disjoint block
        dx = xp.zeros(x_shape, dtype=dout.dtype)  # rows/columns past the last block get nothing
        _blocks(dx, (oh, ow), kernel)[...] = (dout / float(kernel[0] * kernel[1]))[:, :, :, None, :, None]
        return dx
    top, bottom, left, right = pads
    H, W = x_shape[-2:]
    share = dout / divisor
    dpad = xp.zeros((N, C, H + top + bottom, W + left + right), dtype=dout.dtype)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            dpad[_offset_slice(i, j, (oh, ow), stride, (1, 1))] += share
    return _unpad(dpad, x_shape, top, left)


def avg_pool2d_naive(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Loop twin of avg_pool2d_forward (slow; tests only)."""
    xp = get_array_module(x)
    kernel, stride, padding, _ = pool_args("avg_pool2d_naive", kernel_size, stride, padding)
    oh, ow = pool_geometry("avg_pool2d_naive", x.shape, kernel, stride, padding, (1, 1), ceil_mode)
    N, C, H, W = x.shape
    out = xp.zeros((N, C, oh, ow), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for r in range(oh):
                for s in range(ow):
                    h0, w0 = r * stride[0] - padding[0], s * stride[1] - padding[1]
                    h1, w1 = min(h0 + kernel[0], H + padding[0]), min(w0 + kernel[1], W + padding[1])
                    total, inside = 0.0, 0
                    for h in range(max(h0, 0), min(h1, H)):
                        for w in range(max(w0, 0), min(w1, W)):
                            total += float(x[n, c, h, w])
                            inside += 1
                    out[n, c, r, s] = total / ((h1 - h0) * (w1 - w0) if count_include_pad else inside)
    return out


def avg_pool2d_backward_naive(dout, x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                              count_include_pad=True):
    """Loop twin of avg_pool2d_backward: each window adds dout / divisor to its input positions."""
    xp = get_array_module(dout)
    kernel, stride, padding, _ = pool_args("avg_pool2d_backward_naive", kernel_size, stride, padding)
    N, C, H, W = x_shape
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    for r in range(dout.shape[2]):
        for s in range(dout.shape[3]):
            h0, w0 = r * stride[0] - padding[0], s * stride[1] - padding[1]
            h1, w1 = min(h0 + kernel[0], H + padding[0]), min(w0 + kernel[1], W + padding[1])
            rows, cols = slice(max(h0, 0), min(h1, H)), slice(max(w0, 0), min(w1, W))
            inside = (rows.stop - rows.start) * (cols.stop - cols.start)
            divisor = (h1 - h0) * (w1 - w0) if count_include_pad else inside
            if inside > 0:
                dx[:, :, rows, cols] += dout[:, :, r, s][:, :, None, None] / float(divisor)
    return dx


# ----------------------------------------------------------------------------- Lp pooling


def lp_pool2d_forward(x, norm_type, kernel_size, stride=None, ceil_mode=False, layer="LPPool2d"):
    """PyTorch's LPPool2d: out = (kh*kw * avg_pool(x^p))^(1/p), i.e. (sum over the window of x^p)^(1/p).

    (With ceil_mode a clipped window's average is still scaled by kh*kw, exactly as PyTorch does.)
    """
    p = float(norm_type)
    kernel = pair(kernel_size, layer, "kernel_size")
    powered = x ** p
    avg, avg_cache = avg_pool2d_forward(powered, kernel, stride, 0, ceil_mode, True, layer=layer)
    total = avg * float(kernel[0] * kernel[1])
    out = total ** (1.0 / p)
    return out, (x, p, kernel, avg_cache, total, out)


def lp_pool2d_backward(dout, cache):
    """d out / d total = out / (p total);  d total / d x = kh*kw * avg_backward(.) * p x^(p-1)."""
    x, p, kernel, avg_cache, total, out = cache
    dtotal = dout * out / (p * total)
    dpowered = avg_pool2d_backward(dtotal * float(kernel[0] * kernel[1]), avg_cache)
    return dpowered * (p * x ** (p - 1.0))


def lp_pool2d_naive(x, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Loop twin of lp_pool2d_forward built on the average-pooling twin."""
    kernel = pair(kernel_size, "lp_pool2d_naive", "kernel_size")
    avg = avg_pool2d_naive(x ** float(norm_type), kernel, stride, 0, ceil_mode, True)
    return (avg * float(kernel[0] * kernel[1])) ** (1.0 / float(norm_type))


# ----------------------------------------------------------------------------- adaptive / global


def adaptive_bounds(size, out):
    """PyTorch's adaptive windows along one axis: [floor(o*size/out), ceil((o+1)*size/out))."""
    return [((o * size) // out, -(-((o + 1) * size) // out)) for o in range(out)]


def adaptive_output_size(shape, output_size):
    """(oh, ow) from an int, a pair, or a pair with None (None keeps that input size)."""
    if not isinstance(output_size, (tuple, list)):
        output_size = (output_size, output_size)
    oh, ow = output_size
    return (shape[-2] if oh is None else int(oh)), (shape[-1] if ow is None else int(ow))


def _averaging_matrix(xp, size, out, dtype):
    """(out, size) matrix whose row o averages the o-th adaptive window."""
    matrix = xp.zeros((out, size), dtype=dtype)
    for o, (start, end) in enumerate(adaptive_bounds(size, out)):
        matrix[o, start:end] = 1.0 / (end - start)
    return matrix


def adaptive_avg_pool2d_forward(x, output_size):
    """x (N, C, H, W) -> out (N, C, oh, ow), out = A_h x A_w^T with the averaging matrices A."""
    xp = get_array_module(x)
    oh, ow = adaptive_output_size(x.shape, output_size)
    H, W = x.shape[-2:]
    if (oh, ow) == (1, 1):
        return global_avg_pool2d_forward(x)
    a_h, a_w = _averaging_matrix(xp, H, oh, x.dtype), _averaging_matrix(xp, W, ow, x.dtype)
    out = xp.einsum("ih,nchw,jw->ncij", a_h, x, a_w, optimize=True)
    return out, ("matrices", a_h, a_w)


def adaptive_avg_pool2d_backward(dout, cache):
    """dx = A_h^T dout A_w (the transpose of the forward map)."""
    if cache[0] == "global":
        return global_avg_pool2d_backward(dout, cache)
    xp = get_array_module(dout)
    _, a_h, a_w = cache
    return xp.einsum("ih,ncij,jw->nchw", a_h, dout, a_w, optimize=True)


def adaptive_avg_pool2d_naive(x, output_size):
    """Loop twin: the mean of each adaptive window."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    oh, ow = adaptive_output_size(x.shape, output_size)
    out = xp.zeros((N, C, oh, ow), dtype=x.dtype)
    for r, (h0, h1) in enumerate(adaptive_bounds(H, oh)):
        for s, (w0, w1) in enumerate(adaptive_bounds(W, ow)):
            for n in range(N):
                for c in range(C):
                    out[n, c, r, s] = float(x[n, c, h0:h1, w0:w1].sum()) / ((h1 - h0) * (w1 - w0))
    return out


def global_avg_pool2d_forward(x):
    """x (N, C, H, W) -> out (N, C, 1, 1), the mean of each channel plane."""
    return x.mean(axis=(2, 3), keepdims=True), ("global", x.shape)


def global_avg_pool2d_backward(dout, cache):
    """dx = dout / (H W), broadcast over the plane."""
    xp = get_array_module(dout)
    x_shape = cache[1]
    share = dout / float(x_shape[2] * x_shape[3])
    return xp.broadcast_to(share, x_shape).copy()  # a real array: callers may write into it
