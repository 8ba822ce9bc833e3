# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 15: dense prediction — FCN, transposed convolution, super-resolution
#
# A classifier answers one question per image. Dense prediction answers one per *pixel*: which
# class is this pixel (semantic segmentation), what is its brightness at twice the resolution
# (super-resolution). Three ideas get us there, and this lesson builds each:
#
# 1. **Convolutionization**: a classifier's fully connected layers rewritten as convolutions,
#    so the network accepts any image size and returns a *map* of class scores;
# 2. **Transposed convolution** ("deconvolution"): a learnable upsampling that takes the coarse
#    map back to the input's resolution;
# 3. **Skip connections** (FCN-8s): fusing the coarse, semantic map with finer, earlier maps to
#    get sharp boundaries.
#
# Run with `--quick` for the small version that CI runs.

# %%
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd())

import numpy as np
from _course import all_claims_hold, claim, savefig, setup
from scipy import ndimage

import npcnn
from npcnn import models, nn
from npcnn.data import DataLoader, DatasetNotFoundError, mnist, shapes
from npcnn.train import Trainer, evaluate
from npcnn.train.metrics import confusion_matrix

quick, out = setup("15_dense_prediction", "FCN, transposed convolution and super-resolution")
npcnn.manual_seed(0)
print("quick mode" if quick else "full mode", "-> figures in", out)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# %% [markdown]
# ## 1. Why a classifier cannot take another image size
#
# VGG16 has thirteen $3\times3$ convolutions with padding 1 (they keep the size) and five
# $2\times2$ max pools of stride 2 (each halves it, rounding down). Its first fully connected
# layer reads the flattened last map: $512 \times h \times w$ numbers, with
# $h = \lfloor H / 32 \rfloor$ for an $H \times H$ input. Its weight matrix is
# $4096 \times 512 h w$ — so the input size is baked into the weights.
#
# The lecture trains at $250 \times 250$ and then feeds $150 \times 150$. We check its numbers by
# running the very same geometry (VGG16's layer sequence, with 64 times fewer channels so that it
# is cheap; channel counts do not change map sizes).

