"""DistributedSampler: each rank's disjoint share of every epoch's permutation."""

import math

import numpy as np

from . import comm as _comm


class DistributedSampler:
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` reads this epoch.

    Every rank draws the same permutation of ``range(len(dataset))`` from ``seed + epoch``
    (so ranks agree without talking) and keeps every ``num_replicas``-th entry from its own
    offset: rank r gets ``perm[r::num_replicas]``. The shares are disjoint and together cover
    the epoch once.

    Every rank must get the same number of samples (else one rank runs a batch more and waits
    forever in its all-reduce). When ``len(dataset)`` is not a multiple of ``num_replicas``:
    ``drop_last=False`` (PyTorch's default) pads the permutation with its own first entries,
    so fewer than ``num_replicas`` samples are read twice; ``drop_last=True`` drops the tail,
    so fewer than ``num_replicas`` samples are skipped this epoch (a different few each epoch).

    Call :meth:`set_epoch` at the start of every epoch, or every epoch repeats one permutation.
    The permutation does not depend on the number of ranks, which is why a run resumed with a
    different number of ranks still sees each sample once per epoch. PyTorch's names and
    arguments; ``num_replicas`` and ``rank`` default to the world's.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        self.num_replicas = _comm.get_world_size() if num_replicas is None else int(num_replicas)
        self.rank = _comm.get_rank() if rank is None else int(rank)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in [0, {self.num_replicas}), got {self.rank}")
        self.dataset_size = len(dataset)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.set_epoch(0)

    def set_epoch(self, epoch, start=0):
        """Choose the epoch whose permutation :meth:`__iter__` yields, from position ``start``.

        ``start`` skips the permutation's first ``start`` entries, the samples a run already
        consumed before it was interrupted mid-epoch. Rank r's b-th batch of size n holds
        ``perm[r + R k]`` for k in [b n, (b + 1) n), so after b steps on R ranks exactly the
        prefix ``perm[:R b n]`` has been used -- whatever R was -- and a resumed run with any
        number of ranks deals out the rest.
        """
        self.epoch, self.start = int(epoch), int(start)
        remaining = max(self.dataset_size - self.start, 0)
        if self.drop_last:
            self.num_samples = remaining // self.num_replicas
        else:
            self.num_samples = math.ceil(remaining / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def permutation(self):
        """The whole epoch's order of ``range(len(dataset))``, the same on every rank."""
        if self.shuffle:
            return np.random.default_rng(self.seed + self.epoch).permutation(self.dataset_size)
        return np.arange(self.dataset_size)

    def indices(self):
        """This rank's indices for the current epoch, as an int64 array."""
        order = self.permutation()[self.start:]
        if self.total_size > len(order) > 0:  # pad by wrapping around (repeatedly if the set is tiny)
            order = np.resize(order, self.total_size)
        order = order[: self.total_size]
        return order[self.rank :: self.num_replicas]

    def __iter__(self):
        """This rank's indices for the current epoch, as Python ints."""
        return iter(self.indices().tolist())

    def __len__(self):
        """Samples this rank reads in the current epoch."""
        return self.num_samples

    def __repr__(self):
        return (f"DistributedSampler(rank={self.rank}, num_replicas={self.num_replicas}, "
                f"samples={self.num_samples} of {self.dataset_size}, shuffle={self.shuffle}, "
                f"seed={self.seed}, epoch={self.epoch})")
