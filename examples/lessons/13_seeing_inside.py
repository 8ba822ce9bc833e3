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
# # Lesson 13: seeing inside a CNN
#
# A trained network is a few thousand numbers that classify digits. What have they learned?
# The lectures go through the standard ways to look, from the weights up to whole images the
# network "imagines", and this lesson does each on a LeNet-5 trained on MNIST:
#
# | question | method |
# | --- | --- |
# | what does a layer look for? | its **filters**, its **feature maps**, the **patches** that excite it |
# | which pixels did this answer use? | **saliency**, **guided backpropagation**, **Grad-CAM**, **occlusion** |
# | what does a class look like to it? | **class models** by gradient ascent; **DeepDream** |
# | does it group images by meaning? | **nearest neighbours** in pixel space against feature space |
#
# All of it is `npcnn.viz`; every method is a forward pass, a backward pass, or both, written
# with the same `backward` the network trains with. Run with `--quick` for the version CI runs.

# %%
import os
import sys
from collections import OrderedDict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd())

import numpy as np
from _course import all_claims_hold, claim, savefig, setup

import npcnn
from npcnn import nn, viz
from npcnn.data import DataLoader, DatasetNotFoundError, mnist, shapes
from npcnn.train import Trainer, evaluate

quick, out = setup("13_seeing_inside", "filters, feature maps, patches, saliency, guided backprop, Grad-CAM, "
                                       "occlusion, class models, DeepDream, nearest neighbours")
npcnn.manual_seed(0)
print("quick mode" if quick else "full mode", "-> figures in", out)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# %% [markdown]
# ## 1. The network
#
# LeNet-5 with two modern changes that the visualizations need: ReLU instead of tanh (guided
# backpropagation is defined at ReLUs) and max pooling instead of average pooling. The layers keep
# LeNet's names: c1 ($5\times5$, 6 maps), s2, c3 ($5\times5$, 16 maps), s4, c5 (120), f6 (84),
# output (10). Without the MNIST files the lesson runs on 28 x 28 images of four shapes instead.

# %%
try:
    train_set = mnist(train=True, normalize=True, download=False)
    test_set = mnist(train=False, normalize=True, download=False)
    data, class_names = "MNIST", [str(d) for d in range(10)]
    x_train, y_train = train_set.images, train_set.labels
    x_test, y_test = test_set.images, test_set.labels
except DatasetNotFoundError as err:
    print(f"MNIST not found ({str(err).splitlines()[0]}); using 28 x 28 shapes instead")
    data, class_names = "shapes", ["circle", "square", "triangle", "cross"]
    x_train, y_train = shapes(6000, size=28, classes=class_names, seed=0)
    x_test, y_test = shapes(4000, size=28, classes=class_names, seed=1)

model = nn.Sequential(OrderedDict([
    ("c1", nn.Conv2d(1, 6, 5, padding=2)), ("relu1", nn.ReLU()), ("s2", nn.MaxPool2d(2)),
    ("c3", nn.Conv2d(6, 16, 5)), ("relu3", nn.ReLU()), ("s4", nn.MaxPool2d(2)),
    ("c5", nn.Conv2d(16, 120, 5)), ("relu5", nn.ReLU()), ("flatten", nn.Flatten(1)),
    ("f6", nn.Linear(120, 84)), ("relu6", nn.ReLU()), ("output", nn.Linear(84, len(class_names))),
]))
initial_c1 = viz.filter_images(model, "c1").copy()
n_train, epochs = (4000, 2) if quick else (60000, 3)
Trainer(model, nn.CrossEntropyLoss(), npcnn.optim.Adam(model.parameters(), lr=2e-3), verbose=0).fit(
    DataLoader((x_train[:n_train], y_train[:n_train]), batch_size=32, shuffle=True, seed=0), epochs)
model.eval()
accuracy = evaluate(model, DataLoader((x_test[:2000], y_test[:2000]), batch_size=500))["accuracy"]
print(f"{data}: trained on {n_train} images for {epochs} epochs, test accuracy {100 * accuracy:.1f}%")

# %% [markdown]
# ## 2. Filters: what the first layer looks for
#
# A first-layer filter is applied directly to pixels, so it can be drawn as an image: c1's six
# $5 \times 5$ kernels. A convolution responds most where the image patch looks like the filter
# (the response is their dot product), so light-dark pairs are edge and stroke detectors of one
# orientation. Deeper filters (c3's, $6 \times 5 \times 5$ each) act on feature maps, not pixels;
# drawn channel by channel they are much harder to read, which is why the other methods exist.

