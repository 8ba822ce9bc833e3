"""Dropout kernels (inverted dropout): scale at training time so evaluation is the identity.

Training:  keep ~ Bernoulli(1 - p),  out = x * keep / (1 - p),  dx = dout * keep / (1 - p),
so E[out] = x. The mask is stored as booleans (one byte per entry) and drawn from npcnn's
generator (``backend.rng()``), so ``npcnn.manual_seed`` makes it reproducible.
Dropout2d draws one keep per (sample, channel) and broadcasts it over the spatial positions.
p = 1 drops everything (out = 0, no division by zero); p = 0 is the identity.
"""

from .. import backend
from ..backend import get_array_module


def _scale(p):
    """1 / (1 - p), and 0 for p = 1 (everything is dropped, nothing to rescale)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


def dropout_mask(shape, p):
    """Boolean keep-mask of ``shape``, each entry True with probability 1 - p."""
    return backend.rng().random(shape, dtype="float32") >= p


def dropout_forward(x, p, mask_shape=None):
    """out = x * keep / (1 - p). ``mask_shape`` broadcasts against x (default: x's shape)."""
    p = float(p)
    if p == 0.0:
        return x, (None, 1.0)
    keep = dropout_mask(x.shape if mask_shape is None else mask_shape, p)
    scale = _scale(p)
    return x * keep * scale, (keep, scale)


def dropout_backward(dout, cache):
    """dx = dout * keep / (1 - p) (the same mask as the forward)."""
    keep, scale = cache
    if keep is None:
        return dout
    return dout * keep * scale


def channel_mask_shape(x):
    """Dropout2d's mask shape: one entry per (sample, channel), (N, C, 1, 1) for (N, C, H, W)."""
    return x.shape[:2] + (1,) * (x.ndim - 2)


def dropout_naive(x, keep, p):
    """Loop twin: given a keep mask (broadcastable to x), out[i] = x[i] / (1 - p) if kept, else 0."""
    xp = get_array_module(x)
    keep = xp.broadcast_to(keep, x.shape)
    out = xp.zeros_like(x)
    flat_out, flat_x, flat_keep = out.reshape(-1), x.reshape(-1), keep.reshape(-1)
    for i in range(x.size):
        if flat_keep[i]:
            flat_out[i] = flat_x[i] / (1.0 - p)
    return out