# %%
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg_geometry(ceil_mode=False, thin=64):
    """VGG16's convolutions and pools with ``thin`` times fewer channels: the same map sizes."""
    layers, c = [], 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=ceil_mode))
        else:
            layers += [nn.Conv2d(c, v // thin, 3, padding=1), nn.ReLU()]
            c = v // thin
    return nn.Sequential(*layers)


def last_map(size, ceil_mode=False):
    """(h, w) of VGG16's last map for a size x size input."""
    with npcnn.no_grad():
        return vgg_geometry(ceil_mode)(np.zeros((1, 3, size, size), dtype=np.float32)).shape[2:]


features = {}
for size in (224, 250, 150, 112):
    h, w = last_map(size)
    features[size] = 512 * h * w
    print(f"input {size}x{size} -> last map 512 x {h} x {w} = {features[size]:>6,} features")
h_ceil, w_ceil = last_map(150, ceil_mode=True)
print(f"(with ceil-mode pooling, as in Caffe: 150 -> 512 x {h_ceil} x {w_ceil} = {512 * h_ceil * w_ceil:,})")
print(f"fc6 weights at 250x250: 4096 x {features[250]:,} = {4096 * features[250]:,}")

# %% [markdown]
# **The lecture's 250 x 250 figure is right: $7 \times 7 \times 512 = 25{,}088$ features, and
# fc6 has $4096 \times 25{,}088 \approx 103$ million weights.** Its 150 x 150 figure is not:
# $150 \to 75 \to 37 \to 18 \to 9 \to 4$, so the last map is $4 \times 4$ and the flattened vector
# has $512 \cdot 16 = 8{,}192$ entries, not $3 \times 3 \times 512 = 4{,}608$ (rounding up, as
# Caffe pools, gives $5 \times 5$, 12,800; a $3 \times 3$ map needs an input of 96 to 127
# pixels, e.g. 112). The lecture's conclusion stands either way: 8,192 inputs cannot meet a
# weight matrix built for 25,088.
#
# ## 2. Convolutionization
#
# A fully connected layer on a $C \times h \times w$ map *is* a convolution with a
# $C \times h \times w$ kernel and no padding: output $o$ is
# $\sum_{c,i,j} W[o, (c,i,j)]\, x[c,i,j]$, the kernel placed once. Reshape fc6's weight from
# $(4096, 25088)$ to $(4096, 512, 7, 7)$ and it is a $7 \times 7$ convolution; fc7 and fc8 become
# $1 \times 1$ convolutions. Nothing is retrained, and
#
# * at the training size the convolution fits exactly once: the same scores, as a $1 \times 1$ map;
# * on a larger image it slides: a $(H'-7+1) \times (W'-7+1)$ map of scores, each one the
#   classifier's answer for one window — computed with all the windows' shared work done once;
# * on a smaller image (the lecture's 150, with its $4 \times 4$ map) the $7 \times 7$ kernel
#   does not fit: a convolutionized net needs at least the training size.
#
# We train a small classifier of 32 x 32 shape images (three conv-pool stages, then two fully
# connected layers), convolutionize it with `npcnn.models.convolutionize`, and run it on a
# 64 x 64 canvas holding four shapes. Its convolutions are unpadded: with zero padding a
# window's border pixels would see zeros when the window is an image of its own and the
# neighbouring shape when it is part of the canvas, and the two answers would differ slightly.
# Unpadded, every entry of the score map is *exactly* the classifier's answer on one window.

# %%
n_cls = 1000 if quick else 4000
classes = ("circle", "square", "triangle", "cross")
cls_train = shapes(n_cls, size=32, classes=classes, seed=0)
cls_test = shapes(400, size=32, classes=classes, seed=1)
classifier = nn.Sequential(  # unpadded ("valid") convolutions: 32 -> 30 -> 15 -> 13 -> 6 -> 4 -> 2
    nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),  # -> 32 x 2 x 2
    nn.Flatten(1), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Linear(64, len(classes)))
# Adam at 3e-3: at 1e-2 this small net's result depended on the last bits of rounding (test
# accuracy 25% to 83% over four seeds in quick mode; 77% to 91% at 3e-3 with 12 epochs)
Trainer(classifier, nn.CrossEntropyLoss(), npcnn.optim.Adam(classifier.parameters(), lr=3e-3), verbose=0).fit(
    DataLoader(cls_train, batch_size=32, shuffle=True, seed=0), 12 if quick else 15)
cls_accuracy = evaluate(classifier, DataLoader(cls_test, batch_size=400))["accuracy"]
print(f"classifier test accuracy {100 * cls_accuracy:.1f}%")

fcn = models.convolutionize(classifier, (1, 32, 32))
print(fcn[-3:])
classifier.eval()
fcn.eval()
with npcnn.no_grad():
    same_size_gap = float(np.abs(fcn(cls_test[0][:8])[:, :, 0, 0] - classifier(cls_test[0][:8])).max())

# Four test shapes, one per quadrant of a 64 x 64 canvas.
picks = [int(np.flatnonzero(cls_test[1] == k)[0]) for k in range(4)]
canvas = np.zeros((1, 1, 64, 64), dtype=np.float32)
corners = [(0, 0), (0, 32), (32, 0), (32, 32)]
for (r, c), i in zip(corners, picks):
    canvas[0, 0, r:r + 32, c:c + 32] = cls_test[0][i, 0]
with npcnn.no_grad():
    score_map = fcn(canvas)[0]  # (classes, 5, 5)
    crop_scores = classifier(np.stack([canvas[0, :, r:r + 32, c:c + 32] for r, c in corners]))
# The network's total stride is 8, so map position (i, j) is the 32 x 32 window at (8 i, 8 j).
corner_scores = np.stack([score_map[:, r // 8, c // 8] for r, c in corners])
map_gap = float(np.abs(corner_scores - crop_scores).max())
print(f"score map {tuple(score_map.shape)}; at the four quadrants it equals the classifier on the crops "
      f"(max difference {map_gap:.1e}); predicted: {[classes[k] for k in corner_scores.argmax(1)]}")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(canvas[0, 0], cmap="gray")
axes[0].set_title("64 x 64 input")
im = axes[1].imshow(score_map.argmax(0), cmap="tab10", vmin=0, vmax=9)
axes[1].set_title("argmax of the 5 x 5 score map")
for k, name in enumerate(classes):
    axes[1].plot([], [], "s", color=plt.cm.tab10(k), label=name)
axes[1].legend(fontsize=7, loc="upper right", bbox_to_anchor=(1.45, 1))
savefig(fig, out, "score_map.png")

# %% [markdown]
# ## 3. Transposed convolution and its output size
#
# A convolution maps an $i \times i$ input to $o = \lfloor (i + 2p - k)/s \rfloor + 1$. The
# transposed convolution goes the other way: each input pixel is multiplied by the whole
# $k \times k$ kernel and the products are *added* into the output at stride $s$ (overlaps sum),
# then $p$ rows and columns are cropped from each border:
#
# $$ o' = s\,(i' - 1) + k - 2p .$$
#
# It is exactly the backward pass (the adjoint) of the convolution with the same weights, which
# is why npcnn computes it with Conv2d's input-gradient code. For stride 1 it is also an
# ordinary convolution with the kernel flipped, over the input padded by $p' = k - 1 - p$ —
# the lecture's "$p' = k-1$" for an unpadded input.
#
# The lecture's two examples, a few of this lesson's, and what `nn.ConvTranspose2d` gives:

# %%
examples = [  # (i', k, s, p, where from)
    (2, 3, 1, 0, "lecture: unpadded, p' = k - 1"),
    (6, 4, 1, 2, "lecture: padded, p' = k - p - 1"),
    (4, 4, 2, 1, "FCN's 2x upsampling (SkipFusion)"),
    (8, 16, 8, 4, "fcn_tiny's 8x upsampling"),
    (14, 4, 2, 1, "section 5's super-resolution, 14 -> 28"),
]
size_rows = []
print(f"{'i':>3} {'k':>3} {'s':>2} {'p':>2} {'s(i-1)+k-2p':>12} {'ConvTranspose2d':>16}")
for i, k, s, p, note in examples:
    formula = s * (i - 1) + k - 2 * p
    layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p)
    with npcnn.no_grad():
        measured = layer(np.zeros((1, 1, i, i), dtype=np.float32)).shape[-1]
    size_rows.append((formula, measured))
    print(f"{i:>3} {k:>3} {s:>2} {p:>2} {formula:>12} {measured:>16}   {note}")

# The scatter picture: a 2x2 input of ones through a 3x3 kernel of ones counts the overlaps.
scatter = nn.ConvTranspose2d(1, 1, 3, bias=False)
scatter.weight.data[...] = 1.0
with npcnn.no_grad():
    overlaps = scatter(np.ones((1, 1, 2, 2), dtype=np.float32))[0, 0]
print("2x2 ones through a 3x3 kernel of ones (how many input pixels reach each output):\n", overlaps)

# Stride 1: the same as a convolution of the input padded by k - 1 - p with the flipped kernel.
gen = np.random.default_rng(0)
x6 = gen.standard_normal((1, 2, 6, 6)).astype(np.float32)
t_conv = nn.ConvTranspose2d(2, 3, 4, padding=2, bias=False)
direct = nn.Conv2d(2, 3, 4, padding=4 - 1 - 2, bias=False)
direct.weight.data[...] = t_conv.weight.data.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
with npcnn.no_grad():
    flip_gap = float(np.abs(t_conv(x6) - direct(x6)).max())

# The adjoint: <conv(x), y> = <x, conv_transpose(y)> with one shared weight.
conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=False)
tconv = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, bias=False)
tconv.weight.data[...] = conv.weight.data
x9 = gen.standard_normal((1, 2, 9, 9))
with npcnn.no_grad(), npcnn.backend.default_dtype(np.float64):
    conv64, tconv64 = conv.double(), tconv.double()
    y = gen.standard_normal(conv64(x9).shape)
    lhs, rhs = float((conv64(x9) * y).sum()), float((x9 * tconv64(y)).sum())
with npcnn.no_grad():
    ambiguous = [nn.Conv2d(1, 1, 3, stride=2, padding=1)(np.zeros((1, 1, n, n), dtype=np.float32)).shape[-1]
                 for n in (9, 10)]
    back = [nn.ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=q)(
        np.zeros((1, 1, 5, 5), dtype=np.float32)).shape[-1] for q in (0, 1)]