# %%
c1 = viz.filter_images(model, "c1")
fig, axes = plt.subplots(2, 6, figsize=(9, 3.2))
for k in range(6):
    for row, (w, title) in enumerate(((initial_c1[k, 0], "initial"), (c1[k, 0], "trained"))):
        axes[row, k].imshow(w, cmap="gray")
        axes[row, k].set_title(f"{title} {k}", fontsize=8)
        axes[row, k].axis("off")
savefig(fig, out, "filters_c1.png")
viz.plot_filters(model, out / "filters_c3.png", layer="c3", nrow=8, scale=8)
filter_change = float(np.abs(c1 - initial_c1).mean() / np.abs(initial_c1).mean())
print(f"c1's weights moved by {100 * filter_change:.0f}% of their initial size on average")

# %% [markdown]
# ## 3. Feature maps and receptive fields
#
# The feature maps are the layer's outputs for one image: c1 keeps the $28 \times 28$ layout
# (padding 2), so each map is the digit redrawn by one detector; c3's $10 \times 10$ maps are
# coarser and more abstract.
#
# How much of the image does one unit see? Going up a layer with kernel $k$ and stride $s$ the
# receptive field grows by $(k-1)$ times the current jump $j$ (the input distance between
# neighbouring units), and the jump multiplies by $s$:
#
# $$ r_\text{out} = r_\text{in} + (k - 1)\, j_\text{in}, \qquad j_\text{out} = s\, j_\text{in}. $$
#
# c1: $r = 1 + 4 = 5$; s2: $r = 5 + 1 = 6$, $j = 2$; c3: $r = 6 + 4 \cdot 2 = 14$. A c3 unit sees
# a $14 \times 14$ window — half the digit — and c5's units see $14 + 1 \cdot 2 + 4 \cdot 4 = 32$,
# more than the whole image.

# %%
digit = x_test[0]
viz.plot_feature_maps(model, digit, "relu1", out / "feature_maps_c1.png", nrow=6)
viz.plot_feature_maps(model, digit, "relu3", out / "feature_maps_c3.png", nrow=8)
fields = {name: viz.receptive_field(model, name) for name in ("c1", "s2", "c3", "s4", "c5")}
for name, field in fields.items():
    print(f"{name}: receptive field {field.size}, jump {field.jump}")

# %% [markdown]
# **Maximally activating patches.** Run many images through the network, record one channel of
# a layer, and cut out the input patch under the most active unit of each image (its receptive
# field). The top patches show what the channel responds to.

# %%
pool = x_test[:1000 if quick else 5000]
patches = viz.plot_max_activating_patches(model, pool, "relu3", channels=range(6), path=out / "max_patches_c3.png",
                                          k=8)
top = patches[0]
print(f"relu3 channel 0: top activations {[round(float(v), 2) for v in top.values[:4]]} from images "
      f"{top.indices[:4].tolist()}; patches {top.patches.shape[2:]}")

# %% [markdown]
# ## 4. Which pixels mattered: saliency and guided backpropagation
#
# **Saliency** (Simonyan et al. 2014) is the gradient of the class score $S_c$ (the logit) with
# respect to the pixels, $M = \max_\text{channels} |\partial S_c / \partial I|$: one backward pass
# with $\partial L / \partial \text{logits} = $ one-hot$(c)$.
#
# **Guided backpropagation** (Springenberg et al. 2015) changes the backward pass at every ReLU.
# Plain backprop passes $\delta_\text{in} = \delta_\text{out} [x > 0]$; guided backprop also drops
# negative gradients, $\delta_\text{in} = \delta_\text{out} [x > 0] [\delta_\text{out} > 0]$, so only
# evidence *for* the output flows back and the picture is much cleaner.
#
# The lecture applies it to **a chosen layer and channel** ("conv5, channel 20"): the objective is
# one unit's activation instead of a class score. `viz.guided_backprop(model, x, layer=...,
# channel=..., position="max")` seeds the backward pass at that layer with a one on the channel's
# strongest unit (zeros elsewhere) and runs the rest of the way down. Since a unit depends only on
# the pixels in its receptive field, the result must be zero outside that $14 \times 14$ window —
# a check on both computations.

# %%
x8, y8 = x_test[:8], y_test[:8]
saliency = viz.saliency_map(model, x8, y8)
guided_class = np.abs(viz.guided_backprop(model, x8, y8)).max(axis=1)

