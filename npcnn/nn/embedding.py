"""Embedding: a trainable lookup table of vectors, one row per token id (word embeddings)."""

import numpy as np

from .. import backend
from ..functional.embedding import embedding_backward, embedding_forward
from . import init
from .module import Module
from .parameter import Parameter


class Embedding(Module):
    """out = W[indices]: each integer index picks one row of the table.

    Shapes: indices (*) integers in [0, num_embeddings) -> out (*, embedding_dim); the table
    ``weight`` is (num_embeddings, embedding_dim), PyTorch's layout, initialized N(0, 1) as
    PyTorch does. Text is usually (N, L) token ids -> (N, L, D); a Conv1d wants (N, D, L), so
    transpose the last two axes before it.

    ``padding_idx`` (optional, negative counts from the end): that row starts at zero and never
    receives a gradient, so a padding token stays the zero vector while the others train.

    Gradient: dL/dW[k] = sum of dout[p] over the positions p with indices[p] == k (a scatter-add;
    the row ``padding_idx`` gets 0). The indices are integers and have no gradient:
    ``backward`` returns None.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if self.num_embeddings < 1 or self.embedding_dim < 1:
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be >= 1, got "
                             f"{num_embeddings} and {embedding_dim}")
        if padding_idx is not None:
            if not -self.num_embeddings <= int(padding_idx) < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be within num_embeddings = {self.num_embeddings}"
                                 f" (from -{self.num_embeddings} to {self.num_embeddings - 1}), got {padding_idx}")
            padding_idx = int(padding_idx) % self.num_embeddings  # PyTorch stores it non-negative
        self.padding_idx = padding_idx
        xp, dtype = backend.xp(), backend.get_default_dtype()
        self.weight = Parameter(xp.empty((self.num_embeddings, self.embedding_dim), dtype=dtype))
        init.normal_(self.weight)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0.0

    def forward(self, indices):
        _check_indices(indices, self.num_embeddings)
        out, cache = embedding_forward(indices, self.weight.data)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        cache = self.pop_saved()
        if self.weight.requires_grad:
            self.weight.accumulate_grad(embedding_backward(dout, cache, self.padding_idx))
        return None

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else text + f", padding_idx={self.padding_idx}"


def _check_indices(indices, num_embeddings):
    """Indices must be an integer array with every value in [0, num_embeddings)."""
    if not hasattr(indices, "dtype"):
        raise TypeError(f"Embedding: expected an integer array of token ids, got {type(indices).__name__}")
    kind = np.dtype(indices.dtype).kind
    if kind not in "iu":
        raise TypeError(f"Embedding: expected integer indices (int64 token ids), got dtype {indices.dtype}"
                        + ("; convert with x.astype(np.int64)" if kind == "f" else ""))
    if indices.size == 0:
        return
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= num_embeddings:
        bad = low if low < 0 else high
        raise IndexError(f"Embedding: index {bad} is out of range for num_embeddings = {num_embeddings} "
                         f"(expected 0 <= index < {num_embeddings})")
