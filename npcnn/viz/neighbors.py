"""Nearest neighbours of images in pixel space and in a network's feature space.

In pixel space, neighbours share stroke positions; in the last hidden layer's space (the input of
the classifier) they share the class even when the pixels differ: the picture of what the
network has learned to ignore (Krizhevsky et al. 2012, figure 4).

Squared Euclidean distances are computed as ||q||^2 + ||d||^2 - 2 q.d in blocks of queries.
"""

import numpy as np

from .. import backend
from ._common import layer_activations


def pairwise_sq_distances(a, b):
    """(len(a), len(b)) squared Euclidean distances between the rows of a and b (float64, >= 0)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)  # rounding can leave tiny negatives for identical rows


def embed(x, model=None, layer=None, batch_size=256):
    """Rows to compare: the flattened pixels (``model=None``) or the activations of ``layer``
    (default: the last hidden layer, i.e. the input of the last Linear)."""
    if model is None:
        a = np.asarray(backend.to_numpy(x))
    else:
        a = layer_activations(model, x, layer, what="output", batch_size=batch_size)
    return a.reshape(len(a), -1)


def nearest_neighbors(queries, database, k=5, model=None, layer=None, batch_size=256, exclude_self=False):
    """(indices (Q, k), distances (Q, k)): the ``k`` closest database items for each query,
    nearest first, by Euclidean distance in pixel space or, with ``model``, in feature space.

    ``exclude_self=True`` (queries taken from the database itself) drops matches at distance 0.

    Args:
        queries (array): (Q, ...) images (or any rows).
        database (array): (D, ...) items of the same shape.
        k (int, default 5): neighbours per query.
        model (Module, default None): None compares pixels; a model compares the activations
            of ``layer`` (run in eval mode, no caches).
        layer (Module or str, default None): with ``model``: the layer whose output is the
            feature; None: the input of the last Linear (the last hidden layer).
        batch_size (int, default 256): rows per forward pass and per distance block.
        exclude_self (bool, default False): skip database items at distance 0 (ties broken by
            index, so the order is deterministic).
    """
    q = embed(queries, model, layer, batch_size)
    d = embed(database, model, layer, batch_size)
    if k > len(d) - (1 if exclude_self else 0):
        raise ValueError(f"nearest_neighbors: k={k} but the database holds {len(d)} items")
    indices, distances = [], []
    for start in range(0, len(q), batch_size):
        dist = pairwise_sq_distances(q[start:start + batch_size], d)
        if exclude_self:
            dist[dist <= 1e-12 * max(float(dist.max()), 1.0)] = np.inf
        idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
        indices.append(idx)
        distances.append(np.sqrt(np.take_along_axis(dist, idx, axis=1)))
    return np.concatenate(indices), np.concatenate(distances)


def plot_neighbors(queries, database, path, k=6, model=None, layer=None, title=None):
    """Rows: each query followed by its ``k`` neighbours (pixel space, then feature space when a
    model is given). Returns ``{space: indices}``."""
    from .plots import plot_images

    spaces = {"pixels": None} if model is None else {"pixels": None, "features": model}
    results, shown, titles = {}, [], []
    for name, m in spaces.items():
        idx, dist = nearest_neighbors(queries, database, k, model=m, layer=layer)
        results[name] = idx
    for i in range(len(queries)):
        for name, idx in results.items():
            shown.append(backend.to_numpy(queries[i]))
            titles.append(f"query ({name})")
            for j in idx[i]:
                shown.append(backend.to_numpy(database[j]))
                titles.append("")
    plot_images(shown, path, titles=titles, ncols=k + 1, suptitle=title)
    return results
