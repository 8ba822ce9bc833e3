"""DistributedDataLoader: a DataLoader that reads this rank's share of every epoch."""

import math

import numpy as np

from .. import backend
from ..data.loader import DataLoader, _check_flag
from . import comm as _comm
from .sampler import DistributedSampler


class DistributedDataLoader(DataLoader):
    """Batches of this rank's :class:`DistributedSampler` share, epoch after epoch.

    The arguments are DataLoader's, plus the world: ``comm`` (default: the world of
    ``npcnn.distributed.init``), or ``num_replicas``/``rank`` given by hand. Each epoch e visits
    the permutation drawn from ``seed + e`` (the same on every rank); rank r gets every R-th entry
    from offset r, in batches of ``batch_size`` (so the global batch is R * batch_size).
    ``drop_last=True`` drops the uneven tail of the permutation and the last short batch;
    ``drop_last=False`` pads the tail so that every rank runs the same number of steps.

    Both kinds of dataset work as in :class:`npcnn.data.DataLoader`: array datasets are read a
    batch at a time, map-style datasets one sample at a time and stacked by ``collate_fn``.

    ``seed=None`` takes rank 0's draw from ``npcnn.backend.rng()``, broadcast to every rank.

    ``state_dict()`` holds the epoch, the seed and the number of samples of the epoch the
    *whole world* has consumed, which does not depend on the number of ranks: a run resumed
    from it with a different number of ranks skips exactly the samples already seen.
    """

    def __init__(self, dataset, batch_size=1, shuffle=True, drop_last=False, seed=None, transform=None,
                 to_float=False, comm=None, num_replicas=None, rank=None, collate_fn=None):
        comm = _comm.get_world() if comm is None else comm
        if seed is None:
            seed = _shared_seed(comm)
        super().__init__(dataset, batch_size, shuffle=False, drop_last=drop_last, seed=seed, transform=transform,
                         to_float=to_float, collate_fn=collate_fn)
        self.shuffle = _check_flag("shuffle", shuffle)
        self.seed = int(seed)
        num_replicas = comm.size if num_replicas is None else num_replicas
        rank = comm.rank if rank is None else rank
        self.sampler = DistributedSampler(self.dataset, num_replicas, rank, shuffle=self.shuffle, seed=self.seed,
                                          drop_last=self.drop_last)
        self._samples_done = None  # global samples of the current epoch consumed; None between epochs

    def __len__(self):
        """Batches per (whole) epoch on this rank."""
        n, replicas = len(self.dataset), self.sampler.num_replicas
        per_rank = n // replicas if self.drop_last else math.ceil(n / replicas)
        return per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)

    def __iter__(self):
        """One epoch of this rank's batches (continuing mid-epoch after :meth:`load_state_dict`)."""
        start, self._skip = self._skip, 0
        self.sampler.set_epoch(self.epoch, start)
        indices = self.sampler.indices()
        self.epoch += 1
        batch_size, step = self.batch_size, self.batch_size * self.sampler.num_replicas
        batches = len(indices) // batch_size if self.drop_last else math.ceil(len(indices) / batch_size)
        self._samples_done = start
        for b in range(batches):
            self._samples_done = min(start + (b + 1) * step, len(self.dataset))
            yield self._batch(indices[b * batch_size:(b + 1) * batch_size])
        self._samples_done = None

    def state_dict(self):
        """``{"epoch", "samples_done", "seed"}``: where the world is, independent of its size."""
        in_epoch = self._samples_done is not None
        return {
            "epoch": self.epoch - 1 if in_epoch else self.epoch,
            "samples_done": int(self._samples_done) if in_epoch else 0,
            "seed": self.seed,
        }

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict` (saved with any number of ranks)."""
        if "samples_done" not in state:
            raise KeyError("DistributedDataLoader.load_state_dict: expected a DistributedDataLoader state "
                           f"(epoch, samples_done, seed), got keys {sorted(state)} -- a plain DataLoader's "
                           "shuffling cannot be continued by a distributed one")
        self.epoch, self._skip = int(state["epoch"]), int(state["samples_done"])
        self.seed = self.sampler.seed = int(state["seed"])
        self._samples_done = None


def _shared_seed(comm):
    """A seed drawn on rank 0 and broadcast, so every rank shuffles alike."""
    seed = np.zeros(1, dtype=np.int64)
    if comm.rank == 0:
        seed[0] = int(backend.to_numpy(backend.rng().integers(0, 2**62)))
    comm.broadcast(seed, root=0)
    return int(seed[0])
