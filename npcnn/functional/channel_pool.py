"""Max pooling across channels (NC...): each output channel is the maximum over a window of
consecutive input channels, at every position.

Geometry: with C input channels, a window of ``k`` channels and stride ``s`` there are
``C_out = floor((C - k) / s) + 1`` output channels, and output channel ``o`` covers input channels
``o*s .. o*s + k - 1``. With ``s = k`` (the default) the windows tile the channels: this is the
pooling unit of a maxout network (Goodfellow et al., 2013) and the lecture's "max pooling across
channels", which lets several filters that detect one pattern in different poses (a 5 at three
angles) answer as one invariant unit.

    out[n, o, ...] = max_{j < k} x[n, o*s + j, ...]
    dx[n, c, ...]  = sum over windows o whose arg-max is c of dout[n, o, ...]

Ties go to the first channel of the window; a NaN in a window wins (as PyTorch's max pooling).
"""

from ..backend import get_array_module


def channel_pool_output_size(channels, kernel_size, stride):
    """Number of output channels, ``floor((channels - kernel_size) / stride) + 1``."""
    return (channels - kernel_size) // stride + 1


def _window(j, stride, out_channels):
    """The channel slice that holds member ``j`` of every window: j, j + s, ..., j + s (C_out - 1)."""
    return slice(j, j + stride * (out_channels - 1) + 1, stride)


def max_pool_channels_forward(x, kernel_size, stride=None):
    """Max over windows of ``kernel_size`` consecutive channels (axis 1), ``stride`` apart
    (default ``kernel_size``). Returns ``(out, cache)``; ``x`` is (N, C, *)."""
    xp = get_array_module(x)
    k = int(kernel_size)
    s = k if stride is None else int(stride)
    out_channels = channel_pool_output_size(x.shape[1], k, s)
    members = xp.stack([x[:, _window(j, s, out_channels)] for j in range(k)])  # (k, N, C_out, *)
    index = xp.argmax(members, axis=0)  # first maximum wins ties; argmax returns a NaN's place
    out = xp.take_along_axis(members, index[None], axis=0)[0]
    return out, (index, x.shape, k, s)


def max_pool_channels_backward(dout, cache):
    """dx: each output's gradient goes to its window's arg-max channel (windows may overlap)."""
    index, x_shape, k, s = cache
    xp = get_array_module(dout)
    out_channels = dout.shape[1]
    dx = xp.zeros(x_shape, dtype=dout.dtype)
    zero = xp.zeros((), dtype=dout.dtype)
    for j in range(k):
        # within one member slice every channel appears once, so += is a plain (not scatter) add
        dx[:, _window(j, s, out_channels)] += xp.where(index == j, dout, zero)
    return dx


def max_pool_channels_naive(x, kernel_size, stride=None):
    """Loop twin of max_pool_channels_forward: one output element at a time."""
    import numpy as np

    x = np.asarray(x)
    k = int(kernel_size)
    s = k if stride is None else int(stride)
    out_channels = channel_pool_output_size(x.shape[1], k, s)
    out = np.empty((x.shape[0], out_channels) + x.shape[2:], dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(out_channels):
            for pos in np.ndindex(*x.shape[2:]):
                best = x[(n, o * s) + pos]
                for j in range(1, k):
                    value = x[(n, o * s + j) + pos]
                    if value > best or (value != value and best == best):  # NaN wins, as PyTorch
                        best = value
                out[(n, o) + pos] = best
    return out


def max_pool_channels_backward_naive(dout, x, kernel_size, stride=None):
    """Loop twin of the backward: dout[n, o, pos] added to the first arg-max channel of window o."""
    import numpy as np

    x, dout = np.asarray(x), np.asarray(dout)
    k = int(kernel_size)
    s = k if stride is None else int(stride)
    dx = np.zeros(x.shape, dtype=dout.dtype)
    for n in range(x.shape[0]):
        for o in range(dout.shape[1]):
            for pos in np.ndindex(*x.shape[2:]):
                window = [x[(n, o * s + j) + pos] for j in range(k)]
                dx[(n, o * s + int(np.argmax(window))) + pos] += dout[(n, o) + pos]
    return dx
