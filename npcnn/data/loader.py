"""Mini-batches: :class:`DataLoader` over map-style datasets.

Two ways to take a batch, chosen once per loader:

* **batch indexing** (the fast path): for arrays, a tuple of arrays, :class:`TensorDataset`,
  :class:`npcnn.data.ImageDataset` and any dataset whose ``batch_indexing`` is True (see
  :mod:`npcnn.data.dataset`), a batch is ``dataset[index_array]``: one gather, not ``batch_size``
  Python calls;
* **one sample at a time** (every other dataset, PyTorch's protocol): ``dataset[i]`` for each int
  ``i`` of the batch, stacked by ``collate_fn`` (default :func:`npcnn.data.default_collate`).

Each epoch visits the samples in a permutation drawn from the loader's own generator, whose state
(plus the position inside the current epoch) is saved by :meth:`DataLoader.state_dict`, so a
resumed run sees exactly the batches it would have.
"""

import math
import numbers
from typing import Any, Callable, Iterable, Optional, Union

import numpy as np

from .. import backend
from .collate import collate_samples
from .dataset import TensorDataset, make_generator, supports_batch_indexing

__all__ = ["DataLoader", "TensorDataset"]


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"DataLoader: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def _check_batch_size(batch_size):
    if batch_size is None:
        raise ValueError("DataLoader: batch_size must be a positive int, got None (PyTorch's 'no automatic "
                         "batching' is not supported: use batch_size=1, or index the dataset directly)")
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r} "
                         f"({type(batch_size).__name__})")
    return int(batch_size)


def _as_dataset(dataset):
    """A tuple (or list) of arrays becomes a :class:`TensorDataset`; anything else must be map-style."""
    if isinstance(dataset, (tuple, list)) and dataset and all(hasattr(a, "shape") for a in dataset):
        return TensorDataset(*dataset)
    if isinstance(dataset, dict):
        raise TypeError("DataLoader: a dict is not a dataset (its keys are not 0..n-1); wrap its arrays as "
                        "TensorDataset(d['x'], d['y']) or write a Dataset whose __getitem__ returns a dict")
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"DataLoader: expected a tuple of arrays or a map-style dataset with __len__ and "
                        f"__getitem__(int), got {type(dataset).__name__} (iterable-style datasets and "
                        f"generators are not supported: collect the samples into a list or arrays)")
    return dataset


def _check_sampler(sampler, shuffle):
    if sampler is None:
        return None
    if shuffle:
        raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive (the sampler decides "
                         "the order)")
    if not hasattr(sampler, "__iter__"):
        raise TypeError(f"DataLoader: sampler must be an iterable of indices, got {type(sampler).__name__}")
    return sampler


def _check_ignored(num_workers, timeout, prefetch_factor):
    if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
        raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
    if not isinstance(timeout, numbers.Real) or timeout < 0:
        raise ValueError(f"DataLoader: timeout must be a number >= 0, got {timeout!r}")
    if prefetch_factor is not None and (not isinstance(prefetch_factor, numbers.Integral) or prefetch_factor < 1):
        raise ValueError(f"DataLoader: prefetch_factor must be None or an int >= 1, got {prefetch_factor!r}")


