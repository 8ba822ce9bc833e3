"""The chain rule, measured: how much gradient reaches the first layer of a deep MLP.

For sigmoid, tanh and ReLU MLPs (width 32, PyTorch's default Linear init, inputs N(0, 1),
cross-entropy on random labels) at depths 5, 10, 20, 50 (weight layers: depth - 1 hidden
Linear -> activation blocks and a Linear head), plain and with residual blocks x + act(Wx + b):

* input_ratio  = ||dL/dx|| / ||dL/dlogits||: the backward signal that survives the whole net;
* weight_ratio = ||dL/dW_first|| / ||dL/dW_last||: the first layer's weight-gradient norm over
  the head's (it also carries the forward activations entering each layer, so it differs);
* bound = (max sigma')^(depth-1) * prod_l ||W_l||_2, the chain-rule bound on input_ratio with
  sigma' <= 1/4 (sigmoid), <= 1 (tanh, ReLU); and (1/4)^(depth-1) alone for sigmoid.

The residual nets keep input_ratio near 1: dL/dx = dL/dH (dF/dx + 1).
Each row is the geometric mean over --seeds seeds (min and max beside it).

    python benchmarks/gradient_flow.py                  # full: depths 5 10 20 50, 5 seeds (~20 s)
    python benchmarks/gradient_flow.py --quick          # depths 5 10 20, 1 seed
Writes gradient_flow.md/.csv, gradient_flow_deepest.png and gradient_flow_ratio.png to --out.
"""

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import npcnn  # noqa: E402
from npcnn import nn  # noqa: E402
from npcnn.diagnostics import Table, deep_mlp, plots, record  # noqa: E402

MAX_DERIVATIVE = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
COLUMNS = ["activation", "depth", "net", "input_ratio", "input_ratio_min", "input_ratio_max", "weight_ratio",
           "bound", "quarter_power"]


def measure(activation, depth, residual, seed, width=32, batch=64):
    """One forward/backward; returns (input_ratio, weight_ratio, bound, recorder)."""
    npcnn.manual_seed(seed)
    model = deep_mlp(depth, width, activation, init="default", residual=residual)
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((batch, width)).astype(np.float32)
    y = generator.integers(0, 10, batch)
    loss_fn = nn.CrossEntropyLoss()
    with record(model, modules=nn.Linear, max_samples=0) as rec:
        loss_fn(model(x), y)
        dlogits = loss_fn.backward()
        dx = model.backward(dlogits)
    weight_grads = rec.column("weight_grad_norm")
    spectral = [np.linalg.norm(m.weight.data.astype(np.float64), 2) for m in model.modules()
                if isinstance(m, nn.Linear)]
    bound = MAX_DERIVATIVE[activation] ** (depth - 1) * float(np.prod(spectral))
    input_ratio = np.linalg.norm(dx.astype(np.float64)) / np.linalg.norm(dlogits.astype(np.float64))
    return float(input_ratio), float(weight_grads[0] / weight_grads[-1]), bound, rec


def geomean(values):
    return float(np.exp(np.mean(np.log(values))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gradient_flow")
    parser.add_argument("--quick", action="store_true", help="depths 5 10 20 and one seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--depths", type=int, nargs="+", default=None)
    args = parser.parse_args(argv)
    depths = args.depths or ([5, 10, 20] if args.quick else [5, 10, 20, 50])
    seeds = range(1 if args.quick else args.seeds)
    out = pathlib.Path(args.out)

    table = Table(COLUMNS)
    deepest = {}
    for activation in ("sigmoid", "tanh", "relu"):
        for depth in depths:
            for residual in (False, True):
                runs = [measure(activation, depth, residual, seed) for seed in seeds]
                inputs = [r[0] for r in runs]
                table.append({"activation": activation, "depth": depth, "net": "residual" if residual else "plain",
                              "input_ratio": geomean(inputs), "input_ratio_min": min(inputs),
                              "input_ratio_max": max(inputs), "weight_ratio": geomean([r[1] for r in runs]),
                              "bound": geomean([r[2] for r in runs]) if not residual else float("nan"),
                              "quarter_power": 0.25 ** (depth - 1) if activation == "sigmoid" and not residual
                              else float("nan")})
                if depth == max(depths):
                    deepest[(activation, residual)] = runs[0][3]
    table.save(out, "gradient_flow", "Gradient reaching the first layer (width 32, default init)")
    print(table)

    fig, axes = plots.grid(1, 3, 4.6, 3.4)
    for ax, activation in zip(axes[0], ("sigmoid", "tanh", "relu")):
        runs = {("residual" if r else "plain"): deepest[(activation, r)] for r in (False, True)}
        plots.plot_gradient_norms(runs, column="grad_output_norm", ax=ax,
                                  title=f"{activation}, depth {max(depths)}: ||dL/d(Linear output)||")
    plots.save(fig, out / f"gradient_flow_depth{max(depths)}.png")

    fig, axes = plots.grid(1, 1, 6.4, 4.2)
    ax = axes[0, 0]
    for activation in ("sigmoid", "tanh", "relu"):
        for net, style in (("plain", "-"), ("residual", "--")):
            rows = table.where(activation=activation, net=net)
            ax.semilogy(rows.column("depth"), rows.column("input_ratio"), style, marker="o",
                        label=f"{activation} {net}")
    ax.set_xlabel("depth (weight layers)")
    ax.set_ylabel("||dL/dx|| / ||dL/dlogits||")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    plots.save(fig, out / "gradient_flow_ratio.png")
    print(f"wrote {out}/gradient_flow.md, .csv and PNGs")
    return table


if __name__ == "__main__":
    main()
