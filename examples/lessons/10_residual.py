# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 10: Vanishing gradients and the residual fix
#
# Backpropagation multiplies one local derivative per layer. Through $n$ layers the gradient
# that reaches the first one is a product of $n$ factors, and a product of many factors below 1
# goes to zero (the gradient **vanishes**, the first layers stop learning), while one of many
# factors above 1 blows up (it **explodes**, one step throws the weights away). This lesson
# measures both, verifies the residual block's gradient formula number by number, reproduces the
# degradation problem that motivated ResNet (a deeper plain net trains *worse*), and shows
# gradient clipping against explosion.

# %%
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "")
from _course import all_claims_hold, claim, savefig, setup  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

import npcnn  # noqa: E402
from npcnn import models, nn, optim  # noqa: E402
from npcnn.data import DatasetNotFoundError, mnist, synthetic_digits  # noqa: E402
from npcnn.diagnostics import deep_mlp  # noqa: E402
from npcnn.gradcheck import check_module  # noqa: E402
from npcnn.nn.utils import clip_grad_norm_  # noqa: E402

quick, out = setup("10_residual", "vanishing gradients and the residual fix")

# %% [markdown]
# ## Why sigmoid makes gradients vanish: $\sigma' \le 1/4$
#
# For the sigmoid $\sigma(z) = 1/(1 + e^{-z})$ the derivative is $\sigma'(z) = \sigma(z)(1 -
# \sigma(z))$. With $a = \sigma$ and $b = 1 - \sigma$ the inequality of arithmetic and geometric
# means, $ab \le \left(\frac{a + b}{2}\right)^2$, gives $\sigma' \le (1/2)^2 = 1/4$, reached at
# $z = 0$ (the lecture's argument). A chain of $n$ sigmoid layers therefore multiplies the
# gradient by at most $(1/4)^n$ times the product of the weights' norms: $(1/4)^{10} \approx
# 10^{-6}$.

# %%
z = np.linspace(-8, 8, 16001)
s = 1.0 / (1.0 + np.exp(-z))
print(f"max sigma'(z) = {np.max(s * (1 - s)):.6f} at z = {z[np.argmax(s * (1 - s))]:.3f}")

# %% [markdown]
# ## The gradient-flow table: plain against residual
#
# For MLPs of width 32 (PyTorch's default initialization, random inputs and labels) we run one
# forward and backward pass and measure how much of the backward signal survives the whole
# network: $\|\partial L/\partial x\| / \|\partial L/\partial \text{logits}\|$. The residual
# versions wrap every hidden block as $x + \phi(Wx + b)$ (`deep_mlp(..., residual=True)`).

# %%
DEPTHS = [5, 10, 20] if quick else [5, 10, 20, 50]


def input_ratio(activation, depth, residual, seed=0):
    npcnn.manual_seed(seed)
    model = deep_mlp(depth, 32, activation, residual=residual)
    gen = np.random.default_rng(seed)
    x = gen.standard_normal((64, 32)).astype(np.float32)
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(model(x), gen.integers(0, 10, 64))
    dlogits = loss_fn.backward()
    dx = model.backward(dlogits)
    return float(np.linalg.norm(dx) / np.linalg.norm(dlogits))


flow = {(a, d, r): input_ratio(a, d, r) for a in ("sigmoid", "tanh", "relu") for d in DEPTHS for r in (False, True)}
lines = ["| activation | net | " + " | ".join(f"depth {d}" for d in DEPTHS) + " |",
         "| --- | --- | " + " | ".join("---" for _ in DEPTHS) + " |"]
for a in ("sigmoid", "tanh", "relu"):
    for r in (False, True):
        lines.append(f"| {a} | {'residual' if r else 'plain'} | "
                     + " | ".join(f"{flow[a, d, r]:.2e}" for d in DEPTHS) + " |")
flow_table = "\n".join(lines)
print("||dL/dx|| / ||dL/dlogits||\n" + flow_table)
(out / "gradient_flow.md").write_text("||dL/dx|| / ||dL/dlogits||, one forward/backward, width 32\n\n"
                                      + flow_table + "\n")

