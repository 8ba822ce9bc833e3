"""Data-parallel throughput: 1 vs 2 processes, bytes all-reduced, and a model for a cluster.

    python benchmarks/distributed_bench.py            # ~2 minutes; run it alone on the machine
    python benchmarks/distributed_bench.py --quick    # ~20 s smoke run (numbers are noisy)

Measures, for one small CNN on 32x32 images at the same global batch:

    1 process,  1 BLAS thread       (the baseline)
    1 process,  2 BLAS threads      (what the second core gives without MPI)
    2 processes (mpirun), 1 thread each, half the batch each

and reports images/s, speed-up, scaling efficiency = throughput(2 procs) / (2 x baseline),
bytes all-reduced per step and the share of the step spent in all-reduce. A ping of the
all-reduce at several sizes gives this machine's latency and bandwidth. Then a written model
predicts step time on a real cluster (see ``cluster_model``).

Workers are separate processes because BLAS reads its thread count when NumPy is imported.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- workers


def _model():
    from npcnn import nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def train_worker(global_batch, steps, warmup):
    """Train the CNN on this rank's share of the global batch; rank 0 prints a JSON line."""
    import numpy as np

    import npcnn
    import npcnn.distributed as dist
    from npcnn import nn, optim

    comm = dist.init()
    npcnn.manual_seed(0)
    model = _model()
    optimizer = dist.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    dist.broadcast_parameters(model)
    batch = global_batch // comm.size
    rng = np.random.default_rng(comm.rank)
    x = rng.normal(size=(batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, size=batch)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(warmup):
        step()
    comm.barrier()
    optimizer.comm_seconds = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        step()
    comm.barrier()
    seconds = time.perf_counter() - start
    if comm.rank == 0:
        print(json.dumps({
            "ranks": comm.size, "step_s": seconds / steps, "images_per_s": global_batch * steps / seconds,
            "comm_s_per_step": optimizer.comm_seconds / steps, "bytes_per_step": optimizer.bytes_per_step,
            "parameters": model.num_parameters(),
        }))


def allreduce_worker(sizes, repeats):
    """Seconds per all-reduce of float32 buffers of ``sizes`` bytes; rank 0 prints JSON."""
    import numpy as np

    import npcnn.distributed as dist

    comm = dist.init()
    results = {}
    for nbytes in sizes:
        buffer = np.ones(max(nbytes // 4, 1), dtype=np.float32)
        comm.all_reduce(buffer)
        comm.barrier()
        start = time.perf_counter()
        for _ in range(repeats):
            comm.all_reduce(buffer)
        results[nbytes] = (time.perf_counter() - start) / repeats
    if comm.rank == 0:
        print(json.dumps(results))


# ----------------------------------------------------------------------------- the driver


def _env(threads):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_"))}
    env.update({
        "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader",
        "OMPI_MCA_btl_vader_single_copy_mechanism": "none", "PYTHONPATH": str(ROOT),
    })
    return env


def _run(worker_args, ranks, threads):
    command = [sys.executable, __file__, "--worker", *worker_args]
    if ranks > 1:
        command = [shutil.which("mpirun"), "-n", str(ranks), "--oversubscribe", "--bind-to", "none"] + command
    out = subprocess.run(command, env=_env(threads), capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cluster_model(parameters, seconds_per_image, per_rank_batch, ranks, bandwidth, latency, bytes_per_value=4):
    """Predicted seconds per step with ``ranks`` ranks (weak scaling: fixed per-rank batch).

        T(R) = per_rank_batch * seconds_per_image                      (compute, the same on every rank)
             + 2 (R - 1) latency + 2 (R - 1) / R * S / bandwidth          (ring all-reduce of S bytes)

    with S = bytes_per_value * parameters. A ring all-reduce sends and receives 2 (R-1)/R S bytes
    per rank, so its time tends to 2 S / bandwidth: independent of R, which is why data
    parallelism scales when compute per step >> 2 S / bandwidth. npcnn reduces after the whole
    backward pass (no overlap with it), so the two terms add; bucketing keeps the latency term
    at (number of buckets) x 2 (R - 1) latency instead of one per tensor.
    """
    compute = per_rank_batch * seconds_per_image
    if ranks == 1:
        return compute
    size = bytes_per_value * parameters
    return compute + 2 * (ranks - 1) * latency + 2 * (ranks - 1) / ranks * size / bandwidth


def print_cluster_model(file=sys.stdout):
    resnet50 = 25.6e6
    size_mb = 4 * resnet50 / 1e6
    print(f"\nModel for a cluster: ResNet-50, {resnet50 / 1e6:.1f}M parameters = {size_mb:.0f} MB of float32 "
          "gradients all-reduced per step; 32 images per rank per step.", file=file)
    networks = {"10 GbE (1.25 GB/s, 50 us)": (1.25e9, 50e-6), "100 Gb/s InfiniBand (12.5 GB/s, 2 us)": (12.5e9, 2e-6),
                "NVLink (150 GB/s, 5 us)": (150e9, 5e-6)}
    # compute per image (forward + backward, ~3 x 4.1 GFLOP): a CPU core of npcnn at ~50 GFLOP/s
    # effective, and a GPU under CuPy at ~100 TFLOP/s effective.
    devices = {"CPU rank (~50 GFLOP/s)": 12.3e9 / 50e9, "GPU rank (~100 TFLOP/s)": 12.3e9 / 100e12}
    ranks = (1, 2, 8, 64)
    for device, seconds_per_image in devices.items():
        print(f"  {device}: compute {32 * seconds_per_image * 1e3:.1f} ms per step", file=file)
        print(f"    {'network':<40}" + "".join(f"{f'R={r}':>16}" for r in ranks), file=file)
        for name, (bandwidth, latency) in networks.items():
            cells = []
            for r in ranks:
                t = cluster_model(resnet50, seconds_per_image, 32, r, bandwidth, latency)
                efficiency = cluster_model(resnet50, seconds_per_image, 32, 1, bandwidth, latency) / t
                cells.append(f"{t * 1e3:8.1f}ms {efficiency:4.0%}")
            print(f"    {name:<40}" + "".join(f"{c:>16}" for c in cells), file=file)
    print("  (cells: step time and weak-scaling efficiency T(1)/T(R); on GPUs the all-reduce dominates "
          "unless it overlaps the backward pass, as PyTorch DDP does by reducing buckets as soon as their "
          "gradients are ready)", file=file)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--batch", type=int, default=None, help="global batch size")
    parser.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        kind, *rest = args.worker
        if kind == "train":
            train_worker(*map(int, rest))
        else:
            allreduce_worker([int(s) for s in rest[1:]], int(rest[0]))
        return
    if shutil.which("mpirun") is None:
        sys.exit("mpirun not found: apt-get install -y openmpi-bin libopenmpi-dev && pip install mpi4py")
    batch = args.batch or (32 if args.quick else 128)
    steps, warmup = (3, 1) if args.quick else (20, 3)
    train_args = ["train", str(batch), str(steps), str(warmup)]

    runs = [("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2), ("2 processes, 1 thread each", 2, 1)]
    results = {label: _run(train_args, ranks, threads) for label, ranks, threads in runs}
    base = results[runs[0][0]]["images_per_s"]
    print(f"Small CNN ({results[runs[0][0]]['parameters']:,} parameters), 32x32 images, global batch {batch}, "
          f"{steps} timed steps")
    print(f"{'configuration':<30}{'images/s':>10}{'speed-up':>10}{'efficiency':>12}{'all-reduce':>12}"
          f"{'bytes/step':>12}")
    for label, ranks, threads in runs:
        r = results[label]
        workers = ranks * threads
        comm_share = r["comm_s_per_step"] / r["step_s"]
        print(f"{label:<30}{r['images_per_s']:>10.1f}{r['images_per_s'] / base:>10.2f}"
              f"{r['images_per_s'] / (workers * base):>12.0%}{comm_share:>12.1%}{r['bytes_per_step']:>12,}")

    sizes = [2**10, 2**16, 2**20] + ([] if args.quick else [2**22, 2**24])
    timings = _run(["allreduce", "5" if args.quick else "30", *map(str, sizes)], 2, 1)
    print("\nAll-reduce on 2 local ranks (shared memory):")
    for nbytes, seconds in timings.items():
        nbytes = int(nbytes)
        print(f"  {nbytes:>10,} bytes  {seconds * 1e6:10.1f} us  {nbytes / seconds / 1e9:6.2f} GB/s")
    print_cluster_model()


if __name__ == "__main__":
    main()
