"""Padding of the trailing (spatial) axes and its adjoint.

``pads`` gives (before, after) for each trailing axis, e.g. ((top, bottom), (left, right)) for
(N, C, H, W). Modes (PyTorch's names, NumPy's ``xp.pad`` does the work):

    zeros      0                             np.pad mode "constant"
    reflect    x[-i]    (edge not repeated)  np.pad mode "reflect"     needs pad < size
    replicate  x[0]                          np.pad mode "edge"
    circular   x[size - i]                   np.pad mode "wrap"        needs pad <= size

Every padded entry is a copy of one input entry (or zero), so the backward pass (the adjoint)
takes the gradient of the interior and adds each padded entry's gradient to the entry it copied.
NumPy pads axis after axis, so the adjoint folds the axes back in the reverse order; within an
axis the border slices are added with a few slice operations, never a loop over pixels.
"""

from ..backend import get_array_module

_NUMPY_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _check(shape, pads, mode, layer):
    if mode not in _NUMPY_MODES:
        raise ValueError(f"{layer}: padding mode must be one of {tuple(_NUMPY_MODES)}, got {mode!r}")
    sizes = shape[len(shape) - len(pads):]
    for size, (before, after) in zip(sizes, pads):
        if min(before, after) < 0:
            raise ValueError(f"{layer}: padding must be >= 0, got {pads}")
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(f"{layer}: reflect padding {pads} must be smaller than the input size {tuple(sizes)}")
        if mode == "circular" and max(before, after) > size:
            raise ValueError(f"{layer}: circular padding {pads} must be at most the input size {tuple(sizes)}")


def pad_forward(x, pads, mode="zeros", layer="pad"):
    """x padded on its last len(pads) axes by ``pads`` ((before, after) per axis) in ``mode``.
    Returns (out, cache). ``layer`` names the caller in errors."""
    pads = tuple((int(a), int(b)) for a, b in pads)
    _check(x.shape, pads, mode, layer)
    width = ((0, 0),) * (x.ndim - len(pads)) + pads
    out = get_array_module(x).pad(x, width, mode=_NUMPY_MODES[mode])
    return out, (x.shape, pads, mode)


def _fold_axis(d, axis, before, after, mode):
    """Adjoint of padding one axis: (.., size + before + after, ..) -> (.., size, ..)."""
    xp = get_array_module(d)
    d = xp.moveaxis(d, axis, 0)
    size = d.shape[0] - before - after
    g = d[before: before + size].copy()  # a fresh array: the additions below never touch d
    head, tail = d[:before], d[before + size:]
    if mode == "reflect":  # head[t] copied x[before - t], tail[t] copied x[size - 2 - t]
        g[1: before + 1] += head[::-1]
        g[size - 1 - after: size - 1] += tail[::-1]
    elif mode == "replicate":  # every head entry copied x[0], every tail entry x[size - 1]
        g[0] += head.sum(axis=0)
        g[size - 1] += tail.sum(axis=0)
    elif mode == "circular":  # head copied x[size - before:], tail copied x[:after]
        g[size - before:] += head
        g[:after] += tail
    return xp.moveaxis(g, 0, axis)


def pad_backward(dout, cache):
    """dx of pad_forward: the interior of dout plus the gradients of the entries copied from it."""
    shape, pads, mode = cache
    first = len(shape) - len(pads)
    d = dout
    for k in reversed(range(len(pads))):
        d = _fold_axis(d, first + k, pads[k][0], pads[k][1], mode)
    xp = get_array_module(dout)
    return xp.ascontiguousarray(d) if d is not dout else d.copy()


def pad_backward_naive(dout, shape, pads, mode="zeros"):
    """Loop twin of pad_backward: pad an array of flat indices the same way, then add every
    entry of dout to the input entry whose index landed there."""
    import numpy as np

    pads = tuple((int(a), int(b)) for a, b in pads)
    spatial = shape[len(shape) - len(pads):]
    index = np.arange(int(np.prod(spatial))).reshape(spatial)
    padded = index if mode == "zeros" else np.pad(index, pads, mode=_NUMPY_MODES[mode])
    d = np.asarray(dout).reshape(dout.shape[: len(shape) - len(pads)] + (-1,))
    dx = np.zeros(d.shape[:-1] + (index.size,), dtype=d.dtype)
    if mode == "zeros":  # only the interior came from x
        inner = tuple(slice(a, a + s) for (a, _), s in zip(pads, spatial))
        d = np.asarray(dout)[(Ellipsis,) + inner].reshape(d.shape[:-1] + (-1,))
        padded = index
    for position, source in enumerate(padded.reshape(-1)):
        dx[..., source] += d[..., position]
    return dx.reshape(shape)
