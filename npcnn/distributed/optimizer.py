"""DistributedOptimizer: average the gradients over the ranks, then take the wrapped step.

Data parallelism in one equation. Each of R ranks holds the same weights and computes the mean
loss over its own B/R samples; the mean over the whole batch of B is the mean of the ranks'
means, so its gradient is

    g = (1/R) sum_r g_r                                             (an all-reduce, then 1/R)

and a step with g on every rank keeps the weights identical: R processes with batch B/R each
train exactly like one process with batch B (up to floating-point summation order).

Buckets. An all-reduce costs a latency (microseconds to tens of microseconds per message) plus
bytes / bandwidth. A network has dozens of small tensors (biases, BatchNorm weights), so one
all-reduce per tensor would pay the latency dozens of times; instead the gradients are copied
into a few flat buffers of up to ``bucket_cap_mb`` megabytes ("buckets", PyTorch DDP's name and
default of 25 MB) and each bucket is reduced with one call.
"""

import time

import numpy as np

from .. import backend
from . import comm as _comm


class _Bucket:
    """One flat buffer holding the gradients of consecutive parameters of one dtype.

    Layout: ``[grad_0 | grad_1 | ... | grad_{k-1} | flag_0 ... flag_{k-1}]``. A flag is 1 where
    this rank has a gradient for parameter i and 0 where its ``grad`` is None (a branch of the
    network this rank did not use); after the sum a parameter that no rank touched keeps
    ``grad = None`` (so the optimizer skips it, as it would in one process) and any other gets
    the average, with a missing gradient counting as zero.
    """

    def __init__(self, params):
        self.params = params
        self.sizes = [int(p.size) for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int).tolist()
        self.numel = self.offsets[-1]
        xp = backend.get_array_module(params[0].data)
        self.buffer = xp.empty(self.numel + len(params), dtype=params[0].dtype)

    @property
    def nbytes(self):
        return int(self.buffer.nbytes)

    def pack(self):
        flags = self.buffer[self.numel:]
        for i, param in enumerate(self.params):
            segment = self.buffer[self.offsets[i]:self.offsets[i + 1]]
            if param.grad is None:
                segment[...] = 0
                flags[i] = 0
            else:
                segment[...] = param.grad.reshape(-1)
                flags[i] = 1

    def unpack(self, scale):
        """Give each parameter its averaged gradient: a view into the bucket (no copy), which
        stays valid until the next ``pack``."""
        self.buffer[:self.numel] *= scale
        flags = backend.to_numpy(self.buffer[self.numel:])
        for i, param in enumerate(self.params):
            if flags[i] > 0:
                param.grad = self.buffer[self.offsets[i]:self.offsets[i + 1]].reshape(param.shape)


def make_buckets(params, bucket_cap_mb=25.0):
    """Group ``params`` (in order) into buckets of one dtype and array library, each at most
    ``bucket_cap_mb`` megabytes (a single larger parameter gets a bucket of its own)."""
    cap = float(bucket_cap_mb) * 2**20
    buckets, current, current_bytes, current_kind = [], [], 0, None
    for param in params:
        kind = (np.dtype(param.dtype), backend.is_cupy_array(param.data))
        nbytes = int(param.size) * np.dtype(param.dtype).itemsize
        if current and (kind != current_kind or current_bytes + nbytes > cap):
            buckets.append(_Bucket(current))
            current, current_bytes = [], 0
        current.append(param)
        current_kind, current_bytes = kind, current_bytes + nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


class DistributedOptimizer:
    """Wrap ``optimizer`` so that ``step()`` averages gradients over all ranks first.

    ``DistributedOptimizer(SGD(model.parameters(), lr=0.1))`` trains as the single-process
    SGD would on the concatenation of all ranks' batches. ``zero_grad``, ``param_groups``,
    ``state``, ``state_dict`` and ``load_state_dict`` are the wrapped optimizer's, so checkpoints
    and learning-rate schedules work unchanged, and a checkpoint does not depend on the number
    of ranks.

    The trainable parameters (``requires_grad``) of ``param_groups`` are packed into buckets of
    at most ``bucket_cap_mb`` MB at the first step; adding parameters later needs a new wrapper.
    ``comm`` defaults to the world of :func:`npcnn.distributed.init`. With a world of one process
    ``step()`` is the wrapped optimizer's step.

    After ``step()``, ``bytes_per_step`` is the number of bytes each rank all-reduced and
    ``comm_seconds`` the time spent in all-reduces so far (for benchmarks).
    """

    def __init__(self, optimizer, comm=None, bucket_cap_mb=25.0):
        if not hasattr(optimizer, "param_groups") or not hasattr(optimizer, "step"):
            raise TypeError(f"DistributedOptimizer: expected an optimizer with param_groups and step(), "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.comm = _comm.get_world() if comm is None else comm
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.buckets = None
        self.comm_seconds = 0.0
        self._synchronized = False  # set by synchronize(), cleared by step()

    @property
    def param_groups(self):
        """The wrapped optimizer's ``param_groups`` (the same list: changing a learning rate here
        changes it there)."""
        return self.optimizer.param_groups

    @property
    def state(self):
        """The wrapped optimizer's per-parameter state (momentum buffers, Adam moments)."""
        return self.optimizer.state

    @property
    def bytes_per_step(self):
        """Bytes each rank all-reduces per step (the sum of the buckets; 0 before the first step
        and in a world of one)."""
        return sum(b.nbytes for b in self.buckets) if self.buckets else 0

    def _trainable_parameters(self):
        seen, params = set(), []
        for group in self.optimizer.param_groups:
            for param in group["params"]:
                if param.requires_grad and id(param) not in seen:
                    seen.add(id(param))
                    params.append(param)
        return params

    def synchronize(self):
        """Replace every gradient by its average over the ranks (one all-reduce per bucket).

        ``step()`` calls it; call it yourself before anything that must see the averaged
        gradients, such as clipping the global norm (``step()`` then does not reduce again)::

            optimizer.synchronize()
            clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        """
        self._synchronized = True
        if self.comm.size == 1:
            return
        if self.buckets is None:
            self.buckets = make_buckets(self._trainable_parameters(), self.bucket_cap_mb)
        scale = 1.0 / self.comm.size  # a Python float keeps float32 buffers float32
        start = time.perf_counter()
        for bucket in self.buckets:
            bucket.pack()
            self.comm.all_reduce(bucket.buffer)
            bucket.unpack(scale)
        self.comm_seconds += time.perf_counter() - start

    def step(self, *args, **kwargs):
        """Average the gradients over the ranks (unless :meth:`synchronize` already did this
        step), then take the wrapped optimizer's step; returns what that step returns."""
        if not self._synchronized:
            self.synchronize()
        self._synchronized = False
        return self.optimizer.step(*args, **kwargs)

    def zero_grad(self, *args, **kwargs):
        """The wrapped optimizer's ``zero_grad``."""
        return self.optimizer.zero_grad(*args, **kwargs)

    def state_dict(self):
        """The wrapped optimizer's state dict (the same on every rank, so any rank may save it)."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict):
        """Load ``state_dict`` into the wrapped optimizer."""
        return self.optimizer.load_state_dict(state_dict)

    def __repr__(self):
        return (f"DistributedOptimizer({self.optimizer!r}, world_size={self.comm.size}, "
                f"bucket_cap_mb={self.bucket_cap_mb:g})")