# %% [markdown]
# Plain sigmoid nets lose close to a factor of ten per layer (the $1/4$ of $\sigma'$ times weights
# of norm below 1); at depth 20 practically nothing reaches the input. tanh ($\tanh' \le 1$) and
# ReLU (derivative 0 or 1) lose less per layer, but with PyTorch's default initialization, whose
# weights are too small to preserve the norm (the initialization lesson's topic), they too shrink
# geometrically with depth. The residual nets keep the ratio away from zero at every depth:
# sigmoid's stays near 0.6. With tanh and ReLU it even *grows* with depth (for ReLU to about 10 at
# depth 20 and to thousands at depth 50, full mode): every block adds its branch to the identity,
# and with nothing to normalize them the variances add up, the opposite failure. ResNet keeps it
# in check with BatchNorm in every branch, as in the CIFAR nets below.

# %% [markdown]
# ## Why: $\partial L/\partial x = \partial L/\partial H \,(\partial F/\partial x + 1)$
#
# A residual block computes $H(x) = F(x) + x$, where $F$ is the block's body (here the lecture's
# `conv -> ReLU -> conv`). The chain rule over the two paths gives
#
# $$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial H}\left(\frac{\partial F}{\partial x}
#   + 1\right) = \underbrace{\frac{\partial L}{\partial H}\frac{\partial F}{\partial x}}_{\text{through the body}}
#   + \underbrace{\frac{\partial L}{\partial H}}_{\text{the shortcut}} .$$
#
# However small $\partial F/\partial x$ becomes, the second term carries the gradient from $H$ to
# $x$ unchanged. We check the formula on one block in float64: the block's backward against the
# body's own backward plus $\partial L/\partial H$, and both against central differences.

# %%
npcnn.manual_seed(0)
with npcnn.backend.default_dtype(np.float64):
    body = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    block = nn.Residual(body)
gen = np.random.default_rng(0)
x = gen.standard_normal((2, 4, 6, 6))
dH = gen.standard_normal((2, 4, 6, 6))            # an upstream gradient dL/dH, L = sum(dH * H(x))
block(x)
dx_block = block.backward(dH)
body(x)
dx_body = body.backward(dH)                       # dL/dH * dF/dx, the body alone
eps = 1e-6
numeric = np.zeros_like(x)
for i in np.ndindex(x.shape):                     # central differences of L(x) = sum(dH * H(x))
    xp_, xm_ = x.copy(), x.copy()
    xp_[i] += eps
    xm_[i] -= eps
    with npcnn.no_grad():
        numeric[i] = (np.sum(dH * block(xp_)) - np.sum(dH * block(xm_))) / (2 * eps)
err_formula = float(np.abs(dx_block - (dx_body + dH)).max())
err_numeric = float(np.abs(dx_block - numeric).max() / np.abs(numeric).max())
report = check_module(block, x)
print(f"max |dL/dx - (dL/dH dF/dx + dL/dH)| = {err_formula:.1e}; relative error against central "
      f"differences {err_numeric:.1e}; check_module (input and weights): {report.max_rel_error:.1e}")

# %% [markdown]
# ## Degradation: deeper plain nets train worse
#
# He et al. (2015) observed that a 56-layer plain network had a *higher training error* than a
# 20-layer one (so it is not overfitting: the deeper net fails to fit even the training set), and
# that residual versions of the same depths did not suffer from it. We train the CIFAR family of
# `npcnn.models` (6n + 2 layers, BatchNorm, three stages) on MNIST digits downscaled to 16 x 16
# (channels 4, 8, 16 in quick mode, 8, 16, 32 in full mode; the paper has 16, 32, 64), all four
# nets with the same seed, batch order and SGD settings, and compare their training losses.

# %%
STEPS, WIDTH, BATCH = (60, 4, 32) if quick else (400, 8, 32)


