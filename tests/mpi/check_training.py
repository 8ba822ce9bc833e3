"""R ranks with batch B/R each end with the weights of one process with batch B.

For a CNN with BatchNorm, after two epochs (8 steps) of SGD (momentum, weight decay) and of
Adam, in float64 (to 1e-10) and float32 (to 1e-5):

* SyncBatchNorm: the reference is the same CNN with ordinary BatchNorm on the full batch B
  (SyncBN is meant to compute exactly that); running statistics must match too.
* local BatchNorm (the default): the reference is the CNN whose BatchNorm normalizes each
  rank's slice of the batch separately (SplitBatchNorm) -- full-batch BN would be a different
  function, so comparing with it could only show "not equal". Rank r's running statistics
  must equal those of the reference's slice r.

The data come from DistributedDataLoader; every rank also checks that the shards of each
epoch are disjoint and cover the dataset once, and that all replicas hold identical weights.
"""

import numpy as np

from _common import assert_close, cnn, dataset, split_batchnorm, train_steps

import npcnn
import npcnn.distributed as dist
from npcnn import optim

comm = dist.init(timeout=60)
R, rank = comm.size, comm.rank
assert R > 1, "run me with mpirun -n 2 (or more)"
BATCH, EPOCHS, SEED = 4, 2, 3


def reference_batches(x, y):
    """The global batches, slices in rank order, as the ranks see them."""
    samplers = [dist.DistributedSampler(x, R, r, shuffle=True, seed=SEED) for r in range(R)]
    for epoch in range(EPOCHS):
        shares = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            shares.append(sampler.indices())
        for b in range(len(shares[0]) // BATCH):
            idx = np.concatenate([s[b * BATCH:(b + 1) * BATCH] for s in shares])
            yield x[idx], y[idx]


def run_case(make_optimizer, sync, dtype, rtol, atol):
    x, y = dataset(len_ := 8 * R, dtype)
    name = f"{make_optimizer.__name__} {'SyncBN' if sync else 'local BN'} {np.dtype(dtype).name}"

    model = cnn(seed=rank + 11, dtype=dtype)  # a different init per rank: setup_training broadcasts rank 0's
    loader = npcnn.data.DataLoader((x, y), batch_size=BATCH, shuffle=True, seed=SEED)
    model, optimizer, loader, _, _ = dist.setup_training(model, make_optimizer(model), loader, sync_batchnorm=sync)
    assert isinstance(loader, dist.DistributedDataLoader) and loader.seed != SEED  # seed comes from rank 0
    loader = dist.DistributedDataLoader((x, y), batch_size=BATCH, shuffle=True, seed=SEED)
    for _ in range(EPOCHS):
        train_steps(model, optimizer, list(loader))

    reference = cnn(seed=11, dtype=dtype)  # rank 0's init
    if not sync:
        split_batchnorm(reference, 1, R)
    train_steps(reference, make_optimizer(reference), reference_batches(x, y))

    for (key, value), expected in zip(model.named_parameters(), reference.parameters()):
        assert_close(value.data, expected.data, rtol, atol, f"{name}: rank {rank} parameter {key}")
        assert value.dtype == dtype, f"{name}: {key} became {value.dtype}"
    bn_reference = reference[1] if sync else reference[1].parts[rank]
    for buffer in ("running_mean", "running_var", "num_batches_tracked"):
        assert_close(getattr(model[1], buffer), getattr(bn_reference, buffer), rtol, atol,
                     f"{name}: rank {rank} {buffer}")
    assert dist.replicas_identical(list(model.parameters())), f"{name}: replicas differ"
    if sync:
        assert dist.replicas_identical(model), f"{name}: SyncBN running statistics differ between ranks"
    if rank == 0:
        print(f"ok  {name}: {len_} samples, {EPOCHS * len(loader)} steps, "
              f"{optimizer.bytes_per_step} bytes all-reduced per step in {len(optimizer.buckets)} bucket(s)")


def sgd(model):
    return optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)


def adam(model):
    return optim.Adam(model.parameters(), lr=1e-2)


def check_shards():
    """Every epoch, the ranks' shards are disjoint and cover the dataset once."""
    for n in (8 * R, 8 * R + 1):
        sampler = dist.DistributedSampler(range(n), seed=5, drop_last=False)
        for epoch in range(3):
            sampler.set_epoch(epoch)
            mine = sampler.indices()
            everyone = comm.all_gather(mine.astype(np.int64)).reshape(-1)
            counts = np.bincount(everyone, minlength=n)
            assert counts.min() == 1, "a sample was missed"
            assert counts.sum() - n < R, "more than the padding was repeated"
            if n % R == 0:
                assert (counts == 1).all(), "shards overlap"
    if rank == 0:
        print("ok  DistributedSampler shards are disjoint and cover each epoch once")


check_shards()
for sync in (True, False):
    for make in (sgd, adam):
        run_case(make, sync, np.float64, rtol=1e-10, atol=1e-12)
run_case(sgd, True, np.float32, rtol=1e-5, atol=1e-6)
run_case(adam, False, np.float32, rtol=1e-5, atol=1e-6)
comm.barrier()
if rank == 0:
    print("PASS check_training")
