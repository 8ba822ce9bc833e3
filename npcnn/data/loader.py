"""Mini-batches: :class:`TensorDataset` and :class:`DataLoader`.

A loader takes a whole batch with one indexing (``dataset[index_array]``), so a batch costs one
gather, not ``batch_size`` Python calls. Each epoch visits the samples in a permutation drawn
from the loader's own generator, whose state (plus the position inside the current epoch) is
saved by :meth:`DataLoader.state_dict`, so a resumed run sees exactly the batches it would have.
"""

import math

import numpy as np

from .. import backend


class TensorDataset:
    """Arrays of equal length seen as one dataset: ``ds[idx] == (a[idx], b[idx], ...)``."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array")
        lengths = {len(a) for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"TensorDataset: arrays have different lengths {[len(a) for a in arrays]}")
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, idx):
        return tuple(a[idx] for a in self.arrays)


class DataLoader:
    """Iterates over ``dataset`` in batches ``(x, y)`` of backend arrays.

    Args:
        dataset: a tuple/list of arrays ``(images, labels)``, a :class:`TensorDataset`, or any
            object with ``__len__`` and a ``__getitem__`` that takes an index array and returns
            a tuple of batched arrays (e.g. :class:`npcnn.data.ImageDataset`).
        batch_size: samples per batch.
        shuffle: visit the samples in a fresh random permutation each epoch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        seed: seed of the loader's own generator; ``None`` draws one from ``npcnn.backend.rng()``
            (so ``npcnn.manual_seed`` makes the loader deterministic too).
        transform: called on each batch's inputs ``x`` (e.g. a :class:`transforms.Compose`).
        to_float: convert uint8 inputs to the default float dtype in [0, 1], per batch (the
            dataset stays uint8 in memory: 4x less than converting it up front).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, transform=None,
                 to_float=False):
        if isinstance(dataset, (tuple, list)):
            dataset = TensorDataset(*dataset)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: expected a tuple of arrays or a dataset with __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.transform, self.to_float = transform, bool(to_float)
        if seed is None:
            seed = backend.draw_seed()
        self.generator = np.random.default_rng(seed)
        self.epoch = 0  # epochs started
        self._epoch_state = None  # generator state at the start of the current epoch
        self._batches_done = 0  # batches yielded in the current epoch
        self._skip = 0  # batches to skip in the next epoch (after load_state_dict mid-epoch)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        n, bs = len(self.dataset), self.batch_size
        self._epoch_state = self.generator.bit_generator.state
        order = self.generator.permutation(n) if self.shuffle else None
        self.epoch += 1
        start, self._skip = self._skip, 0
        for b in range(start, len(self)):
            self._batches_done = b + 1
            idx = order[b * bs:(b + 1) * bs] if self.shuffle else slice(b * bs, min((b + 1) * bs, n))
            yield self._batch(idx)
        self._epoch_state, self._batches_done = None, 0

    def _batch(self, idx):
        items = self.dataset[idx]
        if not isinstance(items, tuple):
            items = (items,)
        x = items[0]
        if self.to_float and np.dtype(x.dtype) == np.uint8:
            x = x.astype(backend.get_default_dtype())
            x *= 1.0 / 255.0
        x = backend.asarray(x)
        if self.transform is not None:
            x = self.transform(x)
        return (x,) + tuple(backend.asarray(a) for a in items[1:])

    def state_dict(self):
        """The shuffling state: resuming from it replays the rest of the current epoch (if one is
        under way) and then the same later epochs as the original run."""
        in_epoch = self._epoch_state is not None
        return {
            "generator": self._epoch_state if in_epoch else self.generator.bit_generator.state,
            "epoch": self.epoch - 1 if in_epoch else self.epoch,
            "batches_done": self._batches_done if in_epoch else 0,
        }

    def load_state_dict(self, state):
        """Restore a state returned by :meth:`state_dict`."""
        self.generator.bit_generator.state = state["generator"]
        self.epoch, self._skip = int(state["epoch"]), int(state["batches_done"])
        self._epoch_state, self._batches_done = None, 0