def load_digits(n=2000):
    try:
        digits = mnist(train=True, normalize=True, download=False)
        images, labels = digits.images[:n], digits.labels[:n]
        source = "MNIST"
    except DatasetNotFoundError:
        print("MNIST not found (set NPCNN_DATA); using synthetic digits instead")
        images, labels = synthetic_digits(n, seed=0)
        images, source = (images[:, None] / 255.0).astype(np.float32), "synthetic digits"
    small = images.reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5))         # 28 x 28 -> 14 x 14
    small = np.pad(small, ((0, 0), (0, 0), (1, 1), (1, 1)))                # -> 16 x 16
    return ((small - small.mean()) / small.std()).astype(np.float32), labels, source


x_digits, y_digits, source = load_digits()
NETS = {"plain-20": models.plain20, "plain-56": models.plain56, "ResNet-20": models.resnet20,
        "ResNet-56": models.resnet56}
losses = {}
for name, build in NETS.items():
    npcnn.manual_seed(0)
    model = build(num_classes=10, in_channels=1, width=WIDTH)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loss_fn, order = nn.CrossEntropyLoss(), np.random.default_rng(0)
    losses[name] = []
    for step in range(STEPS):
        batch = order.choice(len(x_digits), BATCH, replace=False)
        losses[name].append(float(loss_fn(model(x_digits[batch]), y_digits[batch])))
        model.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()
