"""Fully connected layer kernels: out = x W^T + b.

Shapes: x (N, *, in), W (out, in), b (out,), out (N, *, out).
Gradients (the leading dimensions flattened to rows):
    dx = dout W          dW = dout^T x          db = sum over rows of dout
"""

from ..backend import get_array_module


def linear_forward(x, w, b=None):
    """out = x W^T + b; the cache is (x, W, whether there is a bias)."""
    out = x @ w.T
    if b is not None:
        out += b  # out is a fresh array, so adding in place is safe
    return out, (x, w, b is not None)


def linear_backward(dout, cache, need_dx=True, need_dw=True):
    """Returns (dx, dW, db); a gradient that is not needed comes back as None."""
    x, w, has_bias = cache
    rows = dout.reshape(-1, dout.shape[-1])
    dx = dout @ w if need_dx else None
    dw = rows.T @ x.reshape(-1, x.shape[-1]) if need_dw else None
    db = rows.sum(axis=0) if has_bias else None
    return dx, dw, db


def linear_naive(x, w, b=None):
    """Loop twin of linear_forward for 2-D x: out[n, o] = sum_i x[n, i] W[o, i] + b[o]."""
    out = get_array_module(x).zeros((x.shape[0], w.shape[0]), dtype=x.dtype)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            total = 0.0
            for i in range(x.shape[1]):
                total += x[n, i] * w[o, i]
            out[n, o] = total + (b[o] if b is not None else 0.0)
    return out
