# %% [markdown]
# # Lesson 6 — Initialization
#
# Training starts from the weights we pick, and a bad pick can stop it before it starts. This
# lesson sets the weights of deep MLPs five ways — zeros, $U(-1, 1)$, $N(0, 1)$, Xavier and He
# (plus a too-small $N(0, 0.01^2)$) — and looks at three things:
#
# 1. the **symmetry problem** of zero initialization, shown exactly;
# 2. per-layer **histograms of activations and gradients** in a 10-layer net, for tanh and ReLU;
# 3. what each initialization does to **training**.
#
# Run: `python examples/lessons/06_initialization.py [--quick]`.

# %%
import numpy as np

import npcnn
from npcnn import data, diagnostics, nn, optim, train
from _course import all_claims_hold, claim, flat_digits, savefig, setup

quick, out = setup("06_initialization", "Initialization")

# %% [markdown]
# ## 1. Zeros: every unit the same, forever
#
# If all weights of a layer start equal, all its units compute the same output, receive the same
# gradient, and take the same step: they stay equal after any number of steps, and the layer is
# worth one unit. With zeros it is worse still for tanh and ReLU: $a = \tanh(0) = 0$ (or
# $\max(0, 0) = 0$) makes every weight gradient $\delta\,a^\top = 0$ and every backward signal
# $W^\top\delta = 0$, so only the output bias ever learns. With sigmoid, $a = 1/2$, the gradients
# are not zero — but identical across units.
#
# We train a 4-layer sigmoid MLP from zeros and from Xavier for 50 SGD steps and measure, in each
# hidden weight matrix, the largest difference between two rows (two units).

# %%
def row_spread(model):
    """Largest difference between two units (rows) of any hidden Linear weight."""
    weights = [m.weight.data for m in model.modules() if isinstance(m, nn.Linear)][:-1]
    return max(float(np.ptp(w, axis=0).max()) for w in weights)


rng = np.random.default_rng(0)
x_sym = rng.standard_normal((64, 16)).astype(np.float32)
y_sym = rng.integers(0, 10, 64)
spreads = {}
for init in ("zeros", "xavier"):
    npcnn.manual_seed(0)
    net = diagnostics.deep_mlp(4, 16, "sigmoid", init=init)
    opt = optim.SGD(net.parameters(), lr=0.5)
    for _ in range(50):
        train.train_step(net, nn.CrossEntropyLoss(), opt, (x_sym, y_sym))
    spreads[init] = row_spread(net)
    print(f"sigmoid MLP from {init:6s}: after 50 steps, max difference between two hidden units' weights = "
          f"{spreads[init]:.3e}")

# %% [markdown]
# ## 2. What each initialization does to the signal
#
# For $z = \sum_{i=1}^{n} w_i x_i$ with independent zero-mean terms,
# $\mathrm{Var}(z) = n\,\mathrm{Var}(w)\,\mathrm{Var}(x)$. The signal keeps its size from layer to
# layer only if $n\,\mathrm{Var}(w) \approx 1$:
#
# * $U(-1, 1)$ has $\mathrm{Var}(w) = 1/3$ and $N(0, 1)$ has 1, whatever $n$: with $n = 256$ the
#   pre-activations are $\sqrt{256/3} \approx 9$ and $\sqrt{256} = 16$ times too large, and tanh
#   saturates at $\pm1$ where $\tanh' \approx 0$;
# * $N(0, 0.01^2)$ multiplies the signal by $\sqrt{256} \cdot 0.01 = 0.16$ per layer until it is 0;
# * **Xavier** (Glorot & Bengio, 2010): $\mathrm{Var}(w) = 2/(n_{in} + n_{out})$, i.e. $1/n$ for a square
#   layer (the lecture's $w \sim N(0, 1/N_{in})$); right for tanh, which is linear near 0;
# * **He** (2015): $\mathrm{Var}(w) = 2/n_{in}$. ReLU zeroes half of its inputs and so halves the
#   second moment; the factor 2 puts it back. (The lecture's slide labels this one "Xavier weight"
#   as well: it is He's.)
#
# A 10-layer MLP, width 256 (quick: 128), a batch of $N(0, 1)$ inputs, one forward and backward
# pass, recorded layer by layer with `npcnn.diagnostics.record`.

