"""Putting it together: identical replicas, averaged gradients, sharded data.

Data-parallel training in three lines (the rest of a training script is unchanged)::

    comm = npcnn.distributed.init()                   # rank, size; GPU per rank under CuPy
    model, optimizer, loader, comm, is_main = npcnn.distributed.setup_training(model, optimizer, loader)
    npcnn.train.fit(model, loss_fn, optimizer, loader, epochs, verbose=1 if is_main else 0)

``setup_training`` makes every replica start from rank 0's weights, wraps the optimizer so each
step averages the gradients over the ranks, and gives each rank its share of every epoch.
"""

from collections import namedtuple

import numpy as np

from .. import backend
from ..data.loader import DataLoader
from ..nn.module import Module
from ..nn.parameter import Parameter
from . import comm as _comm
from .loader import DistributedDataLoader
from .optimizer import DistributedOptimizer
from .sync_batchnorm import convert_sync_batchnorm

DistributedTraining = namedtuple("DistributedTraining", ["model", "optimizer", "loader", "comm", "is_main"])
DistributedTraining.__doc__ = """What :func:`setup_training` returns: the synchronized ``model``, the gradient-averaging
``optimizer`` (a DistributedOptimizer), this rank's ``loader``, the ``comm`` and ``is_main`` (True on
rank 0, the rank that prints and writes files). Unpacks like a tuple."""


def _arrays(source, buffers):
    """The arrays of a Module (parameters, then buffers), a state dict, or Parameters."""
    if isinstance(source, Module):
        arrays = [p.data for p in source.parameters()]
        return arrays + (list(source.buffers()) if buffers else [])
    if isinstance(source, dict):
        return list(source.values())
    return [p.data if isinstance(p, Parameter) else p for p in source]


def broadcast_parameters(source, root=0, comm=None, buffers=True):
    """Overwrite, in place, every parameter (and buffer) with rank ``root``'s values.

    ``source`` is a Module, its ``state_dict()``, or an iterable of Parameters or arrays. Call it
    once before training (replicas initialized from different seeds, or only rank 0 loaded
    weights); afterwards identical gradients keep the replicas identical.
    """
    comm = _comm.get_world() if comm is None else comm
    if comm.size == 1:
        return source
    for array in _arrays(source, buffers):
        comm.broadcast(array, root)
    return source


def broadcast_buffers(model, root=0, comm=None):
    """Overwrite every buffer (BatchNorm's running statistics) with rank ``root``'s.

    With local BatchNorm each rank's running statistics follow its own shard; call this before
    evaluating or saving so every rank holds rank 0's, as PyTorch DDP does at each forward.
    """
    comm = _comm.get_world() if comm is None else comm
    for array in model.buffers():
        comm.broadcast(array, root)
    return model


def replicas_identical(model, comm=None):
    """True when every rank holds bit-identical parameters and buffers (one all-gather of a
    fingerprint per array: its float64 sum and sum of squares)."""
    comm = _comm.get_world() if comm is None else comm
    fingerprint = []
    for array in _arrays(model, buffers=True):
        values = backend.to_numpy(array).astype(np.float64).reshape(-1)
        fingerprint += [values.sum(), (values * values).sum(), values[::7].sum()]
    gathered = comm.all_gather(np.asarray(fingerprint, dtype=np.float64))
    return bool((gathered == gathered[0]).all())


def average_across_ranks(values, comm=None):
    """``{name: float}`` averaged over the ranks (one all-reduce), e.g. an epoch's loss."""
    comm = _comm.get_world() if comm is None else comm
    names = sorted(values)
    vector = np.array([float(values[name]) for name in names], dtype=np.float64)
    comm.all_reduce(vector)
    return {name: float(v) / comm.size for name, v in zip(names, vector)}


def setup_training(model, optimizer, loader=None, comm=None, sync_batchnorm=False, split_batch=False,
                   bucket_cap_mb=25.0):
    """Prepare a model, optimizer and loader for data-parallel training on every rank.

    1. ``comm`` defaults to :func:`npcnn.distributed.init` (a world of one without ``mpirun``);
    2. with ``sync_batchnorm`` every BatchNorm becomes a :class:`SyncBatchNorm` (same Parameters,
       so ``optimizer`` still holds them); otherwise BatchNorm stays local to each rank;
    3. every parameter and buffer is overwritten with rank 0's (:func:`broadcast_parameters`);
    4. the optimizer is wrapped in a :class:`DistributedOptimizer` (gradients averaged in buckets);
    5. a DataLoader becomes a :class:`DistributedDataLoader` with the same dataset, shuffling,
       drop_last, transform and to_float, and a seed from rank 0. Its ``batch_size`` is per rank
       (the global batch grows with the ranks), or with ``split_batch`` the global batch, each
       rank reading ``batch_size / world_size`` (it must divide): then every number of ranks
       trains on the same global batches, with the same learning rate.

    Returns ``DistributedTraining(model, optimizer, loader, comm, is_main)``; ``is_main`` is True
    on rank 0, the only rank that should print, write checkpoints and plot. Everything (model,
    optimizer, loader state) is independent of the number of ranks, so a checkpoint written by
    rank 0 resumes with any number of ranks when every rank loads it.
    """
    comm = _comm.init() if comm is None else comm
    if sync_batchnorm:
        model = convert_sync_batchnorm(model, None if comm is _comm.get_world() else comm)
    broadcast_parameters(model, root=0, comm=comm)
    if not isinstance(optimizer, DistributedOptimizer):
        optimizer = DistributedOptimizer(optimizer, comm=comm, bucket_cap_mb=bucket_cap_mb)
    if isinstance(loader, DataLoader) and not isinstance(loader, DistributedDataLoader):
        batch_size = loader.batch_size
        if split_batch:
            if batch_size % comm.size:
                raise ValueError(f"setup_training: the global batch size {batch_size} is not divisible by the "
                                 f"{comm.size} ranks")
            batch_size //= comm.size
        loader = DistributedDataLoader(loader.dataset, batch_size, shuffle=loader.shuffle,
                                       drop_last=loader.drop_last, seed=None, transform=loader.transform,
                                       to_float=loader.to_float, comm=comm,
                                       collate_fn=getattr(loader, "collate_fn", None))
    return DistributedTraining(model, optimizer, loader, comm, comm.rank == 0)