class DataLoader:
    """Iterates over ``dataset`` in batches of backend arrays, as ``torch.utils.data.DataLoader``.

    Args:
        dataset: a tuple (or list) of equally long arrays ``(images, labels)`` (made a
            :class:`TensorDataset`), or a map-style dataset: ``__len__`` and ``__getitem__(int)``
            returning one sample (an array, a number, or a tuple, list or dict of them). Datasets
            that support batch indexing (arrays, :class:`TensorDataset`, :class:`ImageDataset`,
            ``batch_indexing = True``) are read a whole batch at a time; all others one sample at
            a time, stacked by ``collate_fn``.
        batch_size: samples per batch, a positive int.
        shuffle: visit the samples in a fresh random permutation each epoch.
        sampler: an iterable of dataset indices giving the order instead (with ``__len__``, e.g.
            a :class:`Subset`'s indices or a :class:`npcnn.distributed.DistributedSampler`);
            excludes ``shuffle=True``. Iterated anew each epoch.
        num_workers, pin_memory, timeout, worker_init_fn, prefetch_factor, persistent_workers:
            accepted for PyTorch compatibility and ignored: batches are always produced in the
            main process (``worker_init_fn`` is never called, as in PyTorch with ``num_workers=0``).
        collate_fn: turns a list of samples into a batch (default :func:`default_collate`). When
            given, every dataset is read one sample at a time, as in PyTorch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        generator: PyTorch's name for the shuffling generator: an int seed or a
            ``numpy.random.Generator`` (same as ``seed``; give one of the two).
        seed: seed of the loader's own generator; ``None`` draws one from ``npcnn.backend.rng()``
            (so ``npcnn.manual_seed`` makes the loader deterministic too).
        transform: called on each batch's inputs (the first element of a tuple/list batch, or the
            batch itself when samples are bare arrays), e.g. a :class:`transforms.Compose`.
        to_float: convert uint8 inputs to the default float dtype in [0, 1], per batch (the
            dataset stays uint8 in memory: 4x less than converting it up front).

    Yields:
        The collated batch: a tuple ``(x, y, ...)`` for tuple samples (a list for list samples, a
        dict for dict samples, an array for bare-array samples), every array on the active backend.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, *,
                 sampler: Optional[Iterable[int]] = None, num_workers: int = 0,
                 collate_fn: Optional[Callable[[list], Any]] = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn: Optional[Callable[[int], None]] = None,
                 generator: Union[None, int, np.random.Generator] = None, prefetch_factor: Optional[int] = None,
                 persistent_workers: bool = False, seed: Optional[int] = None,
                 transform: Optional[Callable[[Any], Any]] = None, to_float: bool = False) -> None:
        self.dataset = _as_dataset(dataset)
        self.batch_size = _check_batch_size(batch_size)
        self.shuffle = _check_flag("shuffle", False if shuffle is None else shuffle)
        self.drop_last = _check_flag("drop_last", drop_last)
        self.to_float = _check_flag("to_float", to_float)
        _check_flag("pin_memory", pin_memory)
        _check_flag("persistent_workers", persistent_workers)
        _check_ignored(num_workers, timeout, prefetch_factor)
        self.sampler = _check_sampler(sampler, self.shuffle)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        self.collate_fn, self.transform, self.num_workers = collate_fn, transform, int(num_workers)
        self.batch_indexing = collate_fn is None and supports_batch_indexing(self.dataset)
        self.generator = self._make_generator(seed, generator)
        self.epoch = 0  # epochs started
        self._epoch_state = None  # generator state at the start of the current epoch
        self._batches_done = 0  # batches yielded in the current epoch
        self._skip = 0  # batches to skip in the next epoch (after load_state_dict mid-epoch)

    @staticmethod
    def _make_generator(seed, generator):
        if seed is not None and generator is not None:
            raise ValueError("DataLoader: give seed or generator, not both")
        if seed is not None:
            return make_generator(seed, "DataLoader", "seed")
        return make_generator(generator, "DataLoader")

    def _num_samples(self):
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self) -> int:
        """Batches per epoch."""
        n = self._num_samples()
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        """This epoch's indices (None: in order, taken as slices)."""
        if self.sampler is not None:
            return np.asarray([int(i) for i in self.sampler], dtype=np.int64)
        return self.generator.permutation(len(self.dataset)) if self.shuffle else None

    def __iter__(self):
        """One epoch of batches (resuming mid-epoch after :meth:`load_state_dict`)."""
        bs = self.batch_size
        self._epoch_state = self.generator.bit_generator.state
        order = self._order()
        n = len(order) if order is not None else len(self.dataset)
        self.epoch += 1
        start, self._skip = self._skip, 0
        batches = n // bs if self.drop_last else math.ceil(n / bs)
        for b in range(start, batches):
            self._batches_done = b + 1
            idx = order[b * bs:(b + 1) * bs] if order is not None else slice(b * bs, min((b + 1) * bs, n))
            yield self._batch(idx)
        self._epoch_state, self._batches_done = None, 0

    def _fetch(self, idx):
        """The collated batch of dataset indices ``idx`` (a slice or an int array)."""
        if self.batch_indexing:
            batch = self.dataset[idx]
            _check_batch_length(self.dataset, batch, len(range(len(self.dataset))[idx]) if isinstance(idx, slice)
                                else len(idx))
            return batch
        indices = range(len(self.dataset))[idx] if isinstance(idx, slice) else [int(i) for i in idx]
        samples = [self.dataset[i] for i in indices]
        if self.collate_fn is not None:
            return self.collate_fn(samples)
        return collate_samples(samples, list(indices), "DataLoader", "dataset")

    def _batch(self, idx):
        batch = self._fetch(idx)
        if isinstance(batch, (tuple, list)) and not hasattr(batch, "_fields"):
            inputs = self._prepare(batch[0])
            rest = [_to_backend(a) for a in batch[1:]]
            return (inputs, *rest) if isinstance(batch, tuple) else [inputs, *rest]
        if isinstance(batch, dict):
            if self.transform is not None or self.to_float:
                raise TypeError("DataLoader: transform and to_float apply to the inputs of (x, y, ...) "
                                "batches; this dataset yields dicts: transform inside the dataset or collate_fn")
            return _to_backend(batch)
        if hasattr(batch, "shape"):
            return self._prepare(batch)
        return _to_backend(batch)

    def _prepare(self, x):
        """The inputs of a batch: uint8 -> float (``to_float``), onto the backend, transformed."""
        if self.to_float and hasattr(x, "dtype") and np.dtype(x.dtype) == np.uint8:
            x = x.astype(backend.get_default_dtype())
            x *= 1.0 / 255.0
        x = _to_backend(x)
        if self.transform is not None:
            x = self.transform(x)
        return x

    def state_dict(self) -> dict:
        """The shuffling state: resuming from it replays the rest of the current epoch (if one is
        under way) and then the same later epochs as the original run."""
        in_epoch = self._epoch_state is not None
        return {
            "generator": self._epoch_state if in_epoch else self.generator.bit_generator.state,
            "epoch": self.epoch - 1 if in_epoch else self.epoch,
            "batches_done": self._batches_done if in_epoch else 0,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state returned by :meth:`state_dict`."""
        self.generator.bit_generator.state = state["generator"]
        self.epoch, self._skip = int(state["epoch"]), int(state["batches_done"])
        self._epoch_state, self._batches_done = None, 0

    def __repr__(self):
        path = "batch indexing" if self.batch_indexing else "one sample at a time"
        return (f"DataLoader({type(self.dataset).__name__} of {len(self.dataset)}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, {path})")


def _check_batch_length(dataset, batch, n):
    """Every array of a batch-indexed batch must hold ``n`` samples along its first axis (catches a
    ``__getitem__`` that claims ``batch_indexing`` but, e.g., adds an axis in front)."""
    items = batch if isinstance(batch, (tuple, list)) else (batch,)
    for k, a in enumerate(items):
        if hasattr(a, "shape") and (a.ndim == 0 or a.shape[0] != n):
            raise ValueError(f"DataLoader: {type(dataset).__name__}[index_array] of {n} indices returned element {k} "
                             f"of shape {tuple(a.shape)}, not {n} samples along the first axis; a dataset with "
                             f"batch_indexing = True must return the stacked samples (or set it to False)")


def _to_backend(batch):
    """Arrays (also inside tuples, lists and dicts) moved to the active backend; the rest as is."""
    if isinstance(batch, dict):
        return {k: _to_backend(v) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)) and not isinstance(batch, str):
        items = [_to_backend(v) for v in batch]
        if hasattr(batch, "_fields"):
            return type(batch)(*items)
        return tuple(items) if isinstance(batch, tuple) else items
    if hasattr(batch, "shape") and hasattr(batch, "dtype"):
        return backend.asarray(batch)
    return batch