# %%
width = 128 if quick else 256
INITS = ("zeros", "uniform", "normal", "small", "xavier", "he")
x_probe = np.random.default_rng(1).standard_normal((256, width)).astype(np.float32)
y_probe = np.random.default_rng(2).integers(0, 10, 256)
records, weight_grads, stats = {}, {}, {}
for activation, act_type in (("tanh", nn.Tanh), ("relu", nn.ReLU)):
    for init in INITS:
        npcnn.manual_seed(0)
        net = diagnostics.deep_mlp(11, width, activation, init=init)
        loss_fn = nn.CrossEntropyLoss()
        with diagnostics.record(net, modules=act_type) as rec:
            loss_fn(net(x_probe), y_probe)
            net.backward(loss_fn.backward())
        records[activation, init] = rec
        weight_grads[activation, init] = [m.weight.grad.copy() for m in net.modules() if isinstance(m, nn.Linear)]
        stds = rec.column("act_std")
        stats[activation, init] = {"std1": stds[0], "std10": stds[-1],
                                   "saturated10": rec.column("frac_saturated")[-1],
                                   "grad1": float(np.linalg.norm(weight_grads[activation, init][0])),
                                   "grad10": float(np.linalg.norm(weight_grads[activation, init][-2]))}

lines = ["| activation | init | std layer 1 | std layer 10 | saturated layer 10 | ‖dW‖ layer 1 | ‖dW‖ layer 10 |",
         "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
for (activation, init), s in stats.items():
    saturated = f"{100 * s['saturated10']:.0f}%" if activation == "tanh" else "-"
    lines.append(f"| {activation} | {init} | {s['std1']:.3g} | {s['std10']:.3g} | {saturated} | "
                 f"{s['grad1']:.3g} | {s['grad10']:.3g} |")
init_table = "\n".join(lines)
print(init_table)
(out / "activations.md").write_text(init_table + "\n")

for activation in ("tanh", "relu"):
    diagnostics.plot_activation_histograms({init: records[activation, init] for init in INITS if init != "zeros"},
                                           path=out / f"activations_{activation}.png", max_layers=5,
                                           title=f"{activation} activations, layers 1 to 10, per initialization")

import matplotlib.pyplot as plt  # noqa: E402

shown_inits = [i for i in INITS if i != "zeros"]
layers = [0, 3, 6, 9]
for activation in ("tanh", "relu"):
    fig, axes = plt.subplots(len(shown_inits), len(layers), figsize=(2.4 * len(layers), 1.6 * len(shown_inits)))
    for r, init in enumerate(shown_inits):
        for c, layer in enumerate(layers):
            g = weight_grads[activation, init][layer].ravel()
            axes[r, c].hist(g, bins=50, color="C1")
            axes[r, c].set_yticks([])
            axes[r, c].tick_params(labelsize=6)
            axes[r, c].set_title(f"{init}: dL/dW layer {layer + 1}, std {g.std():.1e}", fontsize=7)
    fig.tight_layout()
    savefig(fig, out, f"gradients_{activation}.png")

# %% [markdown]
# Reading the table and the histograms: with tanh, $U(-1,1)$ and $N(0,1)$ pile the activations at
# $\pm1$ (saturated) and the small init collapses them to a spike at 0; Xavier keeps a spread in
# every layer. With ReLU, Xavier's signal halves in variance at every layer (the lecture's "most
# activation values converge to 0"), He's keeps its size, and $N(0,1)$ multiplies it by
# $\sqrt{256/2} \approx 11$ per layer. The gradients follow the same pattern backwards.
#
# ## 3. What it does to training
#
# The same kind of net, 6 layers of width 128 on flattened MNIST digits, trained with SGD and
# momentum from each initialization; the loss on a fixed set of 1,000 training digits.

# %%
x_all, labels, task = flat_digits()
x_eval, y_eval = x_all[:1000], labels[:1000]
n_classes = int(labels.max()) + 1
guess = float(np.log(n_classes))  # the loss of a network that outputs the same logits for every input
steps = 150 if quick else 600
curves, final = {}, {}
for activation in ("tanh", "relu"):
    for init in INITS:
        npcnn.manual_seed(0)
        net = diagnostics.deep_mlp(6, 128, activation, init=init, in_features=x_all.shape[1],
                                   out_features=n_classes)
        opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        loader = data.DataLoader((x_all, labels), batch_size=64, shuffle=True, seed=0)
        losses = []
        with np.errstate(all="ignore"):
            while len(losses) < steps:
                for batch in loader:
                    losses.append(train.train_step(net, nn.CrossEntropyLoss(), opt, batch))
                    if len(losses) == steps:
                        break
            result = train.evaluate(net, data.DataLoader((x_eval, y_eval), batch_size=1000),
                                    loss_fn=nn.CrossEntropyLoss())
        curves[activation, init] = losses
        final[activation, init] = result
        print(f"{activation:4s} {init:7s}: loss {result['loss']:.4f}, accuracy {100 * result['accuracy']:.1f}% "
              f"after {steps} steps")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for ax, activation in zip(axes, ("tanh", "relu")):
    for init in INITS:
        values = np.asarray(curves[activation, init], dtype=float)
        ax.plot(np.convolve(np.nan_to_num(values, nan=10.0, posinf=10.0), np.ones(10) / 10, mode="valid"),
                label=init)
    ax.set_title(f"{activation}, 6 layers, {task}")
    ax.set_xlabel("step")
    ax.set_ylim(0, 3)
axes[0].set_ylabel("training loss (10-step mean)")
axes[1].legend()
savefig(fig, out, "training.png")

# %% [markdown]
# Zeros stay at $\ln 10 = 2.30$, the loss of guessing (only the output bias learns the class
# frequencies), and so does the too-small init: its signal and its gradients are ~1e-10. With
# ReLU, $U(-1,1)$ and $N(0,1)$ blow the signal up by orders of magnitude per layer and the first
# steps overflow to inf/NaN; with tanh they saturate and crawl. Only the well-scaled
# initializations, Xavier and He, learn in the same number of steps. (For tanh at this depth
# He's twice-as-large variance is still inside tanh's near-linear range, so it does as well as
# Xavier here.) Batch normalization (lesson 8) makes the network far less sensitive to this choice.
#
# ## What this lesson claims, checked

# %%
claim("zero init: after 50 SGD steps every hidden unit still has exactly the same weights", spreads["zeros"] == 0.0)
claim("Xavier init: the units differ", spreads["xavier"] > 0.1)
claim("tanh with N(0, 1): more than half the layer-10 activations are saturated (|a| > 0.99)",
      stats["tanh", "normal"]["saturated10"] > 0.5)
claim("tanh with N(0, 0.01^2): the layer-10 activations collapse (std < 1e-6)", stats["tanh", "small"]["std10"] < 1e-6)
claim("tanh with Xavier: layer 10 keeps a spread (std > 0.1) and < 1% saturation",
      stats["tanh", "xavier"]["std10"] > 0.1 and stats["tanh", "xavier"]["saturated10"] < 0.01)
relu_xavier = stats["relu", "xavier"]["std10"] / stats["relu", "xavier"]["std1"]
relu_he = stats["relu", "he"]["std10"] / stats["relu", "he"]["std1"]
claim(f"ReLU with Xavier: the std falls from layer 1 to 10 (x{relu_xavier:.3f} < 0.1); with He it holds "
      f"(x{relu_he:.2f}, within [1/3, 3])", relu_xavier < 0.1 and 1 / 3 < relu_he < 3)
claim(f"training from zeros stays at the guessing loss ln {n_classes} (within 0.05) for tanh and ReLU",
      all(abs(final[a, "zeros"]["loss"] - guess) < 0.05 for a in ("tanh", "relu")))


def final_loss(activation, init):
    """The evaluation loss, with a diverged run (inf or NaN) counted as infinitely bad."""
    value = final[activation, init]["loss"]
    return value if np.isfinite(value) else np.inf


claim("ReLU from U(-1, 1) and N(0, 1) diverges (the loss is inf or NaN)",
      all(final_loss("relu", i) == np.inf for i in ("uniform", "normal")))
claim("for tanh and ReLU alike, Xavier and He both end with a lower loss than zeros, small, U(-1, 1), N(0, 1)",
      all(final_loss(a, good) < min(final_loss(a, bad) for bad in ("zeros", "small", "uniform", "normal"))
          for a in ("tanh", "relu") for good in ("xavier", "he")))
if task == "MNIST":
    claim("... and below a third of the guessing loss",
          all(final_loss(a, g) < guess / 3 for a in ("tanh", "relu") for g in ("xavier", "he")))
else:
    print("(the synthetic task learns more slowly: no claim on how far below the guessing loss it gets)")

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
