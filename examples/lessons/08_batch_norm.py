# %% [markdown]
# # Lesson 8 — Batch normalization
#
# Batch normalization (Ioffe & Szegedy, 2015) standardizes each feature over the mini-batch
# before the activation, then lets the network rescale it. This lesson writes the formulas out and
# checks npcnn's `BatchNorm1d` against them, separates training mode from evaluation mode and
# the running statistics that connect them, looks at what BN does to activation statistics, and
# measures the benefits the lecture lists: a higher stable learning rate, a deep sigmoid network
# that trains only with BN, faster convergence — and its failure at tiny batches, with LayerNorm
# and GroupNorm as the remedy.
#
# Run: `python examples/lessons/08_batch_norm.py [--quick]`.

# %%
import numpy as np

import npcnn
from npcnn import data, diagnostics, nn, optim, train
from _course import all_claims_hold, claim, flat_digits, savefig, setup

quick, out = setup("08_batch_norm", "Batch normalization")

# %% [markdown]
# ## 1. The formulas, on the lecture's batch of three
#
# For one feature with values $z^1, \dots, z^m$ in a batch of $m$:
#
# $$\mu = \frac1m\sum_i z^i,\qquad \sigma^2 = \frac1m\sum_i (z^i - \mu)^2,\qquad
#   \tilde z^i = \frac{z^i - \mu}{\sqrt{\sigma^2 + \epsilon}},\qquad \hat z^i = \gamma\,\tilde z^i + \beta .$$
#
# $\gamma$ and $\beta$ are learned (initialized to 1 and 0): without them every layer's input would
# be pinned to mean 0 and variance 1, where a sigmoid or tanh is nearly linear (95% of a standard
# normal lies in $[-1.96, 1.96]$); with them the network can undo the normalization where that
# helps. The lecture's example has $m = 3$.

# %%
z = np.array([[1.0, -2.0], [2.0, 0.0], [6.0, 5.0]])      # 3 samples, 2 features
bn = nn.BatchNorm1d(2).double()
bn.weight.data[:] = [2.0, 0.5]
bn.bias.data[:] = [1.0, -1.0]
mu = z.sum(axis=0) / 3
var = ((z - mu) ** 2).sum(axis=0) / 3
by_hand = bn.weight.data * (z - mu) / np.sqrt(var + bn.eps) + bn.bias.data
train_out = bn(z)
print(f"mu = {mu}, sigma^2 = {var}\nby hand:\n{by_hand}\nBatchNorm1d (training mode):\n{train_out}")

# %% [markdown]
# ## 2. Training mode, evaluation mode and the running statistics
#
# In training mode BN uses the batch's own $\mu, \sigma^2$, so a sample's output depends on the
# other samples in its batch. At test time there may be one sample, so BN keeps running averages
# (PyTorch's rule, which npcnn follows, with momentum $f = 0.1$ and the *unbiased* batch variance):
#
# $$\hat\mu \leftarrow (1 - f)\,\hat\mu + f\,\mu,\qquad
#   \hat\sigma^2 \leftarrow (1-f)\,\hat\sigma^2 + f\,\tfrac{m}{m-1}\sigma^2,$$
#
# starting from $\hat\mu = 0$, $\hat\sigma^2 = 1$; evaluation mode (`model.eval()`) normalizes with
# $\hat\mu, \hat\sigma^2$, a fixed affine map. After many batches from one distribution the running
# statistics approach that distribution's mean and variance.

# %%
expected_mean = 0.9 * 0.0 + 0.1 * mu
expected_var = 0.9 * 1.0 + 0.1 * var * 3 / 2
print(f"after one batch: running_mean {bn.running_mean} (expected {expected_mean}), "
      f"running_var {bn.running_var} (expected {expected_var})")
bn.eval()
eval_out = bn(z)
eval_by_hand = bn.weight.data * (z - bn.running_mean) / np.sqrt(bn.running_var + bn.eps) + bn.bias.data
print(f"evaluation mode on the same batch:\n{eval_out}")

