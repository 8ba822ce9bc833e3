"""npcnn's training throughput and where its time goes (npcnn only; see fair_bench.py for PyTorch).

Images per second of a full step (forward, loss, backward, SGD update), float32, NumPy backend:

* ``lenet5``: ``npcnn.models.lenet5`` (tanh, average pooling) on batches of 1x32x32 images;
* ``lenet5-relu``: the LeNet-5 of the fair comparison (ReLU, max pooling, 28x28 inputs);
* ``resnet20``: ``npcnn.models.resnet20`` (option A shortcuts) on batches of 3x32x32 images;

with seconds per epoch (60,000 MNIST or 50,000 CIFAR-10 images / images per second), and with
``--profile`` the time of each layer type's forward and backward. The step is npcnn's own
``npcnn.train.train_step``, whose backward runs under ``nn.no_input_grad()`` (the first layer
skips the gradient of the input batch, as PyTorch does). By default npcnn's thread defaults
apply (one BLAS thread, the convolution, BatchNorm, ReLU and pooling kernels sharing the batch
over threads on all available cores) and every Conv2d keeps ``algo="auto"`` (im2col for these
nets; ``--algo winograd`` runs their 3x3 stride-1 convolutions by Winograd).

PyTorch is not timed here any more: in one process its thread pool and NumPy's OpenBLAS fight
over the cores (PyTorch measured inside this script ran at a third of its own speed, which
made npcnn look 2-3x closer to it than it is). ``benchmarks/fair_bench.py`` times every
framework in a process of its own and checks the twins' outputs first.

    python benchmarks/train_bench.py                  # all nets, 2 warm-up + 7 timed steps each
    python benchmarks/train_bench.py --quick          # 1 warm-up + 3 timed steps
    python benchmarks/train_bench.py --nets lenet5-relu --profile     # + time per layer type
    python benchmarks/train_bench.py --threads 1      # one thread for the BLAS and the kernels
    python benchmarks/train_bench.py --nets resnet20 --algo im2col --profile   # every conv by im2col

Not a test: timings on a shared machine are noisy. On a machine whose cores are busy with other
processes, OpenBLAS's threads spin waiting for each other and two BLAS threads can be several times
slower than one (npcnn's default uses one): compare with ``--threads 1`` before reading anything
into a slow figure.
"""

import argparse
import os
import pathlib
import statistics
import sys
import time
from collections import defaultdict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", nargs="+", default=["lenet5", "lenet5-relu", "resnet20"],
                        choices=["lenet5", "lenet5-relu", "resnet20"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=7, help="timed steps per framework (median reported)")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed steps")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads and kernel worker threads (OPENBLAS/OMP/MKL_NUM_THREADS and "
                        "NPCNN_NUM_THREADS, set before NumPy loads); default: npcnn's own default (1 BLAS "
                        "thread, kernels on all cores, unless the environment says otherwise)")
    parser.add_argument("--profile", action="store_true", help="time npcnn's layers by type, forward and backward")
    parser.add_argument("--algo", choices=["auto", "im2col", "winograd"], default="auto",
                        help="convolution algorithm of the Conv2d layers (frameworks.npcnn_set_algo; winograd: "
                        "the 3x3 stride-1 ones only); default auto, the library's choice")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.steps = 1, 3
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:  # otherwise nothing is set: npcnn's default applies
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NPCNN_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import npcnn  # noqa: E402
import npcnn.threads  # noqa: E402
from npcnn import models, nn  # noqa: E402

EPOCH_IMAGES = {"lenet5": 60000, "lenet5-relu": 60000, "resnet20": 50000}
INPUT_SHAPE = {"lenet5": (1, 32, 32), "lenet5-relu": (1, 28, 28), "resnet20": (3, 32, 32)}


# ----------------------------------------------------------------------------- npcnn


def npcnn_model(name):
    if name == "lenet5-relu":
        import frameworks

        return frameworks.lenet5_relu(nn)
    return models.lenet5() if name == "lenet5" else models.resnet20()


def npcnn_step(model, loss_fn, optimizer, x, y):
    """npcnn's own training step: forward, loss, backward under ``nn.no_input_grad()`` (no
    gradient of the input batch), SGD step, zero_grad."""
    return npcnn.train.train_step(model, loss_fn, optimizer, (x, y))