print(f"stride-2 conv: 9 -> {ambiguous[0]}, 10 -> {ambiguous[1]}; its transpose: 5 -> {back[0]}, "
      f"with output_padding=1 5 -> {back[1]}")
print(f"stride 1 as a flipped convolution: max difference {flip_gap:.1e};  "
      f"adjoint: <conv x, y> = {lhs:.10f}, <x, convT y> = {rhs:.10f}")

# %% [markdown]
# A stride-2 convolution maps both 9 and 10 pixels to 5, so its transpose has to be told which
# one to return: `output_padding=1` adds the missing row and column (5 -> 9 by default, 10 with
# `output_padding=1`, as printed above).
#
# ## 4. Segmentation: upsampling and skip fusion
#
# `npcnn.models.fcn_tiny` is FCN-8s in small: five conv-pool stages take a 32 x 32 image to 1/32
# of its size, fc6 and fc7 are convolutions, and a $1 \times 1$ convolution scores every
# position of the 1/32 map (`score_fr`). Then:
#
# $$ \text{fuse}_4 = \text{up}_2(\text{score\_fr}) + \text{score}(\text{pool}_4), \quad
#    \text{fuse}_3 = \text{up}_2(\text{fuse}_4) + \text{score}(\text{pool}_3), \quad
#    \text{out} = \text{up}_8(\text{fuse}_3), $$
#
# every $\text{up}$ a transposed convolution initialized to bilinear interpolation and then
# learned. Freezing the two skip scorers at their initial zero turns the same network into
# **FCN-32s**: the prediction comes from the 1/32 map alone, upsampled 32 times — one score per
# $32 \times 32$ block, blurred. We train both on `npcnn.data.shapes` with per-pixel masks
# (background plus four shape classes) and per-pixel cross-entropy.