stream = nn.BatchNorm1d(3).double()
population_mean, population_std = np.array([5.0, -1.0, 0.0]), np.array([2.0, 0.5, 3.0])
generator = np.random.default_rng(0)
for _ in range(200):
    stream(population_mean + population_std * generator.standard_normal((64, 3)))
print(f"after 200 batches: running_mean {np.round(stream.running_mean, 3)} (population {population_mean}), "
      f"running std {np.round(np.sqrt(stream.running_var), 3)} (population {population_std})")

# %% [markdown]
# ## 3. What it does to the activations
#
# The lecture's point: "without using any initialization, BN makes a very nice activation value
# distribution". We take the badly initialized 10-layer nets of lesson 6 ($U(-1, 1)$ weights, which
# saturate tanh and blow ReLU activations up by orders of magnitude) and put a `BatchNorm1d`
# between each linear layer and its activation.

# %%
width = 128 if quick else 256
x_probe = np.random.default_rng(1).standard_normal((256, width)).astype(np.float32)
activation_stats, recorders = {}, {}
for activation, act_type in (("tanh", nn.Tanh), ("relu", nn.ReLU)):
    for batchnorm in (False, True):
        npcnn.manual_seed(0)
        net = diagnostics.deep_mlp(11, width, activation, init="uniform", batchnorm=batchnorm)
        with diagnostics.record(net, modules=act_type) as rec:
            net(x_probe)
        label = f"{activation}, U(-1, 1){' + BN' if batchnorm else ''}"
        recorders[label] = rec
        activation_stats[activation, batchnorm] = (rec.column("act_std")[-1], rec.column("frac_saturated")[-1])
        std10, saturated10 = activation_stats[activation, batchnorm]
        print(f"{label:20s}: layer-10 activation std {std10:.3g}"
              + (f", saturated {100 * saturated10:.0f}%" if activation == "tanh" else ""))
diagnostics.plot_activation_histograms(recorders, path=out / "activations.png", max_layers=5,
                                       title="activations of layers 1 to 10, without and with batch norm")

# %% [markdown]
# ## 4. Training with and without BN
#
# Flattened MNIST digits, SGD with momentum 0.9, identical initial weights and batches for each
# pair of runs; the loss on a fixed set of 1,000 training digits at the end.
#
# * **a higher stable learning rate**: an 8-layer ReLU MLP (He init) at $\eta = 0.5$;
# * **a deep sigmoid network**: 20 sigmoid layers (Xavier init). Without BN the gradient reaching
#   the first layers is multiplied by $\sigma' \le 1/4$ per layer (lesson 1) and the net does not
#   learn; BN keeps every layer's input in the sigmoid's steep middle;
# * **faster convergence** at a rate both can use, $\eta = 0.02$: the steps until the 20-step
#   mean of the training loss first falls below 0.5.

# %%
x_all, labels, task = flat_digits()
n_classes = int(labels.max()) + 1
guess = float(np.log(n_classes))
x_train, y_train = x_all[:-1000], labels[:-1000]
x_held, y_held = x_all[-1000:], labels[-1000:]
eval_loader = data.DataLoader((x_train[:1000], y_train[:1000]), batch_size=1000)
steps = 150 if quick else 600


def mlp(depth, activation, norm=None, init="he"):
    """depth - 1 blocks Linear -> [norm] -> activation, then a Linear head; norm: None, "batch",
    "layer" or "group" (8 groups)."""
    npcnn.manual_seed(0)
    net = diagnostics.deep_mlp(depth, 128, activation, init=init, in_features=x_all.shape[1],
                               out_features=n_classes, batchnorm=norm == "batch")
    if norm in ("layer", "group"):
        for i in range(1, depth):
            block = getattr(net, f"block{i}")
            linear, act = block[0], block[1]
            normalizer = nn.LayerNorm(128) if norm == "layer" else nn.GroupNorm(8, 128)
            setattr(net, f"block{i}", nn.Sequential(linear, normalizer, act))
    return net


