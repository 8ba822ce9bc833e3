"""The degradation problem (He et al. 2015, Fig. 1 and 6), in a reduced setting.

A deeper plain net trains WORSE than a shallower one (higher training loss, so not
overfitting), while the deeper residual net does not. Four nets of the CIFAR family
(``npcnn.models``: 6n + 2 layers, three stages of n basic blocks, BatchNorm, option-A
shortcuts): plain-20, plain-56, ResNet-20, ResNet-56, trained with the same budget.

Reduced setting (the paper: CIFAR-10, width 16, 64k iterations of batch 128):
  data   Fashion-MNIST padded 28 -> 32 (real data, --data or NPCNN_DATA or ../shared/data),
         normalized to mean 0 / std 1, a random subset of --train images (default 2000),
         1000 test images; ``--dataset cifar10`` uses CIFAR-10 when it is on disk;
  nets   width --width (default 8: stages of 8, 16, 32 channels instead of 16, 32, 64);
  train  --epochs (default 2) of SGD, batch --batch (default 64), lr 0.1, momentum 0.9, weight decay 1e-4,
         the same seed, initial weights' generator and batch order for all four.
Measured for each net: the training-loss curve, final training loss, test accuracy, and the
gradient norm of every convolution's weight on a fixed batch at initialization and after
training.

    python benchmarks/degradation.py                 # 2000 images, width 8, 2 epochs: ~15-20 min on 2 cores
    python benchmarks/degradation.py --quick         # 256 images, width 4, 1 epoch: ~1-2 min (a smoke test)
(Measured CPU time of one training step, batch 64, width 8: ResNet-56 6.6 s, ResNet-20 1.1 s; the
plain nets cost the same. Longer runs show the effect more clearly: --train 5000 --epochs 5.)
Writes degradation.md/.csv, degradation_loss.png and degradation_gradients.png to --out.
"""

import argparse
import os
import pathlib
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import npcnn  # noqa: E402
from npcnn import models, nn  # noqa: E402
from npcnn.data import DataLoader, TensorDataset, cifar10, fashion_mnist  # noqa: E402
from npcnn.diagnostics import Table, plot_curves, plot_gradient_norms, plots, record  # noqa: E402
from npcnn.nn.conv import Conv2d  # noqa: E402
from npcnn.optim import SGD  # noqa: E402

NETS = [("plain-20", models.plain20), ("plain-56", models.plain56),
        ("ResNet-20", models.resnet20), ("ResNet-56", models.resnet56)]


def data_root(arg):
    if arg:
        return arg
    shared = ROOT.parent / "shared" / "data"
    return os.environ.get("NPCNN_DATA") or (str(shared) if shared.is_dir() else None)


def load(dataset, root, n_train, n_test=1000, seed=0):
    """(x_train, y_train), (x_test, y_test) as float32 NCHW 32 x 32, normalized with train stats."""
    if dataset == "cifar10":
        train, test = cifar10(root=root, train=True, normalize=True), cifar10(root=root, train=False, normalize=True)
    else:
        train = fashion_mnist(root=root, train=True, normalize=True)
        test = fashion_mnist(root=root, train=False, normalize=True)
    pick = np.random.default_rng(seed).permutation(len(train))[:n_train]
    x, y, xt, yt = train.images[pick], train.labels[pick], test.images[:n_test], test.labels[:n_test]
    if x.shape[-1] == 28:  # pad Fashion-MNIST to CIFAR's 32 x 32
        pad = ((0, 0), (0, 0), (2, 2), (2, 2))
        x, xt = np.pad(x, pad), np.pad(xt, pad)
    mean, std = float(x.mean()), float(x.std())
    return ((x - mean) / std).astype(np.float32), y, ((xt - mean) / std).astype(np.float32), yt


def conv_gradients(model, x, y):
    """One forward/backward in training mode; the recorder of every Conv2d (weights untouched)."""
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    with record(model, modules=Conv2d, max_samples=0) as rec:
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    model.zero_grad()
    return rec


