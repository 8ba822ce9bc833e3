"""PyTorch's map-style dataset protocol: :class:`Dataset`, :class:`TensorDataset`, :class:`Subset`,
:class:`ConcatDataset` and :func:`random_split`.

A map-style dataset is any object with ``__len__`` and ``__getitem__(i)`` for an int ``i`` in
``range(len(dataset))``, returning one sample (an array, a number, or a tuple, list or dict of
them). :class:`npcnn.data.DataLoader` calls it once per sample and stacks the samples into a batch
(:func:`npcnn.data.default_collate`).

Array datasets have a fast path: a dataset whose class sets ``batch_indexing = True`` promises
that ``dataset[index_array]`` returns the whole batch, exactly what stacking ``dataset[i]`` for
every ``i`` in ``index_array`` would give; the loader then takes a batch with one fancy indexing
instead of ``batch_size`` Python calls. :class:`TensorDataset`, :class:`npcnn.data.ImageDataset`,
and :class:`Subset` / :class:`ConcatDataset` of such datasets keep that promise; a user's dataset
without the attribute is always read one int at a time, so a ``__getitem__`` that happens to
accept arrays but returns something else cannot produce a wrongly shaped batch.
"""

import bisect
import math
import numbers
import warnings
from typing import Any, List, Sequence, Union

import numpy as np

from .. import backend


def supports_batch_indexing(dataset: Any) -> bool:
    """True if ``dataset[index_array]`` is promised to return a whole batch (see the module docstring):
    a NumPy/CuPy array of at least one dimension, or an object whose ``batch_indexing`` is True."""
    if hasattr(dataset, "shape") and hasattr(dataset, "ndim") and not isinstance(dataset, type):
        return dataset.ndim >= 1
    return getattr(dataset, "batch_indexing", False) is True


class Dataset:
    """Base class of map-style datasets, as ``torch.utils.data.Dataset``.

    Subclasses define ``__getitem__(self, index)`` for an int index in ``range(len(self))`` and
    ``__len__(self)``. ``a + b`` is ``ConcatDataset([a, b])``. Set the class attribute
    ``batch_indexing = True`` only if ``__getitem__`` also takes an int array and returns the
    batch that stacking the single samples would give (the loader's fast path).
    """

    batch_indexing: bool = False

    def __getitem__(self, index: int) -> Any:
        """The sample at ``index`` (subclasses must override)."""
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(self, index)")

    def __len__(self) -> int:
        """The number of samples (subclasses must override)."""
        raise NotImplementedError(f"{type(self).__name__} must define __len__(self)")

    def __add__(self, other: Any) -> "ConcatDataset":
        """``ConcatDataset([self, other])``."""
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Arrays of equal length seen as one dataset: ``ds[i] == (a[i], b[i], ...)``.

    Takes NumPy or CuPy arrays (lists and other array-likes are converted with ``numpy.asarray``),
    each with at least one dimension and the same first dimension. ``ds[index_array]`` gives the
    batch ``(a[index_array], b[index_array], ...)`` (the loader's fast path). ``tensors`` (PyTorch's
    name) and ``arrays`` hold the arrays.
    """

    batch_indexing = True

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array")
        arrays = tuple(a if hasattr(a, "shape") else np.asarray(a) for a in arrays)
        for k, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {k} is 0-dimensional; expected (N, ...) arrays")
            if a.dtype == object:
                raise TypeError(f"TensorDataset: array {k} has dtype object (ragged or mixed contents); "
                                f"expected numeric arrays of equal shape per sample")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset: arrays have different lengths {lengths}")
        self.arrays = arrays

    @property
    def tensors(self):
        """The arrays, PyTorch's attribute name."""
        return self.arrays

    def __len__(self):
        """Length of the arrays."""
        return len(self.arrays[0])

    def __getitem__(self, idx):
        """``(a[idx], b[idx], ...)`` for an int, slice or index array ``idx``."""
        return tuple(a[idx] for a in self.arrays)

    def __repr__(self):
        shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in self.arrays)
        return f"TensorDataset({shapes})"


def _check_index(name, index, n):
    """``index`` as a Python int in [0, n) (negative counts from the end, as for sequences)."""
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{name}: index must be an int, got {type(index).__name__}")
    index = int(index)
    if not -n <= index < n:
        raise IndexError(f"{name}: index {index} out of range for {n} samples")
    return index + n if index < 0 else index


def _check_batch_index(name, dataset, idx):
    """A slice or index array is only for datasets whose parts all support batch indexing."""
    if not dataset.batch_indexing:
        raise TypeError(f"{name}: index must be an int, got {type(idx).__name__} (the dataset inside does not "
                        f"support batch indexing; DataLoader reads it one sample at a time)")


class Subset(Dataset):
    """The samples ``indices`` of ``dataset``, in that order: ``Subset(ds, idx)[i] == ds[idx[i]]``.

    ``indices`` is any sequence of ints in ``range(len(dataset))`` (kept as an int64 array).
    Batch indexing passes through when ``dataset`` supports it.
    """

    def __init__(self, dataset: Any, indices: Union[Sequence[int], np.ndarray]) -> None:
        self.dataset = dataset
        idx = np.asarray(backend.to_numpy(indices) if hasattr(indices, "shape") else list(indices))
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError(f"Subset: indices must be a 1-D sequence of ints, got {idx.dtype} of shape {idx.shape}")
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)][0]
            raise IndexError(f"Subset: index {bad} out of range for a dataset of {n} samples")
        self.indices = np.where(idx < 0, idx + n, idx).astype(np.int64)

    @property
    def batch_indexing(self):
        """True when the underlying dataset supports batch indexing."""
        return supports_batch_indexing(self.dataset)

    def __len__(self):
        """Number of indices."""
        return len(self.indices)

    def __getitem__(self, idx):
        """``dataset[indices[idx]]``; ``idx`` an int, or a slice or index array when batch indexing."""
        if isinstance(idx, numbers.Integral):
            return self.dataset[int(self.indices[_check_index("Subset", idx, len(self))])]
        _check_batch_index("Subset", self, idx)
        return self.dataset[self.indices[idx]]

    def __repr__(self):
        return f"Subset({len(self)} of {len(self.dataset)} samples)"