def fit(net, lr, n_steps, batch_size=64, x=None, y=None):
    """SGD + momentum for n_steps; returns the per-step losses (inf/NaN kept)."""
    x, y = (x_train, y_train) if x is None else (x, y)
    opt = optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    loader = data.DataLoader((x, y), batch_size=batch_size, shuffle=True, seed=0, drop_last=True)
    losses = []
    with np.errstate(all="ignore"):
        while len(losses) < n_steps:
            for batch in loader:
                losses.append(train.train_step(net, nn.CrossEntropyLoss(), opt, batch))
                if len(losses) == n_steps:
                    break
    return losses


def final_loss(net):
    with np.errstate(all="ignore"):
        value = train.evaluate(net, eval_loader, loss_fn=nn.CrossEntropyLoss())["loss"]
    return value if np.isfinite(value) else np.inf


experiments = {
    "ReLU, 8 layers, eta = 0.5": dict(depth=8, activation="relu", init="he", lr=0.5),
    "sigmoid, 20 layers, eta = 0.1": dict(depth=20, activation="sigmoid", init="xavier", lr=0.1),
    "ReLU, 8 layers, eta = 0.02": dict(depth=8, activation="relu", init="he", lr=0.02),
}
results, curves = {}, {}
for name, cfg in experiments.items():
    for norm in (None, "batch"):
        net = mlp(cfg["depth"], cfg["activation"], norm, cfg["init"])
        curves[name, norm] = fit(net, cfg["lr"], steps)
        results[name, norm] = final_loss(net)
        print(f"{name:30s} {'with BN' if norm else 'plain  '}: final loss {results[name, norm]:.4f}")


def steps_below(losses, level=0.5, window=20):
    smooth = np.convolve(np.nan_to_num(losses, nan=np.inf), np.ones(window) / window, mode="valid")
    hits = np.flatnonzero(smooth < level)
    return int(hits[0]) + window if hits.size else None


speed = {norm: steps_below(curves["ReLU, 8 layers, eta = 0.02", norm]) for norm in (None, "batch")}
print(f"steps until the 20-step mean training loss first falls below 0.5 (eta = 0.02): plain {speed[None]}, "
      f"BN {speed['batch']}")

# %% [markdown]
# ## 5. Tiny batches: where BN fails
#
# With $m = 2$, $\mu$ is the midpoint of the two values and $\sigma$ half their distance, so every
# normalized feature is exactly $\pm 1$ (up to $\epsilon$): the layer passes on only *which* of
# the two samples is larger, feature by feature. What the network learns in training mode then has
# little to do with what it computes in evaluation mode with the running statistics. LayerNorm
# normalizes each sample over its own features and GroupNorm over groups of features, so neither
# depends on the batch at all, and both behave the same at batch 2 as at batch 64.
#
# A 4-layer ReLU MLP with each normalization, trained on the same number of images at batch 2 and
# at batch 64 ($\eta$ scaled with the batch size), then evaluated in evaluation mode on 1,000
# held-out digits.

# %%
images_seen = 3000 if quick else 12000
pair = np.array([[0.3, -1.0, 2.0], [1.1, 4.0, 2.5]])
pair_out = nn.BatchNorm1d(3).double()(pair)
print(f"BN on a batch of two:\n{pair_out}")
held_loader = data.DataLoader((x_held, y_held), batch_size=1000)
tiny = {}
for norm in ("batch", "layer", "group"):
    for batch_size in (2, 64):
        net = mlp(4, "relu", norm)
        fit(net, 0.05 * batch_size / 64, images_seen // batch_size, batch_size)
        with np.errstate(all="ignore"):
            tiny[norm, batch_size] = train.evaluate(net, held_loader)["accuracy"]
        print(f"{norm:5s} norm, batch {batch_size:2d}: held-out accuracy {100 * tiny[norm, batch_size]:.1f}%")

lines = ["| normalization | batch 2 | batch 64 |", "| --- | ---: | ---: |"]
for norm in ("batch", "layer", "group"):
    lines.append(f"| {norm} | {100 * tiny[norm, 2]:.1f}% | {100 * tiny[norm, 64]:.1f}% |")
lines += ["", "| experiment | plain | with BN |", "| --- | ---: | ---: |"]
for name in experiments:
    lines.append(f"| {name} | {results[name, None]:.4f} | {results[name, 'batch']:.4f} |")
(out / "batch_norm.md").write_text(f"{task}\n\n" + "\n".join(lines) + "\n")

import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, len(experiments), figsize=(15, 3.6))
for ax, name in zip(axes, experiments):
    for norm, label in ((None, "plain"), ("batch", "with BN")):
        values = np.nan_to_num(np.asarray(curves[name, norm], dtype=float), nan=10.0, posinf=10.0)
        ax.plot(np.convolve(values, np.ones(10) / 10, mode="valid"), label=label)
    ax.set_title(name)
    ax.set_ylim(0, 3)
    ax.set_xlabel("step")
    ax.legend()
