"""Learning rate and convergence: one net, trained with a too small, a good and a too large
learning rate, each with and without momentum, curves side by side.

Net: MLP 784 -> 128 -> ReLU -> 64 -> ReLU -> 10 (PyTorch's default init), on a subset of
Fashion-MNIST (real data; --data or NPCNN_DATA or ../shared/data), pixels in [0, 1], batch 64,
SGD with momentum 0 or 0.9, learning rates 0.001 / 0.05 / 1.0, same seed and batch order for all.
Beside the curves: the update-to-weight ratio lr * ||grad|| / ||w|| of the first layer at the
first step (rule of thumb: ~1e-3 is healthy; momentum 0.9 multiplies the steady-state step by
~10) and the final training loss and test accuracy.

    python benchmarks/lr_study.py                   # 10000 training images, 3 epochs (~1 min)
    python benchmarks/lr_study.py --quick           # 2000 images, 1 epoch
Writes lr_study.md/.csv and lr_study.png to --out.
"""

import argparse
import math
import os
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import npcnn  # noqa: E402
from npcnn import nn  # noqa: E402
from npcnn.data import DataLoader, TensorDataset, fashion_mnist  # noqa: E402
from npcnn.diagnostics import Table, plot_curves, plots, record  # noqa: E402
from npcnn.optim import SGD  # noqa: E402

LRS = [("too small", 0.001), ("good", 0.05), ("too large", 1.0)]


def data_root(arg):
    if arg:
        return arg
    shared = ROOT.parent / "shared" / "data"
    return os.environ.get("NPCNN_DATA") or (str(shared) if shared.is_dir() else None)


def load(root, n_train, n_test=2000, seed=0):
    train = fashion_mnist(root=root, train=True, normalize=True)
    test = fashion_mnist(root=root, train=False, normalize=True)
    pick = np.random.default_rng(seed).permutation(len(train))[:n_train]
    x, y = train.images[pick].reshape(n_train, -1), train.labels[pick]
    return (x, y), (test.images[:n_test].reshape(n_test, -1), test.labels[:n_test])


def make_model():
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def run(lr, momentum, train, test, epochs, seed=0):
    npcnn.manual_seed(seed)
    model = make_model()
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True, seed=seed)
    losses, first_ratio = [], None
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(epochs):
            for x, y in loader:
                if first_ratio is None:
                    with record(model, modules=nn.Linear, max_samples=0) as rec:
                        loss = loss_fn(model(x), y)
                        model.backward(loss_fn.backward())
                    first_ratio = rec.update_ratios(lr)["0.weight"]
                else:
                    loss = loss_fn(model(x), y)
                    model.backward(loss_fn.backward())
                optimizer.step()
                optimizer.zero_grad()
                losses.append(loss)
        model.eval()
        with npcnn.no_grad():
            accuracy = float((model(test[0]).argmax(axis=1) == test[1]).mean())
    return losses, first_ratio, accuracy


def smooth(values, window=20):
    values = np.asarray(values, dtype=float)
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid") if len(values) > window else values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/lr_study")
    parser.add_argument("--quick", action="store_true", help="2000 images, 1 epoch")
    parser.add_argument("--data", default=None, help="folder holding fashion-mnist/ (default: NPCNN_DATA)")
    args = parser.parse_args(argv)
    n_train, epochs = (2000, 1) if args.quick else (10000, 3)
    train, test = load(data_root(args.data), n_train)
    out = pathlib.Path(args.out)

    table = Table(["lr_setting", "lr", "momentum", "update_to_weight_step1", "final_loss", "test_accuracy"])
    curves = {0.0: {}, 0.9: {}}
    for momentum in (0.0, 0.9):
        for setting, lr in LRS:
            losses, ratio, accuracy = run(lr, momentum, train, test, epochs)
            tail = losses[-20:]
            table.append({"lr_setting": setting, "lr": lr, "momentum": momentum, "update_to_weight_step1": ratio,
                          "final_loss": float(np.mean(tail)) if all(math.isfinite(v) for v in tail) else float("inf"),
                          "test_accuracy": accuracy})
            curves[momentum][f"lr {lr:g} ({setting})"] = smooth(losses)
    title = f"Fashion-MNIST, {n_train} images, {epochs} epoch(s), MLP 784-128-64-10, SGD batch 64"
    table.save(out, "lr_study", title)
    fig, axes = plots.grid(1, 2, 6.0, 4.0)
    for ax, momentum in zip(axes[0], (0.0, 0.9)):
        plot_curves(curves[momentum], ax=ax, xlabel="step", ylabel="training loss (20-step mean)", logy=True,
                    title=f"momentum {momentum:g}")
    plots.save(fig, out / "lr_study.png")
    print(table)
    print(f"wrote {out}/lr_study.md, .csv and lr_study.png")
    return table


if __name__ == "__main__":
    main()
