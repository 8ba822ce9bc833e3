"""SyncBatchNorm under MPI equals BatchNorm on the full batch, and its gradient is right.

Each rank holds a slice of a global batch (uneven slices included: 3 and 2 samples, 1 sample,
(N, C) and (N, C, H, W) inputs, with and without affine parameters). Checked on every rank:

* forward output and dL/dx equal BatchNorm's on the concatenated batch (float64, 1e-12);
  dL/dgamma and dL/dbeta summed over ranks equal BatchNorm's; running statistics equal;
* a central-difference gradient check of the distributed function itself: the loss is
  sum_r sum(out_r * P_r), every rank evaluates it for each perturbed entry of each rank's
  input and of gamma/beta (the owner perturbs, the others just run their forward);
* float32 stays float32.
"""

import numpy as np

from _common import assert_close

import npcnn
import npcnn.distributed as dist
from npcnn import nn

comm = dist.init(timeout=60)
R, rank = comm.size, comm.rank
assert R > 1, "run me with mpirun -n 2 (or more)"


def global_batch(sizes, tail, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(sum(sizes),) + tail) * 1.5 + 3.0).astype(dtype)
    dout = rng.normal(size=x.shape).astype(dtype)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return npcnn.backend.asarray(x), npcnn.backend.asarray(dout), slice(bounds[rank], bounds[rank + 1])


def layers(channels, affine, dtype, seed):
    with npcnn.backend.default_dtype(dtype):
        bn = nn.BatchNorm1d(channels, affine=affine)  # on x reshaped to (N, C, L)
        sync = dist.SyncBatchNorm(channels, affine=affine)
    if affine:
        rng = np.random.default_rng(seed + 1)
        bn.weight.data[...] = npcnn.backend.asarray(rng.normal(size=channels))
        bn.bias.data[...] = npcnn.backend.asarray(rng.normal(size=channels))
        sync.weight.data[...] = bn.weight.data
        sync.bias.data[...] = bn.bias.data
    return bn, sync


def check_against_full_batch(sizes, tail, affine, dtype, tol):
    channels = tail[0]
    x, dout, mine = global_batch(sizes, tail, dtype, seed=len(sizes) + sum(sizes))
    bn, sync = layers(channels, affine, dtype, seed=3)
    what = f"sizes {sizes}, tail {tail}, affine {affine}, {np.dtype(dtype).name}"
    for _ in range(2):  # two steps: running statistics accumulate
        out_full = bn(x.reshape(len(x), channels, -1))
        dx_full = bn.backward(dout.reshape(out_full.shape))
        out = sync(x[mine])
        dx = sync.backward(dout[mine])
        assert out.dtype == dx.dtype == dtype, f"{what}: dtype changed to {out.dtype}"
        assert_close(out, out_full.reshape(x.shape)[mine], tol, tol, f"{what}: output")
        assert_close(dx, dx_full.reshape(x.shape)[mine], tol, tol, f"{what}: dx")
        if affine:
            for name in ("weight", "bias"):
                total = comm.all_reduce(getattr(sync, name).grad.copy())
                assert_close(total, getattr(bn, name).grad, tol, tol, f"{what}: d{name} summed over ranks")
                getattr(sync, name).grad = getattr(bn, name).grad = None
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            assert_close(getattr(sync, name), getattr(bn, name), tol, tol, f"{what}: {name}")
    if rank == 0:
        print(f"ok  SyncBatchNorm = BatchNorm on the full batch: {what}")


def numerical_check(sizes, tail, affine, eps=1e-6, tol=1e-6):
    """Central differences of L = sum over ranks of sum(out_r * P_r), all entries of all ranks."""
    x, projection, mine = global_batch(sizes, tail, np.float64, seed=11)
    _, sync = layers(tail[0], affine, np.float64, seed=5)
    x_local, p_local = x[mine].copy(), projection[mine]

    def loss():
        with npcnn.no_grad():
            value = np.array([float((sync(x_local) * p_local).sum())])
        return float(comm.all_reduce(value)[0])

    sync(x_local)
    dx = sync.backward(p_local)
    tensors = [("x", x_local, dx, np.array([x_local.size]))]
    if affine:  # parameters are replicated: their true gradient is the sum of the ranks' local ones
        tensors += [(name, getattr(sync, name).data, comm.all_reduce(getattr(sync, name).grad.copy()), None)
                    for name in ("weight", "bias")]
    for name, array, analytic, local_sizes in tensors:
        counts = comm.all_gather(local_sizes)[:, 0] if local_sizes is not None else None
        owners = range(R) if counts is not None else [0]
        numeric_mine = np.zeros(array.size)
        for owner in owners:  # every rank steps through every entry of the owner's array together
            n = int(counts[owner]) if counts is not None else array.size
            for i in range(n):
                perturb = counts is None or owner == rank
                index = np.unravel_index(i, array.shape) if perturb else None
                original = array[index] if perturb else None
                if perturb:
                    array[index] = original + eps
                plus = loss()
                if perturb:
                    array[index] = original - eps
                minus = loss()
                if perturb:
                    array[index] = original
                    numeric_mine[i] = (plus - minus) / (2 * eps)
        analytic = npcnn.to_numpy(analytic)
        error = np.abs(numeric_mine - analytic.reshape(-1)).max() / max(np.abs(analytic).max(), 1e-300)
        assert error < tol, f"gradcheck {name} (sizes {sizes}, tail {tail}): relative error {error:.2e}"
    if rank == 0:
        print(f"ok  gradcheck of the distributed SyncBatchNorm, sizes {sizes}, tail {tail}, affine {affine}")


base = [3, 2] + [2] * (R - 2)
check_against_full_batch(base, (3, 4, 5), affine=True, dtype=np.float64, tol=1e-12)
check_against_full_batch(base, (3, 4, 5), affine=False, dtype=np.float64, tol=1e-12)
check_against_full_batch([1] * R, (2, 3, 3), affine=True, dtype=np.float64, tol=1e-12)
check_against_full_batch(base, (5,), affine=True, dtype=np.float64, tol=1e-12)
check_against_full_batch(base, (3, 4, 5), affine=True, dtype=np.float32, tol=1e-5)
numerical_check(base, (2, 2, 3), affine=True)
numerical_check([1] * R, (3, 2), affine=False)
comm.barrier()
if rank == 0:
    print("PASS check_syncbn")