window = max(10, STEPS // 5)
final = {name: float(np.mean(v[-window:])) for name, v in losses.items()}
print(f"{source}, {STEPS} steps of batch {BATCH}, width {WIDTH}; mean training loss of the last {window} steps:")
for name, value in final.items():
    print(f"  {name:9s} {value:.3f}")
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, v in losses.items():
    ax.plot(np.convolve(v, np.ones(10) / 10, mode="valid"), label=name,
            linestyle="-" if "ResNet" in name else "--")
ax.set(xlabel="step", ylabel="training loss (10-step mean)", title=f"degradation, {source} 16 x 16")
ax.grid(alpha=0.3)
ax.legend()
savefig(fig, out, "degradation.png")

# %% [markdown]
# The plain 56-layer net barely leaves the loss of guessing ($\ln 10 \approx 2.30$) in this
# budget, while the plain 20-layer one learns: the deeper plain net is the worse one, on the
# training set itself. With shortcuts both depths learn, and the 56-layer residual net is far
# ahead of its plain twin. (In the paper, on CIFAR-10 with 64k iterations, ResNet-56 ends below
# ResNet-20; a run this short only shows the first part of the story.)
#
# Two figures in the lectures need correcting. Deck 002 credits the 152-layer ResNet with "top-5
# error 6.34%, winner of ImageNet 2015": the winning ILSVRC 2015 entry (an ensemble of ResNets)
# had a top-5 test error of **3.57%**, and a single ResNet-152 had 4.49% on the validation set
# (He et al., tables 4 and 5). Deck 002 also calls AlexNet a 7-layer network, deck 000 an 8-layer
# one: AlexNet has **8** layers with weights (5 convolutional, 3 fully connected).

# %% [markdown]
# ## Clipping against explosion
#
# The opposite failure: weights a little too large (He initialization times 1.5 here) make every
# layer multiply the backward signal by about 1.5, so through 20 layers the gradient grows by
# $1.5^{19} \approx 2000$. The first SGD step then throws the weights far away and the loss
# becomes infinite or NaN. `clip_grad_norm_(parameters, max_norm)` rescales all gradients together
# whenever their global norm $\|g\| = \sqrt{\sum_p \|g_p\|^2}$ exceeds `max_norm`:
# $g \leftarrow g \cdot \min(1, \text{max\_norm}/\|g\|)$. The direction is kept, only the step
# length is bounded. (The first loss is huge too: the same factor 1.5 per layer inflates the
# forward pass, so the logits are in the hundreds.) Both runs use SGD with momentum 0.9 and a
# learning rate of 0.01 for 300 steps. Clipping is no cure for the bad initialization, only a
# guard: with a learning rate of 0.1 the clipped net survives too, but it collapses to a constant
# prediction and stays at the loss of guessing, 2.30.

# %%
cluster_gen = np.random.default_rng(0)                      # ten Gaussian clusters in 32 dimensions
cluster_y = cluster_gen.integers(0, 10, 4096)
cluster_x = (cluster_gen.standard_normal((10, 32))[cluster_y]
             + 0.5 * cluster_gen.standard_normal((4096, 32))).astype(np.float32)


def train_deep(clip, steps=300, lr=0.01):
    npcnn.manual_seed(0)
    model = deep_mlp(20, 32, "relu", init="he", scale=1.5)
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn, order, history, first_norm = nn.CrossEntropyLoss(), np.random.default_rng(1), [], None
    with np.errstate(all="ignore"):                # the unclipped run overflows on purpose
        for _ in range(steps):
            batch = order.choice(len(cluster_x), 64, replace=False)
            history.append(float(loss_fn(model(cluster_x[batch]), cluster_y[batch])))
            model.backward(loss_fn.backward())
            norm = clip_grad_norm_(model.parameters(), clip) if clip else clip_grad_norm_(model.parameters(), np.inf)
            first_norm = norm if first_norm is None else first_norm
            optimizer.step()
            optimizer.zero_grad()
    return history, first_norm


unclipped, norm0 = train_deep(clip=None)
clipped, _ = train_deep(clip=1.0)
print(f"gradient norm at the first step: {norm0:.3g}")
print(f"without clipping: loss {unclipped[0]:.3f} -> {unclipped[1]:.3g} -> {unclipped[-1]}; "
      f"with clip_grad_norm_(1.0): {clipped[0]:.3f} -> {np.mean(clipped[-10:]):.3f}")

# %% [markdown]
# ## The claims of this lesson

# %%
claim("sigma'(z) = sigma(z)(1 - sigma(z)) is at most 1/4, reached at z = 0",
      abs(np.max(s * (1 - s)) - 0.25) < 1e-12 and np.all(s * (1 - s) <= 0.25))
deep = DEPTHS[-1]
claim(f"a plain sigmoid net of depth {deep} passes less than 1e-4 of the gradient to its input "
      f"({flow['sigmoid', deep, False]:.1e}), and the ratio falls with depth",
      flow["sigmoid", deep, False] < 1e-4
      and all(flow["sigmoid", a, False] > flow["sigmoid", b, False] for a, b in zip(DEPTHS, DEPTHS[1:])))
claim("the residual nets keep ||dL/dx|| / ||dL/dlogits|| above 0.1 at every depth and activation",
      all(v > 0.1 for (a, d, r), v in flow.items() if r))
claim(f"one residual block: dL/dx = dL/dH dF/dx + dL/dH to rounding ({err_formula:.1e}) and to central "
      f"differences ({err_numeric:.1e} < 1e-7)", err_formula < 1e-12 and err_numeric < 1e-7)
report.assert_ok()
claim(f"degradation: plain-56 ends with a higher training loss than plain-20 "
      f"({final['plain-56']:.3f} > {final['plain-20']:.3f})", final["plain-56"] > final["plain-20"] + 0.1)
claim(f"shortcuts remove it: ResNet-56 trains better than plain-56 ({final['ResNet-56']:.3f} < "
      f"{final['plain-56']:.3f}) and ResNet-20 better than plain-20 ({final['ResNet-20']:.3f} < "
      f"{final['plain-20']:.3f})", final["ResNet-56"] < final["plain-56"] - 0.05
      and final["ResNet-20"] < final["plain-20"])
claim(f"too-large weights explode: the first gradient norm is {norm0:.3g} > 100 and the unclipped loss "
      f"ends non-finite or far above the start", norm0 > 100
      and (not np.isfinite(unclipped[-1]) or unclipped[-1] > 10 * unclipped[0]))
claim(f"with the global gradient norm clipped to 1 the same net stays finite and learns: its loss ends below "
      f"guessing's ln 10 = 2.30 ({clipped[0]:.1f} -> {np.mean(clipped[-10:]):.2f})",
      bool(np.all(np.isfinite(clipped))) and np.mean(clipped[-10:]) < 2.0)

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
