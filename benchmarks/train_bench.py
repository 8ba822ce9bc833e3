"""Training throughput: images per second of a full step (forward, loss, backward, SGD update).

Two networks, float32, NumPy backend:

* LeNet-5 (``npcnn.models.lenet5``: tanh, average pooling) on MNIST-shaped batches of 128
  images 1x32x32 (MNIST's 28x28 digits padded to 32x32, as the CLI trains it);
* ResNet-20 (``npcnn.models.resnet20``: option A shortcuts) on CIFAR-shaped batches of 128
  images 3x32x32;

and, when torch is installed, the same architectures written in PyTorch (below, with the same
module names, so npcnn's state_dict loads into them and their outputs are checked equal before
timing), on the CPU with the same number of threads. The ratio npcnn / PyTorch is printed
(targets of the project: LeNet-5 >= 0.40, ResNet-20 >= 0.33), with seconds per epoch
(60,000 MNIST or 50,000 CIFAR-10 images / images per second).

Steps are timed round-robin (npcnn, torch, npcnn, ...) after warm-up steps, so that the load of
a shared machine hits both alike; the median step time is reported.

    python benchmarks/train_bench.py                  # both nets, 2 warm-up + 7 timed steps each
    python benchmarks/train_bench.py --quick          # 1 warm-up + 3 timed steps
    python benchmarks/train_bench.py --nets lenet5 --profile     # + where npcnn's time goes, per layer type
    python benchmarks/train_bench.py --threads 1      # one BLAS / torch thread

Not a test: timings on a shared machine are noisy; compare the ratios measured in one run.
On a machine whose cores are busy with other processes, OpenBLAS's threads spin waiting for
each other and two threads can be several times slower than one (measured here: LeNet-5 npcnn
113 img/s with 2 threads against ~3,700 with ``--threads 1``, under a load average of ~5 on 2
cores): compare with ``--threads 1`` before reading anything into a slow figure.
"""

import argparse
import os
import pathlib
import statistics
import sys
import time
from collections import OrderedDict, defaultdict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", nargs="+", default=["lenet5", "resnet20"], choices=["lenet5", "resnet20"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=7, help="timed steps per framework (median reported)")
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed steps")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and torch threads (set before NumPy loads; default: the machine's cores)")
    parser.add_argument("--no-torch", action="store_true", help="time npcnn only")
    parser.add_argument("--profile", action="store_true", help="time npcnn's layers by type, forward and backward")
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.steps = 1, 3
    return args


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.threads:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
# PyTorch's OpenMP threads spin after each call by default and would steal the cores from
# OpenBLAS in the round-robin timing (slowing both several-fold): make them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import npcnn  # noqa: E402
from npcnn import models, nn  # noqa: E402

EPOCH_IMAGES = {"lenet5": 60000, "resnet20": 50000}
INPUT_SHAPE = {"lenet5": (1, 32, 32), "resnet20": (3, 32, 32)}
TARGET = {"lenet5": 0.40, "resnet20": 0.33}


# ----------------------------------------------------------------------------- npcnn


def npcnn_model(name):
    return models.lenet5() if name == "lenet5" else models.resnet20()


def npcnn_step(model, loss_fn, optimizer, x, y):
    return npcnn.train.train_step(model, loss_fn, optimizer, (x, y))


# ----------------------------------------------------------------------------- PyTorch twins


def torch_models():
    """The PyTorch twins of npcnn's LeNet-5 and CIFAR ResNet-20, same layers and state_dict keys."""
    import torch
    from torch import nn as tnn

    class LeNet5(tnn.Sequential):
        def __init__(self):
            super().__init__(OrderedDict([
                ("c1", tnn.Conv2d(1, 6, 5)), ("tanh1", tnn.Tanh()), ("s2", tnn.AvgPool2d(2, 2)),
                ("c3", tnn.Conv2d(6, 16, 5)), ("tanh3", tnn.Tanh()), ("s4", tnn.AvgPool2d(2, 2)),
                ("c5", tnn.Conv2d(16, 120, 5)), ("tanh5", tnn.Tanh()), ("flatten", tnn.Flatten(1)),
                ("f6", tnn.Linear(120, 84)), ("tanh6", tnn.Tanh()), ("output", tnn.Linear(84, 10)),
            ]))

    class ShortcutA(tnn.Module):
        """Subsample by ``stride`` and zero-pad the new channels evenly (no parameters)."""

        def __init__(self, in_channels, out_channels, stride):
            super().__init__()
            self.stride, self.front = stride, (out_channels - in_channels) // 2
            self.back = out_channels - in_channels - self.front

        def forward(self, x):
            sub = x[:, :, ::self.stride, ::self.stride]
            return torch.nn.functional.pad(sub, (0, 0, 0, 0, self.front, self.back))

    class BasicBlock(tnn.Module):
        def __init__(self, inplanes, planes, stride, downsample):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = downsample

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet20(tnn.Sequential):
        def __init__(self, n=3, width=16):
            stages, inplanes = [], width
            for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
                blocks = []
                for i in range(n):
                    s = stride if i == 0 else 1
                    down = ShortcutA(inplanes, planes, s) if (s != 1 or inplanes != planes) else None
                    blocks.append(BasicBlock(inplanes, planes, s, down))
                    inplanes = planes
                stages.append(tnn.Sequential(*blocks))
            super().__init__(OrderedDict([
                ("conv1", tnn.Conv2d(3, width, 3, 1, 1, bias=False)), ("bn1", tnn.BatchNorm2d(width)),
                ("relu", tnn.ReLU()), ("layer1", stages[0]), ("layer2", stages[1]), ("layer3", stages[2]),
                ("avgpool", tnn.AdaptiveAvgPool2d(1)), ("flatten", tnn.Flatten(1)), ("fc", tnn.Linear(4 * width, 10)),
            ]))

    return {"lenet5": LeNet5, "resnet20": ResNet20}


