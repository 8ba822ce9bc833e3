# %% [markdown]
# # Lesson 2 — Why convolution
#
# A convolution layer slides one small kernel over the whole image. This lesson looks at what
# that buys, in numbers measured with npcnn's `Conv2d`:
#
# * what fixed kernels (edges, blur, sharpen) do to a real digit;
# * the output size $\lfloor (W - F + 2P)/S \rfloor + 1$ and the lecture's padding and stride examples;
# * **parameter sharing**: how many weights a dense layer would need for the same map;
# * **translation equivariance** of convolution, and the approximate invariance max pooling adds;
# * the receptive field, three 3x3 layers against one 7x7, and the 1x1 bottleneck.
#
# Run: `python examples/lessons/02_convolution.py [--quick]`.

# %%
import numpy as np

import npcnn
from npcnn import data, nn, viz
from _course import all_claims_hold, claim, savefig, setup

quick, out = setup("02_convolution", "Why convolution")
npcnn.manual_seed(0)


def fixed_conv(kernel, padding=0, stride=1):
    """A Conv2d with one input and one output channel whose weight is ``kernel`` (no bias)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    conv = nn.Conv2d(1, 1, kernel.shape, stride=stride, padding=padding, bias=False).double()
    conv.weight.data[...] = kernel
    return conv


try:
    digits = data.mnist(train=False, normalize=True, dtype=np.float64, download=False)
    image, source = digits.images[0:1], "the first MNIST test digit (a 7)"
except data.DatasetNotFoundError:
    images, _ = data.shapes(1, size=28, classes=("cross",), noise=0.0, dtype=np.float64)
    image, source = images, "a synthetic cross (MNIST not found: set NPCNN_DATA)"
print(f"image: {source}, shape {image.shape}")

# %% [markdown]
# ## 1. Fixed kernels on a digit
#
# Convolution in a CNN is really cross-correlation (the kernel is not flipped):
# $s(i, j) = \sum_{m,n} x(i+m, j+n)\,k(m, n)$. The output is large where the image patch looks
# like the kernel: template matching. The lecture's kernels:
#
# identity `[0 0 0; 0 1 0; 0 0 0]`, edge detection 1 `[-1 -1 -1; -1 8 -1; -1 -1 -1]`,
# edge detection 2 (the 4-neighbour Laplacian) `[0 1 0; 1 -4 1; 0 1 0]`, box blur
# $\frac19$`[1 1 1; 1 1 1; 1 1 1]` and sharpen `[0 -1 0; -1 5 -1; 0 -1 0]`.
#
# The two edge kernels sum to zero, so a flat region gives exactly 0; blur sums to 1 and keeps
# the brightness; sharpen is identity minus the Laplacian.

# %%
KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "edges (8-neighbour)": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "edges (Laplacian)": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "box blur": np.full((3, 3), 1 / 9),
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}
filtered = {name: fixed_conv(k, padding=1)(image)[0, 0] for name, k in KERNELS.items()}

import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, len(KERNELS), figsize=(3 * len(KERNELS), 3.2))
for ax, (name, result) in zip(axes, filtered.items()):
    ax.imshow(result, cmap="gray")
    ax.set_title(name)
    ax.axis("off")
savefig(fig, out, "kernels.png")
flat = np.ones((1, 1, 8, 8))
edge_on_flat = max(float(np.abs(fixed_conv(KERNELS[k])(flat)).max())
                   for k in ("edges (8-neighbour)", "edges (Laplacian)"))

# %% [markdown]
# ## 2. Output size, padding and stride
#
# For a $W \times W$ input, an $F \times F$ kernel, padding $P$ and stride $S$:
#
# $$W_{out} = \left\lfloor \frac{W - F + 2P}{S} \right\rfloor + 1 .$$
#
# The lecture's cases: a 6x6 image and a 3x3 kernel give 4x4 (the image shrinks, and corner pixels
# are used once while centre pixels are used nine times); padding 1 (an 8x8 padded image) keeps
# 6x6. And the stride-2 example, a 7x7 input with a 3x3 kernel:

# %%
sizes = {(W, F, P, S): fixed_conv(np.ones((F, F)), P, S)(np.zeros((1, 1, W, W))).shape[-1]
         for (W, F, P, S) in [(6, 3, 0, 1), (6, 3, 1, 1), (7, 3, 0, 2), (16, 6, 0, 1), (32, 5, 2, 1), (227, 11, 0, 4)]}
for (W, F, P, S), got in sizes.items():
    print(f"W={W:3d} F={F:2d} P={P} S={S}: floor((W - F + 2P)/S) + 1 = {(W - F + 2 * P) // S + 1:3d}, npcnn: {got}")

X7 = np.array([[2, 3, 7, 4, 6, 2, 9],
               [6, 6, 9, 8, 7, 4, 3],
               [3, 4, 8, 3, 8, 9, 7],
               [7, 8, 3, 6, 6, 3, 4],
               [4, 2, 1, 8, 3, 4, 6],
               [3, 2, 4, 1, 9, 8, 3],
               [0, 1, 3, 9, 2, 1, 4]], dtype=np.float64)
K3 = [[3, 4, 4], [1, 0, 2], [-1, 0, 3]]
strided = fixed_conv(K3, stride=2)(X7[None, None])[0, 0]
print("7x7 input, 3x3 kernel, stride 2 ->\n", strided.astype(int))

# %% [markdown]
# The output is 3x3: `91 100 88 / 69 91 117 / 44 72 74`. **The lecture's slide prints 83 for the
# top-right value; it is 88.** (The transcript also lost one of the 49 inputs: the bottom row
# starts with the 0 of the classic example, which only touches the bottom-left output.)
# The top-right window, rows 0-2 and columns 4-6, is
# $\begin{smallmatrix}6&2&9\\7&4&3\\8&9&7\end{smallmatrix}$, and
# $6\cdot3 + 2\cdot4 + 9\cdot4 + 7\cdot1 + 4\cdot0 + 3\cdot2 + 8\cdot(-1) + 9\cdot0 + 7\cdot3 = 88$.
#
# ## 3. Parameter sharing, in numbers
#
# A dense layer connects every input to every output. On a small 200x200 RGB image, each neuron
# of the first layer needs $200 \cdot 200 \cdot 3 = 120{,}000$ weights. (**The lecture writes
# 12,000; the product is 120,000.**)
#
# The lecture's vertical-edge example: subtract each pixel's right-hand neighbour, a 1x2 kernel
# $[1, -1]$ on a 280x320 image, giving 280x319. The convolution stores **2** weights; the same
# linear map as a dense matrix has $(280 \cdot 320) \times (280 \cdot 319) = 8{,}003{,}072{,}000$
# entries, more than $8 \times 10^9$ (and all but $2 \cdot 280 \cdot 319$ of them are zero). We
# check on a reduced image that the dense matrix and the 2-weight convolution compute the same map.

# %%
edge = fixed_conv([[1, -1]])
big = np.random.default_rng(0).random((1, 1, 280, 320))
edge_out = edge(big)
dense_entries = (280 * 320) * (280 * 319)
print(f"1x2 edge kernel: {edge.num_parameters()} weights; 280x320 -> {edge_out.shape[-2:]}; "
      f"as a dense matrix: {dense_entries:,} weights")
h, w = 14, 16
dense = np.zeros((h * (w - 1), h * w))
for r in range(h):
    for c in range(w - 1):
        dense[r * (w - 1) + c, r * w + c] = 1.0
        dense[r * (w - 1) + c, r * w + c + 1] = -1.0
small = big[:, :, :h, :w]
dense_vs_conv = float(np.abs(dense @ small.reshape(-1) - edge(small).reshape(-1)).max())
print(f"{h}x{w} image: dense ({dense.size:,} entries, {int((dense != 0).sum())} non-zero) vs conv: "
      f"max difference {dense_vs_conv:.1e}")

# %% [markdown]
# Local connectivity and sharing separately, with the lecture's second example: a 32x32x3 input
# and 30 feature maps of 32x32 from 5x5x3 windows. With **different weights for every output
# neuron** (locally connected), that is $(5 \cdot 5 \cdot 3) \times (32 \cdot 32 \cdot 30) = 2{,}304{,}000$
# weights, "2.3 million"; with **one kernel per feature map** (a convolution),
# $(5 \cdot 5 \cdot 3) \times 30 = 2{,}250$.

# %%
conv30 = nn.Conv2d(3, 30, 5, padding=2, bias=False)
maps = conv30(np.zeros((1, 3, 32, 32), dtype=np.float32))
locally_connected = 5 * 5 * 3 * int(np.prod(maps.shape[1:]))
print(f"Conv2d(3, 30, 5, padding=2): output {maps.shape[1:]}, {conv30.num_parameters():,} weights; "
      f"unshared: {locally_connected:,}")

# %% [markdown]
# ## 4. Translation equivariance, and max pooling's approximate invariance
#
# Because every position uses the same kernel, shifting the input shifts the output by the same
# amount: $\mathrm{conv}(T x) = T\,\mathrm{conv}(x)$. We shift the digit 3 pixels down and 2 right
# (its border is black, so nothing falls off) and compare, away from the padded edge.
#
# Max pooling reports the largest value in a window, not where it is: after a one-pixel shift a
# pooled value stays put whenever its window's maximum stays inside the window. We measure the
# relative change $\|f(Tx) - f(x)\| / \|f(x)\|$ of the feature maps after a one-pixel shift: it
# falls as the pooling window grows, so the representation becomes *approximately invariant* to
# small shifts, and a global max is exactly invariant to any shift that keeps the digit inside.

# %%
npcnn.manual_seed(1)
bank = nn.Conv2d(1, 8, 3, padding=1).double()
shifted = np.roll(image, (3, 2), axis=(2, 3))
features, features_shifted = bank(image), bank(shifted)
equivariance_error = float(np.abs(np.roll(features, (3, 2), axis=(2, 3)) - features_shifted)[..., 4:-4, 4:-4].max())
print(f"max |conv(shift x) - shift(conv x)| (interior) = {equivariance_error:.1e}")

one_pixel = np.roll(image, 1, axis=3)
relu = nn.ReLU()
conv_a, conv_b = relu(bank(image)), relu(bank(one_pixel))


def relative_change(f):
    """||f(shifted) - f(original)|| / ||f(original)|| for a map f of the feature maps."""
    a, b = f(conv_a), f(conv_b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


change = {"conv + ReLU": relative_change(lambda t: t),
          "then 2x2 max pool": relative_change(nn.MaxPool2d(2)),
          "then 4x4 max pool": relative_change(nn.MaxPool2d(4)),
          "then global max": relative_change(lambda t: t.max(axis=(2, 3)))}
for name, value in change.items():
    print(f"1-pixel shift, relative change of the {name:18s}: {value:.3f}")

# %% [markdown]
# ## 5. Receptive fields, three 3x3 layers against one 7x7
#
# A unit of layer $L$ of stacked 3x3 stride-1 convolutions sees $1 + 2L$ input pixels per axis:
# 3, 5, 7 — it interacts with a growing part of the input only indirectly. We measure it by
# back-propagating from one output unit and counting the input pixels whose gradient is non-zero
# (positive weights, so nothing cancels), and compare with `npcnn.viz.receptive_field`.
#
# Three 3x3 layers see the same 7x7 window as one 7x7 layer, but with $C$ channels in and out they
# have $3 \cdot 9C^2 = 27C^2$ weights against $49C^2$, and three nonlinearities instead of one
# (the VGG argument; the lecture counts it per channel pair: $3 \cdot (3\cdot3) = 27 < 49$, and for
# two layers $18 < 25$).

# %%
fields = []
stack = []
for depth in range(1, 4):
    stack += [nn.Conv2d(1, 1, 3, padding=1, bias=False).double(), nn.ReLU()]
    net = nn.Sequential(*stack)
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data[...] = 1.0
    probe = np.ones((1, 1, 15, 15))
    response = net(probe)
    seed_grad = np.zeros_like(response)
    seed_grad[0, 0, 7, 7] = 1.0
    grad = net.backward(seed_grad)
    rows, cols = np.nonzero(grad[0, 0])
    fields.append((rows.max() - rows.min() + 1, viz.receptive_field(net, stack[-2]).size[0]))
    print(f"{depth} stacked 3x3 layers: measured receptive field {fields[-1][0]}x{fields[-1][0]}, "
          f"viz.receptive_field says {fields[-1][1]}")
C = 64
three = nn.Sequential(*[nn.Conv2d(C, C, 3, padding=1, bias=False) for _ in range(3)])
one = nn.Conv2d(C, C, 7, padding=3, bias=False)
print(f"C = {C}: three 3x3 layers {three.num_parameters():,} weights (27C^2 = {27 * C * C:,}), "
      f"one 7x7 layer {one.num_parameters():,} (49C^2 = {49 * C * C:,})")

# %% [markdown]
# ## 6. The 1x1 convolution: a bottleneck
#
# A 1x1 convolution mixes channels at each pixel and nothing else: it is a `Linear` layer applied
# to every pixel's channel vector. The lecture shrinks 28x28x192 to 28x28x16 with sixteen 1x1x192
# filters: $192 \cdot 16 + 16 = 3{,}088$ parameters and $28 \cdot 28 \cdot 192 \cdot 16 = 2{,}408{,}448$
# multiply-adds; lesson 4 shows what that saves in GoogLeNet.

# %%
bottleneck = nn.Conv2d(192, 16, 1).double()
volume = np.random.default_rng(2).standard_normal((1, 192, 28, 28))
squeezed = bottleneck(volume)
per_pixel = (np.einsum("oc,chw->ohw", bottleneck.weight.data[:, :, 0, 0], volume[0])
             + bottleneck.bias.data[:, None, None])
bottleneck_macs = npcnn.models.profile(bottleneck, (192, 28, 28)).macs
print(f"1x1 conv 192 -> 16: output {squeezed.shape[1:]}, {bottleneck.num_parameters():,} parameters, "
      f"{bottleneck_macs:,} MACs; max |conv - per-pixel matrix product| = {np.abs(squeezed[0] - per_pixel).max():.1e}")

# %% [markdown]
# ## What this lesson claims, checked

# %%
claim("both edge kernels give exactly 0 on a flat image", edge_on_flat == 0.0)
claim("npcnn's output sizes follow floor((W - F + 2P)/S) + 1 in every case",
      all(got == (W - F + 2 * P) // S + 1 for (W, F, P, S), got in sizes.items()))
claim("the 7x7 stride-2 example gives 91 100 88 / 69 91 117 / 44 72 74 (88, not the slide's 83)",
      np.array_equal(strided, [[91, 100, 88], [69, 91, 117], [44, 72, 74]]))
claim("one neuron on a 200x200x3 image needs 120,000 weights (not 12,000)", 200 * 200 * 3 == 120_000)
claim("the edge map stores 2 weights, its dense matrix 8,003,072,000 > 8e9, and both compute the same map",
      edge.num_parameters() == 2 and edge_out.shape[-2:] == (280, 319) and dense_entries == 8_003_072_000
      and dense_vs_conv < 1e-14)
claim("30 shared 5x5x3 kernels: 2,250 weights; unshared: 2,304,000 (2.3M)",
      conv30.num_parameters() == 2250 and locally_connected == 2_304_000)
claim("convolution is translation-equivariant: error 0 to rounding (< 1e-12)", equivariance_error < 1e-12)
values = list(change.values())
claim("after a 1-pixel shift the relative change falls: conv > 2x2 max pool > 4x4 max pool > global max = 0",
      values[0] > values[1] > values[2] > values[3] == 0.0)
claim("receptive fields of 1, 2, 3 stacked 3x3 layers: 3, 5, 7 (measured = viz.receptive_field)",
      fields == [(3, 3), (5, 5), (7, 7)])
claim("three 3x3 layers: 27C^2 weights < one 7x7 layer: 49C^2",
      three.num_parameters() == 27 * C * C < one.num_parameters() == 49 * C * C)
claim("the 1x1 bottleneck is a per-pixel matrix product: 3,088 parameters, 2,408,448 MACs",
      np.abs(squeezed[0] - per_pixel).max() < 1e-12 and bottleneck.num_parameters() == 3088
      and bottleneck_macs == 2_408_448)

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