# %%
def mean_iou(pred, target, num_classes):
    """Mean over the classes present in pred or target of |pred & target| / |pred | target|,
    read off the pixel confusion matrix M: intersection M[c, c], union row c + column c - M[c, c]."""
    m = confusion_matrix(pred.ravel(), target.ravel(), num_classes)
    union = m.sum(axis=0) + m.sum(axis=1) - np.diag(m)
    return float((np.diag(m)[union > 0] / union[union > 0]).mean())


n_seg, seg_epochs = (400, 5) if quick else (2000, 12)
seg_x, _, seg_m = shapes(n_seg, size=32, classes=classes, return_masks=True, seed=2)
test_x, _, test_m = shapes(200, size=32, classes=classes, return_masks=True, seed=3)
segmentation = {}
for name, skips in (("FCN-32s", False), ("FCN-8s", True)):
    npcnn.manual_seed(0)
    net = models.fcn_tiny(num_classes=len(classes) + 1, in_channels=1, width=8)
    if not skips:
        net.fuse_pool4.score.requires_grad_(False)  # zero-initialized: these skips add nothing
        net.fuse_pool3.score.requires_grad_(False)
    trainer = Trainer(net, nn.CrossEntropyLoss(), npcnn.optim.Adam(net.parameters(), lr=3e-3), verbose=0,
                      metrics=())
    trainer.fit(DataLoader((seg_x, seg_m), batch_size=20, shuffle=True, seed=0), seg_epochs)
    net.eval()
    with npcnn.no_grad():
        pred = net(test_x).argmax(1)
    segmentation[name] = dict(loss=trainer.history["loss"][-1], pixel=float((pred == test_m).mean()),
                              iou=mean_iou(pred, test_m, len(classes) + 1), pred=pred)
    print(f"{name}: final training loss {segmentation[name]['loss']:.3f}, test pixel accuracy "
          f"{100 * segmentation[name]['pixel']:.1f}%, mean IoU {segmentation[name]['iou']:.3f}")
