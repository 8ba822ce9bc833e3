"""Data-parallel training: communicators, sampler, DistributedOptimizer, SyncBatchNorm.

Two kinds of tests:

* single process: a "world" of ranks that are threads of this process
  (``ThreadCommunicator``), so gradient averaging and SyncBatchNorm -- including its gradient
  check -- run without MPI;
* under MPI: ``mpirun -n 2`` runs the scripts in tests/mpi (loopback only) and must print PASS;
  they compare 2 ranks with one process after several SGD and Adam steps, SyncBatchNorm with
  full-batch BatchNorm, resume a 2-rank checkpoint on 1 rank, and make a rank hang or die.
  They skip, with the reason, when mpirun or mpi4py is missing.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import npcnn
import npcnn.distributed as dist
from npcnn import nn, optim
from npcnn.distributed.comm import CommunicationTimeout, ThreadCommunicator, run_in_threads
from npcnn.distributed.optimizer import make_buckets
from npcnn.distributed.sync_batchnorm import (
    sync_batch_norm_backward,
    sync_batch_norm_forward,
    sync_batch_norm_naive,
)
from npcnn.gradcheck import check_module
from conftest import fake_cupy_pythonpath, noncontiguous, torch_or_skip

ROOT = pathlib.Path(__file__).resolve().parents[1]
MPI_SCRIPTS = ROOT / "tests" / "mpi"


def threads(size, function, timeout=10.0):
    """Run ``function(comm)`` on ``size`` thread ranks; the results in rank order."""
    return run_in_threads(ThreadCommunicator.group(size, timeout), function)


# ----------------------------------------------------------------------------- the world


def test_import_npcnn_never_imports_mpi4py():
    code = ("import sys, npcnn, npcnn.distributed as d; d.init(); "
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'; print(d.get_world_size())")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "PMIX_", "MPI_"))}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_without_launcher_the_world_is_one_process(monkeypatch):
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    world = dist.init()
    assert isinstance(world, dist.SingleProcess)
    assert (dist.get_rank(), dist.get_world_size(), dist.get_local_rank()) == (0, 1, 0)
    assert dist.is_main_process() and not dist.is_initialized()
    a = np.arange(3.0)
    assert dist.all_reduce(a) is a and (a == np.arange(3.0)).all()
    assert dist.broadcast(a) is a
    assert dist.all_gather(a).shape == (1, 3)
    with pytest.raises(ValueError, match="root 1"):
        dist.broadcast(a, root=1)
    with pytest.raises(ValueError, match="op must be"):
        dist.all_reduce(a, op="mean")


def test_thread_collectives():
    def body(comm):
        r = comm.rank
        summed = comm.all_reduce(np.array([r + 1.0, 10.0 * r], dtype=np.float32))
        biggest = comm.all_reduce(np.array([r, -r]), op="max")
        smallest = comm.all_reduce(np.array([r, -r]), op="min")
        wide = np.zeros((2, 6))
        view = wide[:, ::2]  # non-contiguous: reduced through a copy, written back
        view[...] = r + 1.0
        comm.all_reduce(view)
        from_two = comm.broadcast(np.full(2, float(r)), root=2)
        gathered = comm.all_gather(np.array([r, r * r]))
        comm.barrier()
        return summed, biggest, smallest, wide, from_two, gathered

    for summed, biggest, smallest, wide, from_two, gathered in threads(3, body):
        assert summed.dtype == np.float32 and summed.tolist() == [6.0, 30.0]
        assert biggest.tolist() == [2, 0] and smallest.tolist() == [0, -2]
        assert (wide[:, ::2] == 6.0).all() and (wide[:, 1::2] == 0.0).all()
        assert from_two.tolist() == [2.0, 2.0]
        assert gathered.tolist() == [[0, 0], [1, 1], [2, 4]]


def test_missing_rank_is_a_clear_error_not_a_hang():
    def body(comm):
        if comm.rank == 0:
            comm.all_reduce(np.ones(3))  # rank 1 never joins

    start = time.perf_counter()
    with pytest.raises(CommunicationTimeout, match=r"rank 0 of 2 .*waited 0.3 s for all_reduce"):
        threads(2, body, timeout=0.3)
    assert time.perf_counter() - start < 5


def test_failure_on_one_rank_surfaces_with_its_own_error():
    def body(comm):
        if comm.rank == 1:
            raise ZeroDivisionError("rank 1 broke")
        comm.all_reduce(np.ones(3))

    with pytest.raises(ZeroDivisionError, match="rank 1 broke"):
        threads(2, body, timeout=5.0)


# ----------------------------------------------------------------------------- sampler


@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [12, 13, 2])
def test_sampler_covers_each_sample_once_per_epoch(replicas, n):
    samplers = [dist.DistributedSampler(range(n), replicas, r, seed=4) for r in range(replicas)]
    previous = None
    for epoch in range(3):
        for s in samplers:
            s.set_epoch(epoch)
        shares = [s.indices() for s in samplers]
        assert len({len(s) for s in shares}) == 1 and len(shares[0]) == len(samplers[0])  # equal steps
        everything = np.concatenate(shares)
        counts = np.bincount(everything, minlength=n)
        assert counts.min() >= 1  # nothing missed
        assert len(everything) - n == (-n) % replicas  # only the padding repeats
        if n % replicas == 0:
            assert (counts == 1).all()
        order = samplers[0].permutation()
        assert sorted(order.tolist()) == list(range(n))
        if previous is not None and n > 2:
            assert not np.array_equal(order, previous)  # a new permutation each epoch
        previous = order


def test_sampler_same_seed_same_shards_and_drop_last():
    a = dist.DistributedSampler(range(10), 3, 1, seed=9)
    b = dist.DistributedSampler(range(10), 3, 1, seed=9)
    assert list(a) == list(b)
    dropped = [dist.DistributedSampler(range(10), 3, r, seed=9, drop_last=True) for r in range(3)]
    shares = np.concatenate([s.indices() for s in dropped])
    assert len(shares) == 9 and len(set(shares.tolist())) == 9
    plain = dist.DistributedSampler(range(6), 2, 1, shuffle=False)
    assert list(plain) == [1, 3, 5]
    with pytest.raises(ValueError, match="rank must be in"):
        dist.DistributedSampler(range(6), 2, 2)


def test_sampler_resumes_mid_epoch_with_a_different_number_of_ranks():
    """After b steps of batch n on R ranks the prefix perm[:R b n] is consumed; R' ranks
    starting from there see exactly the rest."""
    n, batch, steps = 40, 3, 4
    before = [dist.DistributedSampler(range(n), 2, r, seed=1) for r in range(2)]
    consumed = np.concatenate([s.indices()[:steps * batch] for s in before])
    start = 2 * steps * batch
    assert sorted(consumed.tolist()) == sorted(before[0].permutation()[:start].tolist())
    after = [dist.DistributedSampler(range(n), 3, r, seed=1) for r in range(3)]
    for s in after:
        s.set_epoch(0, start=start)
    rest = np.concatenate([s.indices() for s in after])
    assert sorted(set(rest.tolist()) | set(consumed.tolist())) == list(range(n))
    assert not set(rest.tolist()) & set(consumed.tolist())


# ----------------------------------------------------------------------------- loader


def test_distributed_loader_shards_batches_and_resumes_across_world_sizes():
    n = 30
    x = np.arange(n, dtype=np.float32)[:, None]
    y = np.arange(n)
    loaders = [dist.DistributedDataLoader((x, y), batch_size=4, seed=2, num_replicas=2, rank=r) for r in range(2)]
    assert len(loaders[0]) == 4  # 15 samples per rank in batches of 4
    seen = [int(v) for loader in loaders for _, yb in loader for v in yb]
    assert sorted(seen) == list(range(n))
    # interrupt epoch 2 after 2 steps on 2 ranks, resume on 3 ranks
    iterators = [iter(loader) for loader in loaders]
    first = [int(v) for it in iterators for _ in range(2) for v in next(it)[1]]
    state = loaders[0].state_dict()
    assert state == {"epoch": 1, "samples_done": 16, "seed": 2}
    resumed = [dist.DistributedDataLoader((x, y), batch_size=4, seed=99, num_replicas=3, rank=r) for r in range(3)]
    for loader in resumed:
        loader.load_state_dict(state)
    rest = [int(v) for loader in resumed for _, yb in loader for v in yb]
    assert sorted(set(first + rest)) == list(range(n)) and not set(first) & set(rest)
    assert len(rest) == 15  # the 14 left, padded to a multiple of 3 ranks
    assert all(loader.state_dict() == {"epoch": 2, "samples_done": 0, "seed": 2} for loader in resumed)
    with pytest.raises(KeyError, match="plain DataLoader"):
        resumed[0].load_state_dict(npcnn.data.DataLoader((x, y)).state_dict())


def test_distributed_loader_seed_comes_from_rank_zero():
    def body(comm):
        npcnn.manual_seed(comm.rank)  # different generators on purpose
        return dist.DistributedDataLoader((np.zeros((8, 1)), np.zeros(8)), batch_size=2, comm=comm).seed

    seeds = threads(2, body)
    assert seeds[0] == seeds[1]


# ----------------------------------------------------------------------------- buckets and optimizer


def test_buckets_respect_cap_and_dtype():
    params = [nn.Parameter(np.zeros(s, dtype=d)) for s, d in
              [(100, np.float32), (100, np.float32), (300, np.float32), (10, np.float64), (10, np.float32)]]
    buckets = make_buckets(params, bucket_cap_mb=800 / 2**20)  # 800 bytes = 200 float32
    assert [len(b.params) for b in buckets] == [2, 1, 1, 1]
    assert [b.buffer.dtype for b in buckets] == [np.float32, np.float32, np.float64, np.float32]
    assert [b.numel for b in buckets] == [200, 300, 10, 10]


def _mlp(seed):
    npcnn.manual_seed(seed)
    with npcnn.backend.default_dtype(np.float64):
        return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def test_two_thread_ranks_train_like_one_process_with_the_full_batch(rng):
    """Gradient averaging: ranks with B/2 each == one process with B, SGD with momentum."""
    x, y = rng.normal(size=(5, 8, 5)), rng.integers(0, 3, size=(5, 8))
    loss_fn = nn.CrossEntropyLoss()

    models = [_mlp(seed=rank) for rank in range(2)]  # built here: npcnn's generator is not per thread

    def body(comm):
        model = models[comm.rank]  # different inits: broadcast_parameters makes them rank 0's
        dist.broadcast_parameters(model, comm=comm)
        opt = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.5, momentum=0.9), comm=comm,
                                        bucket_cap_mb=200 / 2**20)  # several buckets
        half = slice(4 * comm.rank, 4 * comm.rank + 4)
        for step in range(5):
            loss = nn.CrossEntropyLoss()
            loss(model(x[step, half]), y[step, half])
            model.backward(loss.backward())
            opt.step()
            opt.zero_grad()
        assert len(opt.buckets) > 1
        return [p.data for p in model.parameters()], opt.bytes_per_step

    results = threads(2, body)
    reference = _mlp(seed=0)
    sgd = optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    for step in range(5):
        loss_fn(reference(x[step]), y[step])
        reference.backward(loss_fn.backward())
        sgd.step()
        sgd.zero_grad()
    for params, _ in results:
        for got, expected in zip(params, reference.parameters()):
            np.testing.assert_allclose(got, expected.data, rtol=1e-12, atol=1e-14)
    assert results[0][1] == 8 * (5 * 7 + 7 + 7 * 3 + 3) + 8 * 4  # gradients + one flag per parameter


def test_missing_gradients_count_as_zero_and_untouched_parameters_stay_none():
    def body(comm):
        a, b, frozen = (nn.Parameter(np.zeros(3)) for _ in range(3))
        frozen.requires_grad = False
        opt = dist.DistributedOptimizer(optim.SGD([a, b, frozen], lr=1.0), comm=comm)
        if comm.rank == 0:
            a.grad = np.array([2.0, 4.0, 6.0])  # rank 1 has no gradient for a
        opt.synchronize()
        return a.grad, b.grad, opt.bytes_per_step

    for a_grad, b_grad, nbytes in threads(2, body):
        assert a_grad.tolist() == [1.0, 2.0, 3.0]
        assert b_grad is None  # no rank had one: the optimizer skips b, as it would in one process
        assert nbytes == 8 * (6 + 2)  # the frozen parameter is not sent


class CountingThreadCommunicator(ThreadCommunicator):
    calls = 0

    def all_reduce(self, array, op="sum"):
        self.calls += 1
        return super().all_reduce(array, op)


def test_synchronize_before_clipping_then_step_reduces_once():
    def body(comm):
        p = nn.Parameter(np.zeros(2))
        opt = dist.DistributedOptimizer(optim.SGD([p], lr=1.0), comm=comm)
        p.grad = np.array([[3.0, 4.0], [0.0, -10.0]])[comm.rank]  # average [1.5, -3], norm sqrt(11.25)
        opt.synchronize()
        nn.utils.clip_grad_norm_([p], 1.5)  # clipping the averaged gradient, not each rank's
        opt.step()
        return p.data, comm.calls

    expected = -np.array([1.5, -3.0]) * (1.5 / (11.25 ** 0.5 + 1e-6))
    for data, calls in run_in_threads(CountingThreadCommunicator.group(2), body):
        np.testing.assert_allclose(data, expected, rtol=1e-12)
        assert calls == 1


def test_world_of_one_passes_through_and_delegates():
    model = _mlp(0)
    inner = optim.Adam(model.parameters(), lr=0.1)
    opt = dist.DistributedOptimizer(inner)
    assert opt.param_groups is inner.param_groups and opt.state is inner.state
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    before = [p.data.copy() for p in model.parameters()]
    opt.step()
    assert all((p.data != b).all() for p, b in zip(model.parameters(), before))
    assert opt.buckets is None  # nothing was packed
    assert opt.state_dict()["param_groups"][0]["lr"] == 0.1
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(TypeError, match="param_groups"):
        dist.DistributedOptimizer(object())


def test_replicas_identical_and_average_across_ranks():
    models = [_mlp(seed=rank) for rank in range(2)]

    def body(comm):
        model = models[comm.rank]
        differ = dist.replicas_identical(model, comm)
        dist.broadcast_parameters(model, comm=comm)
        return differ, dist.replicas_identical(model, comm), dist.average_across_ranks({"loss": comm.rank}, comm)

    for differ, same, logs in threads(2, body):
        assert not differ and same and logs == {"loss": 0.5}


# ----------------------------------------------------------------------------- SyncBatchNorm


class ThreadedSyncBatchNorm(nn.Module):
    """One SyncBatchNorm per thread rank, each on its slice of the batch: as a single module,
    so ``check_module`` can gradient-check the distributed computation end to end."""

    def __init__(self, sizes, num_features, affine=True, timeout=10.0):
        super().__init__()
        self.sizes = list(sizes)
        self.comms = ThreadCommunicator.group(len(sizes), timeout)
        self.replicas = [dist.SyncBatchNorm(num_features, affine=affine, process_group=c) for c in self.comms]
        self.affine = affine
        if affine:
            rng = np.random.default_rng(0)
            self.weight = nn.Parameter(rng.normal(size=num_features))
            self.bias = nn.Parameter(rng.normal(size=num_features))

    def _slices(self, a):
        return np.split(a, np.cumsum(self.sizes)[:-1])

    def forward(self, x):
        if self.affine:
            for replica in self.replicas:  # same arrays: a perturbation reaches every rank
                replica.weight.data, replica.bias.data = self.weight.data, self.bias.data
        xs = self._slices(x)
        return np.concatenate(run_in_threads(self.comms, lambda c: self.replicas[c.rank](xs[c.rank])))

    def backward(self, dout):
        douts = self._slices(dout)
        dx = np.concatenate(run_in_threads(self.comms, lambda c: self.replicas[c.rank].backward(douts[c.rank])))
        if self.affine:  # parameters are replicated: their gradient is the sum of the ranks'
            for name in ("weight", "bias"):
                getattr(self, name).accumulate_grad(sum(getattr(r, name).grad for r in self.replicas))
                for r in self.replicas:
                    getattr(r, name).grad = None
        return dx


@pytest.mark.parametrize("sizes, shape, affine", [
    ((3, 2), (3, 4, 3), True),     # uneven slices, (N, C, H, W)
    ((1, 1), (2, 2, 3), True),     # batch 1 per rank
    ((2, 3, 1), (4,), True),       # three ranks, (N, C)
    ((2, 2), (3, 5), False),       # (N, C, L) without affine parameters
])
def test_sync_batchnorm_gradcheck_with_thread_ranks(float64, rng, sizes, shape, affine):
    x = rng.normal(size=(sum(sizes),) + shape) * 2.0 + 1.0
    check_module(ThreadedSyncBatchNorm(sizes, shape[0], affine), x, copy_module=False).assert_ok()


def test_sync_batchnorm_gradcheck_noncontiguous_input(float64, rng):
    x = noncontiguous(rng.normal(size=(4, 2, 3, 3)))
    check_module(ThreadedSyncBatchNorm((2, 2), 2), x, copy_module=False).assert_ok()


def test_sync_batchnorm_equals_full_batch_batchnorm_and_loop_twin(float64, rng):
    x = rng.normal(size=(5, 3, 4, 4)) * 3.0 + 2.0
    dout = rng.normal(size=x.shape)
    bn = nn.BatchNorm2d(3)
    bn.weight.data[...], bn.bias.data[...] = rng.normal(size=3), rng.normal(size=3)
    threaded = ThreadedSyncBatchNorm((3, 2), 3)
    threaded.weight.data[...], threaded.bias.data[...] = bn.weight.data, bn.bias.data
    for _ in range(2):
        out, expected = threaded(x), bn(x)
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(threaded.backward(dout), bn.backward(dout), rtol=1e-10, atol=1e-12)
        for name in ("weight", "bias"):
            np.testing.assert_allclose(getattr(threaded, name).grad, getattr(bn, name).grad, rtol=1e-10)
            getattr(threaded, name).grad = getattr(bn, name).grad = None
        for replica in threaded.replicas:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                np.testing.assert_allclose(getattr(replica, name), getattr(bn, name), rtol=1e-12)
    twin = np.concatenate(sync_batch_norm_naive([x[:3], x[3:]], bn.weight.data, bn.bias.data))
    np.testing.assert_allclose(twin, bn(x), rtol=1e-12, atol=1e-12)


def test_sync_batchnorm_matches_pytorch_batchnorm_on_the_full_batch(rng):
    torch = torch_or_skip()
    x = (rng.normal(size=(6, 3, 2, 5)) * 2.0 + 1.0).astype(np.float32)
    dout = rng.normal(size=x.shape).astype(np.float32)
    threaded = ThreadedSyncBatchNorm((4, 2), 3)
    threaded.weight.data = threaded.weight.data.astype(np.float32)
    threaded.bias.data = threaded.bias.data.astype(np.float32)
    for replica in threaded.replicas:
        replica.to(np.float32)
    out = threaded(x)
    dx = threaded.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(threaded.weight.data, requires_grad=True)
    tb = torch.tensor(threaded.bias.data, requires_grad=True)
    tout = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True, eps=1e-5)
    tout.backward(torch.tensor(dout))
    assert out.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(threaded.weight.grad, tw.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_sync_batchnorm_kernel_float32_and_gradcheck_in_a_world_of_one(rng):
    x = rng.normal(size=(3, 2, 4)).astype(np.float32)
    out, cache, mean, var, total = sync_batch_norm_forward(x, np.ones(2, np.float32), np.zeros(2, np.float32),
                                                           1e-5, dist.SingleProcess())
    dx, dgamma, dbeta = sync_batch_norm_backward(np.ones_like(out), cache, dist.SingleProcess())
    assert total == 12 and out.dtype == dx.dtype == dgamma.dtype == mean.dtype == var.dtype == np.float32
    with npcnn.backend.default_dtype(np.float64):
        layer = dist.SyncBatchNorm(2)
    check_module(layer, rng.normal(size=(3, 2, 4))).assert_ok()  # world of one: plain BatchNorm


def test_sync_batchnorm_eval_uses_running_stats_without_communicating(float64, rng):
    class Silent(dist.SingleProcess):
        size = 2

        def all_gather(self, array):
            raise AssertionError("eval mode must not communicate")

        all_reduce = all_gather

    layer = dist.SyncBatchNorm(3, process_group=Silent()).eval()
    layer.running_mean[...] = rng.normal(size=3)
    layer.running_var[...] = rng.uniform(0.5, 2.0, size=3)
    reference = nn.BatchNorm2d(3).eval()
    reference.load_state_dict(layer.state_dict())
    x = rng.normal(size=(2, 3, 2, 2))
    np.testing.assert_allclose(layer(x), reference(x), rtol=1e-14)
    check_module(layer, x, copy_module=False).assert_ok()


def test_sync_batchnorm_errors_name_the_layer():
    layer = dist.SyncBatchNorm(3, process_group=ThreadCommunicator.group(1)[0])
    with pytest.raises(ValueError, match=r"SyncBatchNorm: expected num_features \(dimension 1\) = 3"):
        layer(np.zeros((2, 4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="SyncBatchNorm: expected input of shape"):
        layer(np.zeros(3, dtype=np.float32))

    with pytest.raises(ValueError, match="more than 1 value per channel over all ranks"):
        dist.SyncBatchNorm(2, process_group=dist.SingleProcess())(np.zeros((1, 2), dtype=np.float32))

    def body(comm):  # one sample on rank 0, none on rank 1: one value per channel in the world
        dist.SyncBatchNorm(2, process_group=comm)(np.zeros((1 - comm.rank, 2), dtype=np.float32))

    with pytest.raises(ValueError, match="more than 1 value per channel over all ranks"):
        threads(2, body)


def test_convert_sync_batchnorm_keeps_order_parameters_and_state():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(),
                          nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2, momentum=None)))
    model[1].running_mean[...] = 5.0
    weight = model[1].weight
    keys = list(model.state_dict())
    converted = dist.convert_sync_batchnorm(model)
    assert converted is model
    assert [type(m).__name__ for m in model] == ["Linear", "SyncBatchNorm", "ReLU", "Sequential"]
    assert type(model[3][1]) is dist.SyncBatchNorm and model[3][1].momentum is None
    assert model[1].weight is weight  # an optimizer built before still holds it
    assert (model[1].running_mean == 5.0).all()
    assert list(model.state_dict()) == keys  # PyTorch's keys, checkpoints load either way
    single = dist.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm2d(4))
    assert type(single) is dist.SyncBatchNorm and single.num_features == 4


# ----------------------------------------------------------------------------- setup_training


def test_setup_training_in_a_world_of_one(rng):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    loader = npcnn.data.DataLoader((rng.normal(size=(10, 4)).astype(np.float32), np.zeros(10)), batch_size=4,
                                   shuffle=True)
    setup = dist.setup_training(model, optim.SGD(model.parameters(), lr=0.1), loader,
                                comm=dist.SingleProcess(), sync_batchnorm=True, split_batch=True)
    assert setup.is_main and setup.comm.size == 1
    assert isinstance(setup.optimizer, dist.DistributedOptimizer)
    assert isinstance(setup.loader, dist.DistributedDataLoader) and setup.loader.batch_size == 4
    assert type(setup.model[1]) is dist.SyncBatchNorm
    assert sum(len(y) for _, y in setup.loader) == 10


def test_setup_training_split_batch_must_divide():
    def body(comm):
        model = nn.Linear(2, 2)
        loader = npcnn.data.DataLoader((np.zeros((8, 2), np.float32), np.zeros(8)), batch_size=5)
        dist.setup_training(model, optim.SGD(model.parameters(), lr=0.1), loader, comm=comm, split_batch=True)

    with pytest.raises(ValueError, match="global batch size 5 is not divisible by the 2 ranks"):
        threads(2, body)


# ----------------------------------------------------------------------------- under mpirun


def _mpirun():
    """The mpirun command for 2 loopback ranks, or skip with the reason."""
    launcher = shutil.which("mpirun")
    if launcher is None:
        pytest.skip("mpirun not found (apt-get install -y openmpi-bin libopenmpi-dev)")
    if not dist.is_available():
        pytest.skip("mpi4py not installed (pip install mpi4py)")
    return [launcher, "-n", "2", "--oversubscribe"]


def run_mpi(script, *args, ranks=2, timeout=60, env_extra=None):
    """Run tests/mpi/<script> on ``ranks`` loopback ranks; returns (returncode, output, seconds).
    ``env_extra`` adds variables (e.g. the fake CuPy's PYTHONPATH)."""
    command = (_mpirun()[:-2] + [str(ranks), "--oversubscribe"]) if ranks else []
    command += [sys.executable, str(MPI_SCRIPTS / script), *map(str, args)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    env.update({
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",  # containers run as root
        "OMPI_MCA_btl": "self,vader",  # shared memory between local ranks: loopback only
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none",  # containers often forbid ptrace/CMA
        "OMPI_MCA_rmaps_base_oversubscribe": "1",
        "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    })
    env.update(env_extra or {})
    start = time.perf_counter()
    try:
        out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"{script} {args}: still running after {timeout} s -- a silent hang") from err
    return out.returncode, out.stdout + out.stderr, time.perf_counter() - start


def test_mpi_two_ranks_train_like_one_process_sgd_adam_local_and_sync_bn():
    code, output, _ = run_mpi("check_training.py")
    assert code == 0 and "PASS check_training" in output, output


def test_mpi_sync_batchnorm_equals_full_batch_and_gradchecks():
    code, output, _ = run_mpi("check_syncbn.py")
    assert code == 0 and "PASS check_syncbn" in output, output


def test_mpi_checkpoint_of_two_ranks_resumes_on_one(tmp_path):
    code, output, _ = run_mpi("check_resume.py", "train", tmp_path)
    assert code == 0 and "trained 2 epochs on 2 ranks" in output, output
    _mpirun()
    code, output, _ = run_mpi("check_resume.py", "resume", tmp_path, ranks=0)  # no mpirun: a world of one
    assert code == 0 and "PASS check_resume" in output, output


def test_mpi_hung_rank_stops_the_job_with_a_clear_error(tmp_path):
    code, output, seconds = run_mpi("check_failure.py", "hang", tmp_path, timeout=45)
    assert code != 0, output
    assert "rank 0 of 2 waited 2 s for all_reduce" in output and "a rank has died, hangs" in output, output
    assert "finished without noticing" not in output
    assert seconds < 40


def test_mpi_killed_rank_stops_the_job_and_the_checkpoint_survives(tmp_path):
    code, output, seconds = run_mpi("check_failure.py", "kill", tmp_path, timeout=45)
    assert code != 0, output
    assert ("exited on signal 9" in output) or ("waited 2 s for" in output), output
    assert "finished without noticing" not in output
    assert seconds < 40
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 3)).double()
    info = npcnn.train.load_checkpoint(tmp_path / "checkpoint.npz", model)
    assert info["epoch"] == 0
    with np.load(tmp_path / "expected.npz") as expected:
        for name, value in model.state_dict().items():
            np.testing.assert_array_equal(value, expected[name])


# ----------------------------------------------------------------------------- NCCL, on the fake CuPy


def _fake_cupy_env(log):
    """Run the rank scripts on the CuPy backend with tests/fake_cupy as CuPy: its NCCL performs
    each collective with MPI on host memory and logs it, so npcnn's NCCL path runs end to end."""
    return {"PYTHONPATH": fake_cupy_pythonpath(),
            "NPCNN_BACKEND": "cupy", "FAKE_NCCL_LOG": str(log)}


@pytest.mark.parametrize("script, collectives", [
    ("check_training.py", {"allReduce", "bcast"}),  # gradients, and rank 0's initial weights
    ("check_syncbn.py", {"allReduce", "allGather"}),  # batch statistics, per-rank batch sizes
])
def test_nccl_path_on_the_fake_cupy_two_ranks(tmp_path, script, collectives):
    log = tmp_path / "nccl.log"
    code, output, _ = run_mpi(script, env_extra=_fake_cupy_env(log), timeout=120)
    assert code == 0 and f"PASS {script[:-3]}" in output, output
    assert collectives <= set(log.read_text().split()[1::3])  # the data went by NCCL, not MPI


def test_nccl_checkpoint_of_two_ranks_resumes_on_one_process_on_the_fake_cupy(tmp_path):
    env = _fake_cupy_env(tmp_path / "nccl.log")
    code, output, _ = run_mpi("check_resume.py", "train", tmp_path, env_extra=env, timeout=120)
    assert code == 0 and "trained 2 epochs on 2 ranks" in output, output
    code, output, _ = run_mpi("check_resume.py", "resume", tmp_path, ranks=0, env_extra=env)
    assert code == 0 and "PASS check_resume" in output, output


@pytest.mark.parametrize("version, kind", [("14.2.0", bytes), ("13.6.0", tuple)])
def test_nccl_unique_id_travels_as_128_bytes_for_old_and_new_cupy(monkeypatch, version, kind):
    """CuPy 14 gives and takes the NCCL id as bytes, earlier versions as 128 signed chars."""
    import types

    from npcnn.distributed.comm import _nccl_unique_id

    raw = bytes(range(128))  # includes values >= 128: signed chars below zero in the old form
    uid = raw if kind is bytes else tuple(int(v) for v in np.frombuffer(raw, np.int8))
    nccl = types.SimpleNamespace(get_unique_id=lambda: uid)
    sent = []
    mpi = types.SimpleNamespace(rank=0, broadcast=lambda a, root: sent.append(a.copy()))
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(__version__=version))
    result = _nccl_unique_id(nccl, mpi)
    assert result == uid and type(result) is kind
    assert sent[0].dtype == np.uint8 and sent[0].tobytes() == raw


@pytest.mark.parametrize("fake_cupy", [False, True], ids=["numpy-mpi", "fake-cupy-nccl"])
def test_cli_train_distributed_on_two_ranks(tmp_path, fake_cupy):
    """``mpirun -n 2 python -m npcnn train ... --distributed``: one progress report, one set of
    outputs (rank 0's), and on CuPy the gradients go through NCCL."""
    try:
        npcnn.data.mnist(train=False, download=False)
    except (npcnn.data.DatasetNotFoundError, OSError):
        pytest.skip("MNIST files not found (set NPCNN_DATA to a folder holding them)")
    log = tmp_path / "nccl.log"
    env = _fake_cupy_env(log) if fake_cupy else None
    args = ["train", "--model", "lenet5", "--dataset", "mnist", "--epochs", "1", "--subset", "512",
            "--out", tmp_path / "out", "--verbose", "2", "--distributed"]
    code, output, _ = run_mpi("run_cli.py", *args, env_extra=env, timeout=180)
    assert code == 0, output
    assert output.count("test accuracy") == 1, output  # rank 0 alone reports
    assert (tmp_path / "out" / "model.npz").is_file()
    if fake_cupy:
        assert "allReduce" in log.read_text().split()
