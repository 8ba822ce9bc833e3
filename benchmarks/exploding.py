"""Exploding gradients: too-large initialization makes gradient norms grow with depth, and
gradient clipping contains it.

Part 1 (one forward/backward, ReLU MLP of width 32, inputs N(0, 1), cross-entropy on random
labels): weights He-normal times a gain of 1, 1.5, 2, and N(0, 1) ("normal", a gain of 4 over He
at width 32), at depths 5, 10, 20, 50. Each layer multiplies the backward signal by about the
gain, so ||dL/dx|| / ||dL/dlogits|| ~ gain^(depth-1) and the total gradient norm grows with depth.

Part 2 (training): a depth-20 ReLU MLP with He x 1.5 weights on a synthetic 10-class problem
(Gaussian clusters in 32 dimensions), SGD with momentum 0.9, learning rates 0.01 and 0.1, with
and without clip_grad_norm_(max_norm=1); He x 1 without clipping as the reference. Without
clipping the first update (gradient norm ~1e4) throws the weights out and the loss becomes
inf/NaN; with clipping every step has norm <= lr and the net trains.

    python benchmarks/exploding.py              # depths 5 10 20 50; 300 training steps (~10 s)
    python benchmarks/exploding.py --quick      # depths 5 10 20; 60 steps
Writes exploding.md/.csv, exploding_training.md/.csv, exploding_layers.png and
exploding_training.png to --out.
"""

import argparse
import math
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import npcnn  # noqa: E402
from npcnn import nn  # noqa: E402
from npcnn.diagnostics import Table, deep_mlp, grad_norm, plot_curves, plot_gradient_norms, plots, record  # noqa: E402
from npcnn.nn.utils import clip_grad_norm_  # noqa: E402
from npcnn.optim import SGD  # noqa: E402

INITS = [("he", 1.0), ("he", 1.5), ("he", 2.0), ("normal", 1.0)]


def label(init, gain):
    return "N(0, 1)" if init == "normal" else f"He x {gain:g}"


def one_pass(init, gain, depth, seed=0, width=32, batch=64):
    npcnn.manual_seed(seed)
    model = deep_mlp(depth, width, "relu", init=init, scale=gain)
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((batch, width)).astype(np.float32)
    y = generator.integers(0, 10, batch)
    loss_fn = nn.CrossEntropyLoss()
    with np.errstate(over="ignore", invalid="ignore"), record(model, modules=nn.Linear, max_samples=0) as rec:
        loss_fn(model(x), y)
        dlogits = loss_fn.backward()
        dx = model.backward(dlogits)
    ratio = float(np.linalg.norm(dx.astype(np.float64)) / np.linalg.norm(dlogits.astype(np.float64)))
    return ratio, grad_norm(model.parameters()), rec


def clusters(seed=0, dim=32, classes=10):
    generator = np.random.default_rng(seed)
    centers = generator.standard_normal((classes, dim)).astype(np.float32)

    def batch(n=64):
        y = generator.integers(0, classes, n)
        return centers[y] + 0.5 * generator.standard_normal((n, dim)).astype(np.float32), y
    return batch


def train(gain, lr, clip, steps, seed=0, depth=20):
    """Loss and pre-clipping gradient norm per step; stops early once the loss is not finite."""
    npcnn.manual_seed(seed)
    model = deep_mlp(depth, 32, "relu", init="he", scale=gain)
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn, batches = nn.CrossEntropyLoss(), clusters(seed)
    losses, norms = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            x, y = batches()
            loss = loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            norms.append(grad_norm(model.parameters()))
            losses.append(loss)
            if not math.isfinite(loss):
                break
            if clip is not None:
                clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            optimizer.zero_grad()
    return losses, norms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/exploding")
    parser.add_argument("--quick", action="store_true", help="depths 5 10 20 and 60 training steps")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args(argv)
    depths = [5, 10, 20] if args.quick else [5, 10, 20, 50]
    steps = args.steps or (60 if args.quick else 300)
    out = pathlib.Path(args.out)

    table = Table(["init", "depth", "input_grad_ratio", "total_grad_norm"])
    layer_runs = {}
    for init, gain in INITS:
        for depth in depths:
            ratio, total, rec = one_pass(init, gain, depth)
            table.append({"init": label(init, gain), "depth": depth, "input_grad_ratio": ratio,
                          "total_grad_norm": total})
            if depth == 20:
                layer_runs[label(init, gain)] = rec
    table.save(out, "exploding", "Gradient norms at initialization, ReLU MLP width 32")
    plot_gradient_norms(layer_runs, out / "exploding_layers.png", column="grad_output_norm",
                        title="depth 20: ||dL/d(Linear output)|| per layer")

    runs = [(1.0, 0.01, None), (1.5, 0.01, None), (1.5, 0.01, 1.0), (1.5, 0.1, None), (1.5, 0.1, 1.0)]
    train_table = Table(["init", "lr", "clip", "first_loss", "final_loss", "first_grad_norm", "steps_finite"])
    curves, norm_curves = {}, {}
    for gain, lr, clip in runs:
        losses, norms = train(gain, lr, clip, steps)
        name = f"He x {gain:g}, lr {lr:g}, " + ("clip 1" if clip else "no clip")
        finite = [v for v in losses if math.isfinite(v)]
        final = float(np.mean(losses[-10:])) if len(finite) == len(losses) else float("inf")
        train_table.append({"init": f"He x {gain:g}", "lr": lr, "clip": "norm 1" if clip else "none",
                            "first_loss": losses[0], "final_loss": final, "first_grad_norm": norms[0],
                            "steps_finite": len(finite)})
        curves[name], norm_curves[name] = losses + [float("nan")] * (steps - len(losses)), norms
    train_table.save(out, "exploding_training", f"Depth-20 ReLU MLP, SGD momentum 0.9, {steps} steps")
    fig, axes = plots.grid(1, 2, 6.0, 4.0)
    plot_curves(curves, ylabel="training loss", logy=True, ax=axes[0, 0], title="loss (a curve that stops hit inf/NaN)")
    plot_curves(norm_curves, ylabel="gradient norm before clipping", logy=True, ax=axes[0, 1], title="gradient norm")
    plots.save(fig, out / "exploding_training.png")
    print(table, train_table, sep="\n\n")
    print(f"wrote {out}/exploding.md, exploding_training.md (+ .csv) and PNGs")
    return table, train_table


if __name__ == "__main__":
    main()