channel = 0  # relu3's channel 0, whose patches are drawn above
unit_grad = viz.guided_backprop(model, x8, layer="relu3", channel=channel)          # (8, 1, 28, 28)
c3_maps = viz.feature_maps(model, x8, "relu3")[:, channel]                           # (8, 10, 10)
outside = []
for i in range(len(x8)):
    r, c = np.unravel_index(int(np.argmax(c3_maps[i])), c3_maps[i].shape)
    top_, left, bottom, right = fields["c3"].window(int(r), int(c))
    mask = np.ones((28, 28), dtype=bool)
    mask[max(top_, 0):bottom, max(left, 0):right] = False
    outside.append(float(np.abs(unit_grad[i, 0][mask]).max()))
inside = float(np.abs(unit_grad).max())
print(f"guided backprop of relu3 channel {channel}'s strongest unit: largest |gradient| {inside:.3f} inside "
      f"its 14x14 field, {max(outside):.1e} outside")

plain_unit = viz.saliency.activation_gradient(model, x8, "relu3", channel)
maps = OrderedDict([("saliency", saliency), ("guided (class)", guided_class),
                    (f"plain (relu3 ch {channel})", np.abs(plain_unit).max(axis=1)),
                    (f"guided (relu3 ch {channel})", np.abs(unit_grad).max(axis=1))])
viz.plot_heatmaps(x8, maps, out / "saliency_guided.png", titles=[class_names[int(c)] for c in y8])

# %% [markdown]
# ## 5. Grad-CAM and occlusion
#
# **Grad-CAM** (Selvaraju et al. 2017) weighs a conv layer's maps $A_k$ by how much the class score
# cares about each, $\alpha_k = \text{mean}_{y,x}\, \partial S_c / \partial A_k[y, x]$, and keeps the
# positive part of $\sum_k \alpha_k A_k$: a coarse map of the regions that speak for class $c$.
#
# **Occlusion** (Zeiler & Fergus 2014) needs no gradient at all: slide a grey or black square over
# the image and record how much the class score drops. Occluding with the background value (0 for
# MNIST) a patch that holds no ink changes nothing, so those drops are exactly zero; the biggest
# drop must come from a patch over the strokes.

# %%
cam = viz.grad_cam(model, x8, y8, layer="relu3")
size, stride = 6, 2
occlusion, inkless_drops, best_has_ink = [], [], []
for i in range(len(x8)):
    drops = viz.occlusion_map(model, x8[i], int(y8[i]), size=size, stride=stride, value=0.0)
    starts = range(0, 28 - size + 1, stride)
    ink = np.array([[x8[i, 0, r:r + size, c:c + size].max() > 0 for c in starts] for r in starts])
    inkless_drops.append(float(np.abs(drops[~ink]).max()) if (~ink).any() else 0.0)
    best_has_ink.append(bool(ink.flat[int(np.argmax(drops))]))
    occlusion.append(np.maximum(viz.occlusion_pixel_map(drops, x8[i].shape, size=size, stride=stride), 0))
viz.plot_heatmaps(x8, OrderedDict([("Grad-CAM (c3)", cam), ("occlusion", np.stack(occlusion))]),
                  out / "gradcam_occlusion.png", titles=[class_names[int(c)] for c in y8])
print(f"occlusion: largest |drop| on inkless patches {max(inkless_drops):.1e}; "
      f"the biggest drop is on ink in {sum(best_has_ink)}/{len(x8)} images")

# %% [markdown]
# ## 6. What the network imagines: class models and DeepDream
#
# Fix the weights and run gradient *ascent* on the image instead (Simonyan et al. 2014): start
# from near-zero noise and follow $\partial S_c / \partial I$, with a little L2 decay, jitter and
# blur so that the image does not become high-frequency noise:
#
# $$ I \leftarrow I + \eta \left( \frac{\partial S_c}{\partial I} - \lambda I \right). $$
#
# The result is an image the network scores as class $c$ — not a digit a person would draw, but
# the strokes the network counts as evidence. **DeepDream** does the same for a layer instead of
# a class, starting from a real image: ascend $\tfrac12 \lVert A \rVert^2$ of the layer's
# activations $A$, which amplifies whatever the layer already sees.

# %%
n_classes = len(class_names)
class_models = viz.class_model(model, list(range(n_classes)), (1, 28, 28), steps=60 if quick else 200, lr=0.05,
                               l2=1e-3, jitter=2, blur_sigma=0.5, blur_every=4, clip=(0.0, 1.0))