background = float((test_m == 0).mean())
print(f"(predicting background everywhere scores {100 * background:.1f}% of the pixels)")

fig, axes = plt.subplots(4, 4, figsize=(8, 8))
for row in range(4):
    for ax, img, title in zip(axes[row], (test_x[row, 0], test_m[row], segmentation["FCN-32s"]["pred"][row],
                                          segmentation["FCN-8s"]["pred"][row]),
                              ("image", "true mask", "FCN-32s", "FCN-8s")):
        ax.imshow(img, cmap="gray" if title == "image" else "tab10", vmin=0, vmax=1 if title == "image" else 9)
        ax.set_title(title if row == 0 else "", fontsize=9)
        ax.axis("off")
savefig(fig, out, "segmentation.png")

# %% [markdown]
# The coarse map alone has one score per $32 \times 32$ block — here one per image — so FCN-32s
# can say little more than "mostly background". The skips bring in the 1/8 and 1/16 maps,
# where each position still knows where it is, and the masks find the shapes and their extent.
# They are still rounded: the finest scores come from the 1/8 map, one per $8 \times 8$ block,
# and the 8x upsampling interpolates between them (FCN adds finer skips, later networks such as
# U-Net fuse every resolution, for sharp corners).
#
# ## 5. Super-resolution: learning to upscale 2x
#
# The same tool in reverse: given a 14 x 14 image (a 28 x 28 MNIST digit averaged over
# $2 \times 2$ blocks), produce the 28 x 28 original. The classic answer is interpolation:
# bicubic (a cubic spline through the pixels, `scipy.ndimage.zoom(order=3)`). A network can learn
# what digits look like and do better. Ours is
#
# $$ \hat y = \mathrm{up}_2(x) + T\big(\mathrm{ReLU}(C_2\, \mathrm{ReLU}(C_1 x))\big), $$
#
# a fixed bilinear 2x upsampling $\mathrm{up}_2$ plus a learned correction: two $3 \times 3$
# convolutions $C_1, C_2$ (32 channels) and a $4 \times 4$ stride-2 transposed convolution $T$
# ($o' = 2(14 - 1) + 4 - 2 = 28$). $T$ starts at zero, so
# training starts from plain bilinear interpolation. The measure is the peak signal-to-noise
# ratio, for pixels in $[0, 1]$:
#
# $$ \mathrm{PSNR} = 10 \log_{10} \frac{1}{\mathrm{MSE}(\hat y, y)} \ \text{dB} $$
#
# (higher is better; +3 dB halves the squared error).

# %%
n_sr, sr_epochs = (1000, 2) if quick else (10000, 5)
try:
    hr_train = mnist(train=True, normalize=True, download=False).images[:n_sr]
    hr_test = mnist(train=False, normalize=True, download=False).images[:500]
    sr_data = "MNIST"
except DatasetNotFoundError as err:  # no MNIST files: the same lesson on 28 x 28 shapes
    print(f"MNIST not found ({str(err).splitlines()[0]}); using 28 x 28 shapes instead")
    hr_train = shapes(n_sr, size=28, seed=4)[0]
    hr_test = shapes(500, size=28, seed=5)[0]
    sr_data = "shapes"