axes[0].set_ylabel("training loss (10-step mean)")
savefig(fig, out, "training.png")

# %% [markdown]
# ## What this lesson claims, checked

# %%
claim("BatchNorm1d in training mode equals the hand formula (gamma (z - mu) / sqrt(sigma^2 + eps) + beta) to 1e-12",
      np.abs(train_out - by_hand).max() < 1e-12)
claim("the running statistics follow (1 - f) old + f batch, with the unbiased variance",
      np.allclose(bn.running_mean, expected_mean, rtol=1e-14) and np.allclose(bn.running_var, expected_var, rtol=1e-14))
claim("evaluation mode normalizes with the running statistics, not the batch's",
      np.abs(eval_out - eval_by_hand).max() < 1e-12 and np.abs(eval_out - train_out).max() > 0.1)
claim("after 200 batches the running mean and std are within 5% of the population's (scale-relative)",
      np.all(np.abs(stream.running_mean - population_mean) < 0.05 * population_std)
      and np.allclose(np.sqrt(stream.running_var), population_std, rtol=0.05))
claim("with U(-1, 1) weights, tanh saturates (> 50% at layer 10) without BN and not with it (< 5%)",
      activation_stats["tanh", False][1] > 0.5 and activation_stats["tanh", True][1] < 0.05)
claim("with U(-1, 1) weights, ReLU's layer-10 std is > 100 without BN and < 2 with it",
      activation_stats["relu", False][0] > 100 and activation_stats["relu", True][0] < 2)
claim("BN on a batch of two gives +-1 in every feature (to eps): only the order of the two samples survives",
      np.abs(np.abs(pair_out) - 1).max() < 1e-3)
if task == "MNIST":
    claim("at eta = 0.5 the plain ReLU net diverges or is stuck at the guessing loss; with BN it learns",
          results["ReLU, 8 layers, eta = 0.5", None] > 0.9 * guess
          and results["ReLU, 8 layers, eta = 0.5", "batch"] < 0.5 * guess)
    claim("the 20-layer sigmoid net does not learn without BN (loss > 0.9 ln K) and learns with it",
          results["sigmoid, 20 layers, eta = 0.1", None] > 0.9 * guess
          and results["sigmoid, 20 layers, eta = 0.1", "batch"] < 0.5 * guess)
    claim(f"at eta = 0.02, BN gets the training loss below 0.5 first ({speed['batch']} vs {speed[None]} steps)",
          speed["batch"] is not None and (speed[None] is None or speed["batch"] < speed[None]))
    claim("BN at batch 2 loses at least 10 points of held-out accuracy against batch 64",
          tiny["batch", 2] < tiny["batch", 64] - 0.10)
    claim("LayerNorm and GroupNorm at batch 2 stay within 5 points of their batch-64 accuracy and beat BN at batch 2",
          all(tiny[n, 2] > tiny[n, 64] - 0.05 and tiny[n, 2] > tiny["batch", 2] for n in ("layer", "group")))
else:
    print("(MNIST not found: the training claims are made on MNIST only; the synthetic fallback task learns too "
          "slowly with these MLPs in quick mode to support them)")

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