def torch_twin(name, model):
    """The PyTorch twin of ``model`` with its weights; raises if the two disagree on a batch."""
    import torch

    twin = torch_models()[name]()
    state = {k: torch.from_numpy(np.array(npcnn.to_numpy(v))) for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((4,) + INPUT_SHAPE[name]).astype(np.float32)
    model.eval()
    twin.eval()
    with npcnn.no_grad(), torch.no_grad():
        ours, theirs = npcnn.to_numpy(model(x)), twin(torch.from_numpy(x)).numpy()
    model.train()
    twin.train()
    if not np.allclose(ours, theirs, rtol=1e-4, atol=1e-4):
        raise AssertionError(f"{name}: the PyTorch twin differs from npcnn's model "
                             f"(max |diff| {np.abs(ours - theirs).max():.2e})")
    return twin


def torch_step_fn(twin):
    import torch

    optimizer = torch.optim.SGD(twin.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        loss = loss_fn(twin(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    return step


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
    optimizer = npcnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return x, y, model, optimizer, nn.CrossEntropyLoss()


def bench(name, args, torch_available):
    x, y, model, optimizer, loss_fn = setup(name, args.batch_size)
    runners = {"npcnn": lambda: npcnn_step(model, loss_fn, optimizer, x, y)}
    if torch_available:
        import torch

        twin = torch_twin(name, model)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)
        torch_step = torch_step_fn(twin)
        runners["torch"] = lambda: torch_step(tx, ty)
    for _ in range(args.warmup):
        for run in runners.values():
            run()
    times = defaultdict(list)
    for _ in range(args.steps):  # round-robin
        for key, run in runners.items():
            times[key].append(timed(run))
    result = {}
    for key, ts in times.items():
        step = statistics.median(ts)
        result[key] = {"step_s": step, "img_s": args.batch_size / step, "epoch_s": EPOCH_IMAGES[name] * step /
                       args.batch_size}
    return result


# ----------------------------------------------------------------------------- per-layer profile


def profile_layers(name, args):
    """Seconds per step spent in each layer type's forward and backward, and in the rest."""
    x, y, model, optimizer, loss_fn = setup(name, args.batch_size)
    totals = defaultdict(float)

    def wrap(module, method, key):
        inner = getattr(module, method)

        def timed_call(*a):
            start = time.perf_counter()
            out = inner(*a)
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
    torch_available = False
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads or os.cpu_count())
            torch_available = True
        except ImportError:
            print("(torch is not installed: npcnn only; pip install torch for the comparison)")
    threads = args.threads or os.cpu_count()
    print(f"batch {args.batch_size}, float32, {threads} thread(s), {args.warmup} warm-up + {args.steps} timed "
          f"steps (median), forward + backward + SGD(momentum) step")
    header = f"{'net':<10}{'framework':<10}{'ms/step':>9}{'img/s':>9}{'s/epoch':>9}"
    print(header + ("   npcnn/torch (target)" if torch_available else ""))
    for name in args.nets:
        result = bench(name, args, torch_available)
        for key, r in result.items():
            line = f"{name:<10}{key:<10}{1e3 * r['step_s']:9.1f}{r['img_s']:9.0f}{r['epoch_s']:9.0f}"
            if key == "npcnn" and "torch" in result:
                ratio = r["img_s"] / result["torch"]["img_s"]
                line += f"   {ratio:.2f} (>= {TARGET[name]:.2f})"
            print(line)
    if args.profile:
        for name in args.nets:
            profile_layers(name, args)


if __name__ == "__main__":
    main(ARGS)
