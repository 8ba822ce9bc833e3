"""Embedding kernels: a lookup table of rows, out = W[indices].

Shapes: indices (*) of integers in [0, num_embeddings), W (num_embeddings, embedding_dim),
out (*, embedding_dim).
Gradient: each output row is a copy of one row of W, so row W[k] receives the sum of the
dout rows of every position that looked it up,

    dW[k] = sum over positions p with indices[p] == k of dout[p]

(a scatter-add: a word that occurs three times in the batch collects three gradients). The row
``padding_idx`` gets none. The integer indices have no gradient.
"""

from .. import backend
from ..backend import get_array_module


def embedding_forward(indices, weight):
    """Returns (out, cache): out = weight[indices], a new array of shape indices.shape + (D,)."""
    out = weight[indices]  # integer-array indexing copies, so out never aliases the table
    return out, (indices, weight.shape)


def embedding_backward(dout, cache, padding_idx=None):
    """Returns dW (the shape of the table): the dout rows scatter-added at their indices, with
    the row ``padding_idx`` (when not None) left at zero."""
    indices, shape = cache
    xp = get_array_module(dout)
    dw = xp.zeros(shape, dtype=dout.dtype)
    # Repeated indices must add up, so no plain dw[indices] += rows (that keeps only one of them).
    backend.scatter_add(dw, indices.reshape(-1), dout.reshape(-1, shape[1]))
    if padding_idx is not None:
        dw[padding_idx] = 0.0
    return dw


def embedding_naive(indices, weight):
    """Loop twin of embedding_forward: out[p, d] = weight[indices[p], d], one entry at a time."""
    xp = get_array_module(weight)
    flat = indices.reshape(-1)
    out = xp.zeros((flat.size, weight.shape[1]), dtype=weight.dtype)
    for p in range(flat.size):
        for d in range(weight.shape[1]):
            out[p, d] = weight[int(flat[p]), d]
    return out.reshape(tuple(indices.shape) + (weight.shape[1],))


def embedding_backward_naive(dout, indices, num_embeddings, padding_idx=None):
    """Loop twin of embedding_backward: dW[k] += dout[p] for every position p with indices[p] == k."""
    xp = get_array_module(dout)
    flat = indices.reshape(-1)
    rows = dout.reshape(flat.size, -1)
    dw = xp.zeros((num_embeddings, rows.shape[1]), dtype=dout.dtype)
    for p in range(flat.size):
        k = int(flat[p])
        if k == padding_idx:
            continue
        for d in range(rows.shape[1]):
            dw[k, d] += rows[p, d]
    return dw