with npcnn.no_grad():
    imagined_as = model(class_models).argmax(1)
print("class models are classified as", imagined_as.tolist())
viz.plot_images(list(class_models), out / "class_models.png", titles=class_names, ncols=n_classes)

dream_input = x8[:4]
dreams = viz.deep_dream(model, dream_input, "relu3", steps=20, lr=0.02, jitter=1, clip=(0.0, 1.0))
energy_before = float((viz.feature_maps(model, dream_input, "relu3") ** 2).sum())
energy_after = float((viz.feature_maps(model, dreams, "relu3") ** 2).sum())
print(f"DeepDream on relu3: ||A||^2 {energy_before:.0f} -> {energy_after:.0f}")
viz.plot_images(list(dream_input) + list(dreams), out / "deep_dream.png", titles=["input"] * 4 + ["dream"] * 4,
                ncols=4)

# %% [markdown]
# ## 7. Nearest neighbours: pixels against features
#
# The last hidden layer (f6, 84 numbers) is the representation the classifier reads. Its nearest
# neighbours show what the network treats as similar. In pixel space two images are close when
# the same pixels are inked, so a digit moved by two pixels is far from its unmoved twin; in
# feature space images of the same class are close. We measure it: for test digits, as they are
# and shifted by two pixels down and right, how often do the 5 nearest neighbours among 2,000
# other (unshifted) test images share the label?

# %%
database_x, database_y = x_test[2000:4000], y_test[2000:4000]
agreement = {}
for shift in (0, 2):
    queries = np.roll(x_test[:200], shift=(shift, shift), axis=(2, 3))  # moved down and right
    for space, kwargs in (("pixels", {}), ("f6 features", dict(model=model))):
        idx, _ = viz.nearest_neighbors(queries, database_x, k=5, **kwargs)
        agreement[space, shift] = float((database_y[idx] == y_test[:200, None]).mean())
        print(f"queries shifted by {shift} px, {space:>11}: {100 * agreement[space, shift]:.1f}% of the 5 nearest "
              "neighbours share the query's label")
# %% [markdown]
# Pixel-space neighbours are already decent on centred digits (MNIST is centred by its makers);
# the two-pixel shift breaks them, while the features — built by convolutions and pooling, which
# are equivariant and locally invariant to shifts — hold up much better.

# %%
viz.plot_neighbors(queries[:4], database_x, out / "neighbors.png", k=6, model=model,
                   title="shifted queries: pixel-space (odd rows) vs f6 (even rows) neighbours")

# %% [markdown]
# ## What this lesson showed, checked

# %%
claim(f"the network learns its task ({data}: {100 * accuracy:.1f}% > {85 if data == 'MNIST' else 70}%)",
      accuracy > (0.85 if data == "MNIST" else 0.70))
claim("receptive fields grow as r + (k - 1) j: c1 5, s2 6, c3 14, c5 32",
      [fields[n].size[0] for n in ("c1", "s2", "c3", "c5")] == [5, 6, 14, 32])
claim("the top patches of a channel are sorted by activation and cut at the 14x14 field",
      bool(np.all(np.diff(top.values) <= 0)) and top.patches.shape[2:] == (14, 14))
claim("guided backprop of one relu3 unit is confined to that unit's receptive field",
      max(outside) == 0.0 and inside > 0.0)
claim("guided backprop keeps only positive evidence, so it differs from the plain unit gradient",
      not np.allclose(unit_grad, plain_unit))
claim("occluding an inkless patch with the background value changes nothing; the largest drop is on ink",
      max(inkless_drops) < 1e-4 and all(best_has_ink))
if data == "MNIST":
    claim(f"gradient ascent makes an image of each class that the network calls that class "
          f"({int((imagined_as == np.arange(n_classes)).sum())}/{n_classes})",
          int((imagined_as == np.arange(n_classes)).sum()) >= n_classes - 1)
else:
    print("(the class-model claim is made for MNIST only: on the shapes fallback the short ascent "
          f"gets {int((imagined_as == np.arange(n_classes)).sum())}/{n_classes})")
claim("DeepDream amplifies the layer it dreams on (||A||^2 grows)", energy_after > energy_before)
claim(f"for shifted digits, feature-space neighbours share the label more often than pixel-space ones "
      f"({100 * agreement['f6 features', 2]:.0f}% vs {100 * agreement['pixels', 2]:.0f}%)",
      agreement["f6 features", 2] > agreement["pixels", 2])

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