class ConcatDataset(Dataset):
    """Several datasets one after the other: sample ``i`` of the first, then of the second, ...

    ``cumulative_sizes[k]`` is the number of samples in the first ``k + 1`` datasets (PyTorch's
    attribute). Batch indexing is supported when every part supports it.
    """

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one dataset")
        for k, d in enumerate(self.datasets):
            if not (hasattr(d, "__len__") and hasattr(d, "__getitem__")):
                raise TypeError(f"ConcatDataset: part {k} ({type(d).__name__}) has no __len__ and __getitem__")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    @property
    def batch_indexing(self):
        """True when every part supports batch indexing."""
        return all(supports_batch_indexing(d) for d in self.datasets)

    def __len__(self):
        """Total number of samples."""
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        """Sample ``idx`` (an int), or the batch of an index array / slice when batch indexing."""
        if isinstance(idx, numbers.Integral):
            i = _check_index("ConcatDataset", idx, len(self))
            part = bisect.bisect_right(self.cumulative_sizes, i)
            start = self.cumulative_sizes[part - 1] if part else 0
            return self.datasets[part][i - start]
        _check_batch_index("ConcatDataset", self, idx)
        return self._gather(np.arange(len(self))[backend.to_numpy(idx)])

    def _gather(self, idx):
        """The batch of global indices ``idx``: one batch indexing per part, put back in order."""
        part = np.searchsorted(self.cumulative_sizes, idx, side="right")
        starts = np.concatenate([[0], self.cumulative_sizes[:-1]])
        pieces, order = [], []
        for k in np.unique(part):
            rows = np.flatnonzero(part == k)
            pieces.append(self.datasets[k][idx[rows] - starts[k]])
            order.append(rows)
        inverse = np.argsort(np.concatenate(order), kind="stable")
        if not isinstance(pieces[0], tuple):
            return _take_concat([pieces], inverse)[0]
        return tuple(_take_concat(list(zip(*pieces)), inverse))

    def __repr__(self):
        return f"ConcatDataset({len(self.datasets)} datasets, {len(self)} samples)"


def _take_concat(columns, inverse):
    """Each column (a list of per-part batches) concatenated and reordered by ``inverse``."""
    out = []
    for parts in columns:
        xp = backend.get_array_module(parts[0])
        out.append(xp.concatenate(parts)[xp.asarray(inverse)])
    return out


def _split_lengths(lengths, n):
    """PyTorch's rule: ints summing to ``n``, or fractions summing to 1 (floors, then the remainder
    handed out one by one from the first split)."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: expected at least one length")
    for v in lengths:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
            raise ValueError(f"random_split: lengths must be non-negative ints or fractions, got {lengths}")
    total = sum(lengths)
    if all(isinstance(v, numbers.Integral) for v in lengths):
        if total != n:
            raise ValueError(f"random_split: the lengths {lengths} sum to {total}, not to the {n} samples of the "
                             f"dataset (give ints summing to {n}, or fractions summing to 1)")
        return [int(v) for v in lengths]
    if not (math.isclose(total, 1.0) and total <= 1 + 1e-12) or any(v > 1 for v in lengths):
        raise ValueError(f"random_split: fractions {lengths} must each be in [0, 1] and sum to 1, got {total}")
    sizes = [int(math.floor(n * v)) for v in lengths]
    for i in range(n - sum(sizes)):
        sizes[i % len(sizes)] += 1
    for k, size in enumerate(sizes):
        if size == 0:
            warnings.warn(f"random_split: split {k} is empty (fraction {lengths[k]} of {n} samples)", stacklevel=3)
    return sizes


def make_generator(generator: Union[None, int, np.random.Generator], who: str,
                   name: str = "generator") -> np.random.Generator:
    """A numpy Generator from the ``generator`` (or ``seed``) argument of ``who``: ``None`` -> seeded
    from npcnn's generator (so ``npcnn.manual_seed`` fixes it); an int -> seeded with it; a
    ``numpy.random.Generator`` -> itself."""
    if generator is None:
        return np.random.default_rng(backend.draw_seed())
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{who}: {name} must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(generator).__name__}")


def random_split(dataset: Any, lengths: Sequence[Union[int, float]],
                 generator: Union[None, int, np.random.Generator] = None) -> List[Subset]:
    """Split ``dataset`` into non-overlapping random :class:`Subset`\\ s, as ``torch.utils.data.random_split``.

    Args:
        dataset: any map-style dataset (or a tuple of arrays, made a :class:`TensorDataset`).
        lengths: the sizes of the splits, ints summing to ``len(dataset)``, or fractions summing to 1
            (each split gets ``floor(n * fraction)`` samples, then the remaining samples go one each
            to the first splits, in order).
        generator: ``None`` (seeded from ``npcnn.backend.rng()``, so ``npcnn.manual_seed`` fixes the
            split), an int seed, or a ``numpy.random.Generator``.

    Returns:
        A list of :class:`Subset`, one per length; together they hold every sample exactly once.
    """
    if isinstance(dataset, tuple):
        dataset = TensorDataset(*dataset)
    n = len(dataset)
    sizes = _split_lengths(lengths, n)
    order = make_generator(generator, "random_split").permutation(n)
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, order[bounds[k]:bounds[k + 1]]) for k in range(len(sizes))]