# ----------------------------------------------------------------------------- timing


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def setup(name, batch_size):
    """A seeded random batch and a fresh npcnn net with its SGD optimizer and loss."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size,) + INPUT_SHAPE[name]).astype(np.float32)
    y = rng.integers(0, 10, batch_size)
    npcnn.manual_seed(0)
    model = npcnn_model(name)
    if ARGS is not None and ARGS.algo != "auto":
        import frameworks

        frameworks.npcnn_set_algo(model, ARGS.algo)
    optimizer = npcnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return x, y, model, optimizer, nn.CrossEntropyLoss()


def bench(name, args):
    """Median step time after warm-up steps: seconds, images per second, seconds per epoch."""
    x, y, model, optimizer, loss_fn = setup(name, args.batch_size)
    for _ in range(args.warmup):
        npcnn_step(model, loss_fn, optimizer, x, y)
    step = statistics.median(timed(lambda: npcnn_step(model, loss_fn, optimizer, x, y)) for _ in range(args.steps))
    return {"step_s": step, "img_s": args.batch_size / step, "epoch_s": EPOCH_IMAGES[name] * step / args.batch_size}


# ----------------------------------------------------------------------------- per-layer profile


def profile_layers(name, args):
    """Seconds per step spent in each layer type's forward and backward, and in the rest."""
    x, y, model, optimizer, loss_fn = setup(name, args.batch_size)
    totals = defaultdict(float)

    def wrap(module, method, key):
        inner = getattr(module, method)

        def timed_call(*a, **kw):
            start = time.perf_counter()
            out = inner(*a, **kw)  # the first layer's backward returns None under no_input_grad
            totals[key] += time.perf_counter() - start
            return out

        object.__setattr__(module, method, timed_call)  # this instance only, for this benchmark

    for module in model.modules():
        if not list(module.children()):  # leaves do the work; containers only route it
            kind = type(module).__name__
            wrap(module, "forward", (kind, "forward"))
            wrap(module, "backward", (kind, "backward"))
    wrap(optimizer, "step", ("SGD", "step"))
    wrap(loss_fn, "forward", ("CrossEntropyLoss", "forward"))
    wrap(loss_fn, "backward", ("CrossEntropyLoss", "backward"))
    for _ in range(args.warmup):
        npcnn_step(model, loss_fn, optimizer, x, y)
    totals.clear()
    wall = sum(timed(lambda: npcnn_step(model, loss_fn, optimizer, x, y)) for _ in range(args.steps)) / args.steps
    rows = sorted(((v / args.steps, k) for k, v in totals.items()), reverse=True)
    print(f"\n{name}: npcnn step {1e3 * wall:.1f} ms (mean of {args.steps}), by layer type:")
    print(f"  {'layer':<22}{'pass':<10}{'ms/step':>9}{'share':>8}")
    for seconds, (kind, what) in rows:
        print(f"  {kind:<22}{what:<10}{1e3 * seconds:9.2f}{100 * seconds / wall:7.1f}%")
    rest = wall - sum(s for s, _ in rows)
    print(f"  {'(other: zero_grad, routing, adds)':<32}{1e3 * rest:9.2f}{100 * rest / wall:7.1f}%")


def main(args):
    threads, workers = npcnn.threads.get_num_threads(), npcnn.threads.get_num_workers()
    print(f"npcnn, batch {args.batch_size}, float32, {threads} BLAS thread(s), kernels on {workers} thread(s), "
          f"conv algo {args.algo}, {args.warmup} warm-up + {args.steps} timed steps (median), "
          "forward + backward + SGD(momentum) step")
    print(f"{'net':<12}{'ms/step':>9}{'img/s':>9}{'s/epoch':>9}")
    for name in args.nets:
        r = bench(name, args)
        print(f"{name:<12}{1e3 * r['step_s']:9.1f}{r['img_s']:9.0f}{r['epoch_s']:9.0f}")
    if args.profile:
        for name in args.nets:
            profile_layers(name, args)


if __name__ == "__main__":
    main(ARGS)
