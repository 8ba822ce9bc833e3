"""Upsampling kernels (PyTorch's ``F.interpolate`` modes "nearest", "linear", "bilinear").

Interpolation is separable and linear: along each spatial axis every output position o reads
at most two input positions,

    out[o] = w0[o] x[i0[o]] + w1[o] x[i1[o]]            (nearest: w0 = 1, w1 = 0)

so the forward gathers (width first, then height: PyTorch's order of operations) and the
backward applies the transposed map, an (in, out) matrix per axis:  dx = A_h^T dout A_w.

Source coordinates, PyTorch's rules (``scale`` = 1 / scale_factor when a scale factor is given,
else in / out):
    nearest                         i0 = min(floor(o scale), in - 1)
    linear, align_corners=False     src = max(scale (o + 1/2) - 1/2, 0)
    linear, align_corners=True      src = o (in - 1) / (out - 1)      (0 when out = 1)
    i0 = floor(src),  i1 = min(i0 + 1, in - 1),  w1 = src - i0,  w0 = 1 - w1.
"""

import math

import numpy as np

from .. import backend
from ..backend import get_array_module


def output_size(in_size, size=None, scale_factor=None):
    """Output spatial size: ``size`` itself, or floor(in * scale_factor) per axis."""
    if size is not None:
        return tuple(size)
    return tuple(int(math.floor(n * s)) for n, s in zip(in_size, scale_factor))


def axis_weights(n_in, n_out, mode, align_corners=False, scale_factor=None):
    """(i0, i1, w0, w1) NumPy arrays of length ``n_out`` for one axis (float64 weights)."""
    o = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
        i0 = np.minimum(np.floor(o * scale).astype(np.int64), n_in - 1)
        return i0, i0, np.ones(n_out), np.zeros(n_out)
    if align_corners:
        src = o * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
        src = np.maximum(scale * (o + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    return i0, i1, 1.0 - w1, w1


def _interp_axis(x, axis, table):
    """One axis of the forward: w0 x[i0] + w1 x[i1] along ``axis``."""
    xp = get_array_module(x)
    i0, i1, w0, w1 = table
    shape = [1] * x.ndim
    shape[axis] = -1
    first = xp.take(x, xp.asarray(i0), axis=axis)
    if not w1.any():
        return first  # nearest (or exact positions): a pure gather
    w0 = xp.asarray(w0, dtype=x.dtype).reshape(shape)
    w1 = xp.asarray(w1, dtype=x.dtype).reshape(shape)
    return w0 * first + w1 * xp.take(x, xp.asarray(i1), axis=axis)


def _matrix(table, n_in, dtype, xp):
    """The (out, in) interpolation matrix A of one axis: out = A x."""
    i0, i1, w0, w1 = table
    a = np.zeros((len(i0), n_in), dtype=np.float64)
    rows = np.arange(len(i0))
    np.add.at(a, (rows, i0), w0)
    np.add.at(a, (rows, i1), w1)
    return xp.asarray(a.astype(dtype))


def upsample_forward(x, size=None, scale_factor=None, mode="nearest", align_corners=False):
    """x (N, C, *spatial) with 1 or 2 spatial axes -> (N, C, *out_size); returns (out, cache).

    ``scale_factor`` is a tuple with one float per spatial axis (or None when ``size`` is given).
    """
    spatial = x.shape[2:]
    out_size = output_size(spatial, size, scale_factor)
    factors = scale_factor if scale_factor is not None else (None,) * len(spatial)
    tables = [axis_weights(n_in, n_out, mode, align_corners, f) for n_in, n_out, f in zip(spatial, out_size, factors)]
    out = x
    for axis in reversed(range(len(spatial))):  # the last axis (width) first, as PyTorch
        out = _interp_axis(out, 2 + axis, tables[axis])
    return out, (tables, spatial, x.dtype)


def upsample_backward(dout, cache):
    """dx = dout with the transposed map applied along each axis: A_h^T dout A_w."""
    tables, spatial, dtype = cache
    xp = get_array_module(dout)
    dx = dout
    for axis, (table, n_in) in enumerate(zip(tables, spatial)):
        a = _matrix(table, n_in, dtype, xp)  # (out, in)
        moved = xp.moveaxis(dx, 2 + axis, -1)
        dx = xp.moveaxis(moved @ a, -1, 2 + axis)
    return xp.ascontiguousarray(dx)


def upsample_naive(x, size=None, scale_factor=None, mode="nearest", align_corners=False):
    """Loop twin: each output pixel from PyTorch's scalar formulas (tests only)."""
    x = backend.to_numpy(x)
    spatial = x.shape[2:]
    out_size = output_size(spatial, size, scale_factor)
    factors = scale_factor if scale_factor is not None else (None,) * len(spatial)

    def source(o, n_in, n_out, factor):
        """(i0, i1, w0, w1) of output position o along one axis."""
        scale = 1.0 / factor if factor else n_in / n_out
        if mode == "nearest":
            i = min(int(math.floor(o * scale)), n_in - 1)
            return i, i, 1.0, 0.0
        if align_corners:
            src = o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            src = max(scale * (o + 0.5) - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        return i0, i1, 1.0 - (src - i0), src - i0

    out = np.zeros(x.shape[:2] + out_size, dtype=x.dtype)
    for index in np.ndindex(*out_size):
        taps = [source(o, n_in, n_out, f) for o, n_in, n_out, f in zip(index, spatial, out_size, factors)]
        value = 0.0
        for corner in np.ndindex(*(2,) * len(spatial)):
            weight = 1.0
            where = []
            for (i0, i1, w0, w1), bit in zip(taps, corner):
                weight *= w1 if bit else w0
                where.append(i1 if bit else i0)
            value = value + weight * x[(slice(None), slice(None)) + tuple(where)]
        out[(slice(None), slice(None)) + index] = value
    return out
