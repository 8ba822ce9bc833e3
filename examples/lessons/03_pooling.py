# %% [markdown]
# # Lesson 3 — Pooling
#
# A pooling layer summarizes each window of a feature map by one number. It has hyperparameters
# (window $F$, stride $S$) but nothing to learn. This lesson computes the lecture's 4x4 example
# with max, average and L2 pooling, back-propagates through each, pools a whole map into one
# number (global average pooling), and pools **across channels**, which makes a unit invariant to
# rotations the separate filters have learned.
#
# Run: `python examples/lessons/03_pooling.py [--quick]`.

# %%
import numpy as np

from npcnn import data, gradcheck, nn
from _course import all_claims_hold, claim, savefig, setup

quick, out = setup("03_pooling", "Pooling")

# %% [markdown]
# ## 1. Max, average and L2 pooling on the lecture's 4x4 example ($F = 2$, $S = 2$)
#
# $$\text{max: } y = \max_{(i,j)\in w} x_{ij},\qquad
#   \text{average: } y = \frac{1}{|w|}\sum_{(i,j)\in w} x_{ij},\qquad
#   \text{L2: } y = \Big(\sum_{(i,j)\in w} x_{ij}^2\Big)^{1/2}.$$
#
# (L2 pooling is `LPPool2d(2, ...)`, PyTorch's $L_p$ pooling with $p = 2$: a root of a sum, not of
# a mean.)

# %%
X = np.array([[1, 3, 2, 1],
              [2, 9, 1, 1],
              [1, 3, 2, 3],
              [5, 6, 1, 2]], dtype=np.float64)[None, None]
pools = {"max": nn.MaxPool2d(2, 2), "average": nn.AvgPool2d(2, 2), "L2": nn.LPPool2d(2, 2, 2)}
results = {name: layer(X)[0, 0] for name, layer in pools.items()}
for name, value in results.items():
    print(f"{name:7s} pooling:\n{np.round(value, 4)}")

# %% [markdown]
# Max pooling gives `9 2 / 6 3`, as on the slide. Average pooling gives `3.75 1.25 / 3.75 2`, L2
# pooling $\sqrt{95}, \sqrt{7} / \sqrt{71}, \sqrt{18}$ = `9.747 2.646 / 8.426 4.243`.
#
# ## 2. The backward pass of each
#
# Max pooling sends each window's gradient to its arg-max only (the 9, 2, 6 and 3) — the others
# get exactly 0. Average pooling spreads it evenly, $1/|w| = 1/4$ each. L2 pooling gives
# $\partial y/\partial x_{ij} = x_{ij}/y$: larger entries get more.

# %%
grads = {}
for name, layer in pools.items():
    layer(X)
    grads[name] = layer.backward(np.ones((1, 1, 2, 2)))[0, 0]
    print(f"d(sum of outputs)/dx, {name}:\n{np.round(grads[name], 4)}")
l2_expected = X[0, 0] / np.kron(results["L2"], np.ones((2, 2)))

# %% [markdown]
# ## 3. Global average pooling
#
# Global average pooling averages each whole channel: $(N, C, H, W) \to (N, C, 1, 1)$. Placed after the
# last convolution it replaces a large fully connected layer with nothing to learn (lesson 4
# counts what that saves in GoogLeNet: a 7x7x1024 input is 51.4M weights as a dense layer, 0 as
# a pooling). Because it averages over all positions, a shift that keeps the object inside the
# map does not change it.

# %%
rng = np.random.default_rng(0)
maps = rng.standard_normal((2, 5, 7, 7))
gap = nn.GlobalAvgPool2d()(maps)                  # (N, C, 1, 1), as PyTorch's AdaptiveAvgPool2d(1)
gap_error = float(np.abs(gap[:, :, 0, 0] - maps.mean(axis=(2, 3))).max())
padded = np.zeros((2, 5, 9, 9))
padded[:, :, 1:8, 1:8] = maps
moved = np.roll(padded, (1, -1), axis=(2, 3))
gap_shift = float(np.abs(nn.GlobalAvgPool2d()(padded) - nn.GlobalAvgPool2d()(moved)).max())
print(f"GlobalAvgPool2d: {maps.shape} -> {gap.shape}; max |gap - mean| = {gap_error:.1e}; "
      f"change under a shift = {gap_shift:.1e}")

# %% [markdown]
# ## 4. Max pooling across channels
#
# Pooling can also run over the **channel** axis. Give a layer several filters that detect one
# pattern in different poses — the lecture's example is three filters for a handwritten 5, each at
# a slightly different angle — and take the maximum over those channels:
#
# $$y_{n,o} = \max_{j < k} x_{n,\,ok + j} .$$
#
# Whichever filter matched, the pooled unit answers strongly: it has learned invariance to the
# transformation the filters span, something spatial pooling cannot give. This is the unit of a
# *maxout* network. npcnn's layer is `nn.MaxPoolChannels(kernel_size, stride=None)`; its backward
# routes each gradient to the winning channel, as spatial max pooling routes it to the winning
# pixel.
#
# Here the filters are a digit 5 rotated by 0, 90, 180 and 270 degrees, each a 28x28 kernel, so a
# convolution gives one inner product per filter. We rotate the input 5 through the same four
# angles. (With 90-degree steps the invariance is exact: rotating image and filters together only
# permutes the inner products. Filters learned at a few angles give it approximately.)

