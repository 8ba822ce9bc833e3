"""Initialization study: what each initializer does to the activations of a 10-layer net.

Nets: 10 hidden blocks Linear(W, W) -> activation (W = --width, default 256) and a Linear head,
inputs N(0, 1), a batch of --batch samples; activations tanh, sigmoid, ReLU; initializers
zeros, uniform U(-1, 1), normal N(0, 1), small N(0, 0.01^2), Xavier (uniform, gain 1), He
(normal, fan_in), and PyTorch's default (biases 0 except for the default). For every
(activation, init):

* the std of the activations in layers 1, 5 and 10, the fraction saturated (tanh |a| > 0.99,
  sigmoid a outside [0.01, 0.99]) and exactly zero in layer 10, and ||dL/dx|| / ||dL/dlogits||;
* the same net with BatchNorm1d between each Linear and its activation: the BN output std in
  layers 1 and 10 (BN fixes the spread whatever the init, zeros excepted);
* the symmetry problem of zero init, numerically: a sigmoid net trained with SGD from all-zero
  weights keeps every row of each hidden weight matrix identical (max spread across rows
  exactly 0) after any number of steps; from Xavier it does not.

    python benchmarks/init_study.py                 # width 256, batch 512 (~30 s)
    python benchmarks/init_study.py --quick         # width 64, batch 128
Writes init_study.md/.csv, init_study_bn.md/.csv, symmetry.md/.csv, and histograms
init_<activation>.png, init_<activation>_bn.png to --out.
"""

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import npcnn  # noqa: E402
from npcnn import nn  # noqa: E402
from npcnn.diagnostics import INITS, Table, deep_mlp, plot_activation_histograms, record  # noqa: E402
from npcnn.nn.norm import BatchNorm1d  # noqa: E402

ACTIVATION_TYPES = (nn.Tanh, nn.Sigmoid, nn.ReLU)
HIDDEN = 10


def run(activation, init, width, batch, batchnorm=False, seed=0):
    npcnn.manual_seed(seed)
    model = deep_mlp(HIDDEN + 1, width, activation, init=init, batchnorm=batchnorm)
    generator = np.random.default_rng(seed + 1)
    x = generator.standard_normal((batch, width)).astype(np.float32)
    y = generator.integers(0, 10, batch)
    loss_fn = nn.CrossEntropyLoss()
    with record(model, modules=ACTIVATION_TYPES + (BatchNorm1d,), max_samples=4096) as rec:
        loss_fn(model(x), y)
        dlogits = loss_fn.backward()
        dx = model.backward(dlogits)
    scale = np.linalg.norm(dlogits.astype(np.float64))
    return rec, float(np.linalg.norm(dx.astype(np.float64)) / scale)


def symmetry_table(steps=20, width=16, batch=64, seed=0):
    """Max over hidden layers of the spread across rows of W and of dL/dW, after SGD steps."""
    table = Table(["init", "step", "max_abs_W", "max_row_spread_W", "max_row_spread_grad", "loss"])
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((batch, width)).astype(np.float32)
    y = generator.integers(0, 10, batch)
    for init in ("zeros", "xavier"):
        npcnn.manual_seed(seed)
        model = deep_mlp(4, width, "sigmoid", init=init)
        hidden = [m for m in model.modules() if isinstance(m, nn.Linear)][:-1]
        loss_fn = nn.CrossEntropyLoss()
        for step in range(steps + 1):
            model.zero_grad()
            loss = loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            if step in (0, 1, 5, steps):
                table.append({"init": init, "step": step, "loss": loss,
                              "max_abs_W": max(float(np.abs(m.weight.data).max()) for m in hidden),
                              "max_row_spread_W": max(float(np.ptp(m.weight.data, axis=0).max()) for m in hidden),
                              "max_row_spread_grad": max(float(np.ptp(m.weight.grad, axis=0).max()) for m in hidden)})
            for p in model.parameters():
                p.data -= 0.5 * p.grad
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/init_study")
    parser.add_argument("--quick", action="store_true", help="width 64, batch 128")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None)
    args = parser.parse_args(argv)
    width = args.width or (64 if args.quick else 256)
    batch = args.batch or (128 if args.quick else 512)
    out = pathlib.Path(args.out)

    table = Table(["activation", "init", "std_L1", "std_L5", "std_L10", "saturated_L10", "zero_L10",
                   "input_grad_ratio"])
    bn_table = Table(["activation", "init", "bn_std_L1", "bn_std_L10", "act_std_L10", "saturated_L10",
                      "input_grad_ratio"])
    for activation in ("tanh", "sigmoid", "relu"):
        runs, bn_runs = {}, {}
        for init in INITS:
            rec, ratio = run(activation, init, width, batch)
            std = rec.column("act_std", ACTIVATION_TYPES)
            sat = rec.column("frac_saturated", ACTIVATION_TYPES)
            zero = rec.column("frac_zero", ACTIVATION_TYPES)
            table.append({"activation": activation, "init": init, "std_L1": std[0], "std_L5": std[4],
                          "std_L10": std[-1], "saturated_L10": sat[-1], "zero_L10": zero[-1],
                          "input_grad_ratio": ratio})
            runs[init] = rec
            rec, ratio = run(activation, init, width, batch, batchnorm=True)
            bn_std = rec.column("act_std", BatchNorm1d)
            bn_table.append({"activation": activation, "init": init, "bn_std_L1": bn_std[0], "bn_std_L10": bn_std[-1],
                             "act_std_L10": rec.column("act_std", ACTIVATION_TYPES)[-1],
                             "saturated_L10": rec.column("frac_saturated", ACTIVATION_TYPES)[-1],
                             "input_grad_ratio": ratio})
            bn_runs[init] = rec
        plot_activation_histograms(runs, out / f"init_{activation}.png", types=ACTIVATION_TYPES, max_layers=HIDDEN,
                                   title=f"{activation}: activations per layer (rows: init)")
        plot_activation_histograms(bn_runs, out / f"init_{activation}_bn.png", types=ACTIVATION_TYPES,
                                   max_layers=HIDDEN, title=f"{activation} with BatchNorm: activations per layer")
    table.save(out, "init_study", f"Activations of 10-layer nets by init (width {width}, batch {batch})")
    bn_table.save(out, "init_study_bn", f"The same nets with BatchNorm1d (width {width}, batch {batch})")
    symmetry = symmetry_table()
    symmetry.save(out, "symmetry", "Zero init: rows of hidden weights stay identical under SGD (sigmoid, width 16)")
    print(table, bn_table, symmetry, sep="\n\n")
    print(f"wrote {out}/init_study.md, init_study_bn.md, symmetry.md (+ .csv) and init_*.png")
    return table, bn_table, symmetry


if __name__ == "__main__":
    main()