def accuracy(model, x, y, batch=250):
    model.eval()
    correct = 0
    with npcnn.no_grad():
        for i in range(0, len(x), batch):
            correct += int((model(x[i:i + batch]).argmax(axis=1) == y[i:i + batch]).sum())
    model.train()
    return correct / len(x)


def train(build, data, width, epochs, in_channels, seed=0, lr=0.1, batch=64):
    x, y, xt, yt = data
    npcnn.manual_seed(seed)
    model = build(num_classes=10, in_channels=in_channels, width=width)
    probe = (x[:64], y[:64])
    at_init = conv_gradients(model, *probe)
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=True, seed=seed)
    losses, start = [], time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            losses.append(loss_fn(model(xb), yb))
            model.backward(loss_fn.backward())
            optimizer.step()
            optimizer.zero_grad()
    seconds = time.perf_counter() - start
    after = conv_gradients(model, *probe)
    return model, losses, at_init, after, accuracy(model, x, y), accuracy(model, xt, yt), seconds


def smooth(values, window):
    values = np.asarray(values, dtype=float)
    return np.convolve(values, np.ones(window) / window, mode="valid") if len(values) > window else values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/degradation")
    parser.add_argument("--quick", action="store_true", help="256 images, width 4, 1 epoch")
    parser.add_argument("--dataset", choices=["fashion_mnist", "cifar10"], default="fashion_mnist")
    parser.add_argument("--data", default=None, help="folder holding the dataset (default: NPCNN_DATA)")
    parser.add_argument("--train", type=int, default=None, help="training images (default 2000)")
    parser.add_argument("--width", type=int, default=None, help="channels of the first stage (default 8; paper 16)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 2)")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    n_train = args.train or (256 if args.quick else 2000)
    width = args.width or (4 if args.quick else 8)
    epochs = args.epochs or (1 if args.quick else 2)
    data = load(args.dataset, data_root(args.data), n_train, n_test=200 if args.quick else 1000)
    in_channels = data[0].shape[1]
    out = pathlib.Path(args.out)

    table = Table(["net", "params", "final_train_loss", "train_accuracy", "test_accuracy",
                   "grad_first_over_last_init", "grad_first_over_last_trained", "seconds"])
    curves, init_runs, trained_runs = {}, {}, {}
    for name, build in NETS:
        model, losses, at_init, after, train_acc, test_acc, seconds = train(build, data, width, epochs, in_channels,
                                                                            lr=args.lr, batch=args.batch)
        g0, g1 = at_init.column("weight_grad_norm"), after.column("weight_grad_norm")
        window = max(1, len(losses) // 10)
        table.append({"net": name, "params": model.num_parameters(),
                      "final_train_loss": float(np.mean(losses[-window:])), "train_accuracy": train_acc,
                      "test_accuracy": test_acc, "grad_first_over_last_init": float(g0[0] / g0[-1]),
                      "grad_first_over_last_trained": float(g1[0] / g1[-1]), "seconds": seconds})
        curves[name] = smooth(losses, window)
        init_runs[name], trained_runs[name] = at_init, after
        print(f"{name}: final training loss {table[-1]['final_train_loss']:.3f}, test accuracy {test_acc:.3f} "
              f"({seconds:.0f} s)", flush=True)
    title = (f"{args.dataset}, {n_train} training images, width {width}, {epochs} epoch(s), "
             f"SGD lr {args.lr:g} momentum 0.9 wd 1e-4, batch {args.batch}")
    table.save(out, "degradation", title)
    plot_curves(curves, out / "degradation_loss.png", xlabel="step", ylabel=f"training loss ({window}-step mean)",
                title=title)
    fig, axes = plots.grid(1, 2, 6.0, 4.0)
    plot_gradient_norms(init_runs, column="weight_grad_norm", ax=axes[0, 0], title="||dL/dW|| per conv, at init")
    plot_gradient_norms(trained_runs, column="weight_grad_norm", ax=axes[0, 1],
                        title="||dL/dW|| per conv, after training")
    plots.save(fig, out / "degradation_gradients.png")
    print(table)
    print(f"wrote {out}/degradation.md, .csv and PNGs")
    return table


if __name__ == "__main__":
    main()