# %%
try:
    test_digits = data.mnist(train=False, normalize=True, dtype=np.float64, download=False)
    five = test_digits.images[int(np.flatnonzero(test_digits.labels == 5)[0]), 0]
    source = "the first 5 of the MNIST test set"
except data.DatasetNotFoundError:
    shape, _ = data.shapes(1, size=28, classes=("triangle",), noise=0.0, dtype=np.float64)
    five, source = shape[0, 0], "a synthetic triangle (MNIST not found: set NPCNN_DATA)"
print(f"pattern: {source}")

pattern = five - five.mean()
detectors = nn.Conv2d(1, 4, 28, bias=False).double()
detectors.weight.data[:, 0] = np.stack([np.rot90(pattern, r) for r in range(4)])
channel_max = nn.MaxPoolChannels(4)
inputs = np.stack([np.rot90(five, r) for r in range(4)])[:, None]   # the 5 at four angles
responses = detectors(inputs)[:, :, 0, 0]                           # (angle, filter)
pooled = channel_max(detectors(inputs))[:, 0, 0, 0]
for r in range(4):
    print(f"input rotated {90 * r:3d} deg: filter responses {np.round(responses[r], 2)}, "
          f"channel max {pooled[r]:.2f}")
single = responses[:, 0]

import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].imshow(np.concatenate([np.rot90(five, r) for r in range(4)], axis=1), cmap="gray")
axes[0].set_title("the input at 0, 90, 180, 270 degrees")
axes[0].axis("off")
axes[1].bar(np.arange(4) - 0.15, single, width=0.3, label="filter 0 alone")
axes[1].bar(np.arange(4) + 0.15, pooled, width=0.3, label="max over the 4 channels")
axes[1].set_xticks(range(4), ["0", "90", "180", "270"])
axes[1].set_xlabel("input rotation (degrees)")
axes[1].set_ylim(0, 1.35 * max(pooled.max(), single.max()))
axes[1].legend(loc="upper center", ncol=2, fontsize=8)
axes[2].imshow(results["max"], cmap="viridis")
for (i, j), v in np.ndenumerate(results["max"]):
    axes[2].text(j, i, f"{v:.0f}", ha="center", va="center", color="w")
axes[2].set_title("2x2 max pool of the 4x4 example")
axes[2].axis("off")
savefig(fig, out, "pooling.png")

# %% [markdown]
# The layer is checked like every npcnn layer: its backward against central differences in
# float64 (here on inputs without ties, where the max is differentiable), with tiling and
# overlapping windows.

# %%
x_check = (np.random.default_rng(1).permutation(2 * 6 * 3 * 3).reshape(2, 6, 3, 3) - 54) * 0.01
checks = [gradcheck.check_module(nn.MaxPoolChannels(k, s), x_check) for k, s in ((2, None), (3, 1), (3, 3))]
for report in checks:
    print(report)
routing_layer = nn.MaxPoolChannels(2)
routing_x = np.array([0.0, 5.0, 7.0, 1.0]).reshape(1, 4, 1, 1)
routing_layer(routing_x)
routed = routing_layer.backward(np.array([10.0, 20.0]).reshape(1, 2, 1, 1))[0, :, 0, 0]
print(f"channels [0, 5 | 7, 1], dout [10, 20] -> dx {routed}")

# %% [markdown]
# ## What this lesson claims, checked

# %%
claim("2x2/2 max pooling of the 4x4 example gives 9 2 / 6 3", np.array_equal(results["max"], [[9, 2], [6, 3]]))
claim("average pooling gives 3.75 1.25 / 3.75 2", np.array_equal(results["average"], [[3.75, 1.25], [3.75, 2.0]]))
claim("L2 pooling gives sqrt(95) sqrt(7) / sqrt(71) sqrt(18)",
      np.allclose(results["L2"], np.sqrt([[95, 7], [71, 18]]), rtol=1e-14, atol=0))
claim("max pooling routes the gradient only to the arg-max (9, 2, 6, 3)",
      np.array_equal(grads["max"], (X[0, 0] == np.kron(results["max"], np.ones((2, 2)))) * 1.0)
      and grads["max"].sum() == 4)
claim("average pooling spreads 1/4 to every input", np.array_equal(grads["average"], np.full((4, 4), 0.25)))
claim("L2 pooling's gradient is x / y", np.allclose(grads["L2"], l2_expected, rtol=1e-14, atol=0))
claim("global average pooling is the per-channel mean, unchanged by a shift inside the map",
      gap_error < 1e-14 and gap_shift < 1e-14)
claim("the channel-max unit gives the same answer at every rotation (to 1e-12) ...",
      np.ptp(pooled) < 1e-12 * abs(pooled[0]))
claim("... while a single filter's response to the rotated pattern drops below half its best",
      single.min() < 0.5 * single.max())
claim("MaxPoolChannels passes the float64 gradient check (tiling and overlapping windows)",
      all(report.ok for report in checks))
claim("its backward sends each gradient to the winning channel", np.array_equal(routed, [0.0, 10.0, 20.0, 0.0]))

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