def downsample(images):
    """2x2 block means: (N, 1, 28, 28) -> (N, 1, 14, 14)."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def psnr(estimate, target):
    """Mean over images of 10 log10(1 / MSE), the estimate clipped to [0, 1]."""
    mse = ((np.clip(estimate, 0.0, 1.0) - target) ** 2).mean(axis=(1, 2, 3))
    return float(np.mean(10 * np.log10(1.0 / mse)))


lr_train, lr_test = downsample(hr_train), downsample(hr_test)
bicubic = ndimage.zoom(lr_test, (1, 1, 2, 2), order=3)

npcnn.manual_seed(0)
bilinear = nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1, bias=False)
models.bilinear_kernel_(bilinear.weight)
bilinear.weight.requires_grad = False  # fixed: the learned part is the correction
correction = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                           nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1))
nn.init.zeros_(correction[-1].weight)
nn.init.zeros_(correction[-1].bias)
upscaler = nn.Residual(correction, shortcut=bilinear)
with npcnn.no_grad():
    psnr_bilinear = psnr(upscaler(lr_test), hr_test)
Trainer(upscaler, nn.MSELoss(), npcnn.optim.Adam(upscaler.parameters(), lr=2e-3), verbose=0, metrics=()).fit(
    DataLoader((lr_train, hr_train), batch_size=32, shuffle=True, seed=0), sr_epochs)
with npcnn.no_grad():
    learned = upscaler(lr_test)
psnr_table = {"bilinear (the network at step 0)": psnr_bilinear, "bicubic": psnr(bicubic, hr_test),
              "learned 2x upscaler": psnr(learned, hr_test)}
for name, value in psnr_table.items():
    print(f"{name:>33}: {value:.2f} dB on {len(hr_test)} {sr_data} test images")

fig, axes = plt.subplots(4, 4, figsize=(7, 7))
for row in range(4):
    for ax, img, title in zip(axes[row], (lr_test[row, 0], bicubic[row, 0], learned[row, 0], hr_test[row, 0]),
                              ("14x14 input", "bicubic", "learned", "28x28 truth")):
        ax.imshow(np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title if row == 0 else "", fontsize=9)
        ax.axis("off")
savefig(fig, out, "super_resolution.png")

# %% [markdown]
# Interpolation knows only smoothness; the network has seen a thousand digits and knows that
# strokes have sharp edges and a typical width, so it puts the edges back. (PSNR rewards the
# average: on unusual inputs the learned prior helps less, and for very large factors networks
# trained on MSE blur — which is why later work adds perceptual and adversarial losses.)
#
# ## What this lesson showed, checked

# %%
claim("VGG16 at 250x250 ends in 512 x 7 x 7 = 25,088 features (the lecture's figure)", features[250] == 25088)
claim("at 150x150 it is 512 x 4 x 4 = 8,192 features, not the lecture's 3 x 3 x 512 = 4,608",
      features[150] == 8192 and last_map(150) == (4, 4))
claim("a 3 x 3 map needs an input of 96-127 pixels (112 gives 4,608)", features[112] == 4608)
claim(f"the shape classifier learns its task (test {100 * cls_accuracy:.1f}% > 60%, chance 25%)",
      cls_accuracy > 0.6)
claim("convolutionized, the classifier gives the same scores at the training size",
      same_size_gap < 1e-5)
claim(f"on a 64x64 canvas it gives a {score_map.shape[1]}x{score_map.shape[2]} score map whose quadrant "
      "entries are the classifier's scores on the crops", score_map.shape[1:] == (5, 5) and map_gap < 1e-4)
claim("transposed-convolution output size s(i'-1) + k - 2p matches nn.ConvTranspose2d on every example, "
      "the lecture's 4 and 5 included", all(f == m for f, m in size_rows) and size_rows[0][0] == 4
      and size_rows[1][0] == 5)
claim("output_padding picks between the sizes a strided convolution maps together (9 and 10 -> 5)",
      ambiguous == [5, 5] and back == [9, 10])
claim("stride-1 transposed convolution = convolution with the flipped kernel and padding k - 1 - p",
      flip_gap < 1e-5)
claim("the transposed convolution is the adjoint of the convolution: <conv x, y> = <x, convT y>",
      abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs)))
claim(f"skip fusion helps: FCN-8s reaches a lower training loss ({segmentation['FCN-8s']['loss']:.3f} < "
      f"{segmentation['FCN-32s']['loss']:.3f}) and a higher mean IoU ({segmentation['FCN-8s']['iou']:.3f} > "
      f"{segmentation['FCN-32s']['iou']:.3f})",
      segmentation["FCN-8s"]["loss"] < segmentation["FCN-32s"]["loss"]
      and segmentation["FCN-8s"]["iou"] > segmentation["FCN-32s"]["iou"])
claim(f"the learned 2x upscaler beats bicubic interpolation by more than 1 dB PSNR "
      f"({psnr_table['learned 2x upscaler']:.2f} vs {psnr_table['bicubic']:.2f} dB)",
      psnr_table["learned 2x upscaler"] > psnr_table["bicubic"] + 1.0)

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
