# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 12: Data: collect, synthesize, augment
#
# When a network overfits or simply has too little to learn from, the best remedy is more data.
# The lecture lists three ways to get it, each with its price:
#
# | way | for | against |
# | --- | --- | --- |
# | **collect** more | real data, exactly the distribution we test on | expensive, manual labelling |
# | **synthesize** | unlimited, labels for free | complicated; *might not truly represent the real data* |
# | **augment** | simple: label-preserving transformations of what we have | a good strategy takes trial and error |
#
# This lesson shows every augmentation the lectures name, builds a synthetic digit training set
# from the fonts matplotlib ships, and measures how far "might not truly represent the real data"
# is: a network trained on synthetic digits alone, tested on real handwritten MNIST digits,
# against real data alone and synthetic data plus a few real labels.

# %%
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "")
from _course import all_claims_hold, claim, savefig, setup  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

import npcnn  # noqa: E402
from npcnn import nn, optim  # noqa: E402
from npcnn.data import DatasetNotFoundError, fashion_mnist, mnist, synthetic_digits  # noqa: E402
from npcnn.data import transforms as T  # noqa: E402

quick, out = setup("12_data", "data: collect, synthesize, augment")


def load(loader):
    """(train, test) ImageDatasets with float images in [0, 1], or None when the files are missing."""
    try:
        return loader(train=True, normalize=True, download=False), loader(train=False, normalize=True, download=False)
    except DatasetNotFoundError:
        return None


real = load(mnist)
fashion = load(fashion_mnist)
if real is None:
    print("MNIST not found (set NPCNN_DATA to the folder holding it): the real-data parts are skipped")

# %% [markdown]
# ## Augment: the lectures' transformations
#
# Each transformation must keep the label: a shifted, slightly rotated or rescaled digit is
# still the same digit. Which ones keep it depends on the data. A horizontal flip is harmless for
# a shoe or a cat (the lectures' example), but it turns a 2 or a 7 into a shape no one writes:
# for digits it is *not* label-preserving. Colour jitter (brightness, contrast, saturation)
# needs colour; we show it on a tinted image. All transforms in `npcnn.data.transforms` take a
# batch (N, C, H, W) and a seeded generator.

# %%
if fashion is not None:
    sample = fashion[0].images[:1]                                    # a Fashion-MNIST ankle boot
    sample_name = "a Fashion-MNIST image"
else:
    digits, _ = synthetic_digits(1, seed=5)
    sample, sample_name = (digits[:, None] / 255.0).astype(np.float32), "a synthetic digit"
rgb = np.concatenate([sample, 0.6 * sample, 0.25 + 0.5 * (1 - sample)], axis=1)     # tinted: (1, 3, 28, 28)
gen = np.random.default_rng(0)
AUGMENTATIONS = {
    "horizontal flip (p = 0.5)": (T.RandomHorizontalFlip(p=0.5, rng=gen), sample),
    "rotate +-30 deg": (T.RandomRotation(30, rng=gen), sample),
    "crop and scale": (T.RandomResizedCrop(28, scale=(0.5, 1.0), rng=gen), sample),
    "translate +-4 px": (T.RandomAffine(0, translate=(0.15, 0.15), rng=gen), sample),
    "colour jitter": (T.ColorJitter(brightness=0.5, contrast=0.5, saturation=0.8, rng=gen), rgb),
}
COLUMNS = 6
fig, axes = plt.subplots(len(AUGMENTATIONS), COLUMNS + 1, figsize=(1.3 * (COLUMNS + 1), 1.4 * len(AUGMENTATIONS)))
for row, (name, (transform, image)) in enumerate(AUGMENTATIONS.items()):
    batch = np.repeat(image, COLUMNS, axis=0)
    shown = [image[0]] + list(transform(batch))
    for col, picture in enumerate(shown):
        ax = axes[row, col]
        ax.imshow(picture[0] if picture.shape[0] == 1 else np.transpose(picture, (1, 2, 0)), cmap="gray",
                  vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[row, 0].set_ylabel(name, fontsize=8)
axes[0, 0].set_title("original", fontsize=8)
savefig(fig, out, "augmentations.png")
print(f"augmentations of {sample_name}: {', '.join(AUGMENTATIONS)}")

# %% [markdown]
# ## Synthesize: digits from fonts, then distorted
#
# `npcnn.data.synthetic_digits(n, seed)` renders each digit with each of the fonts matplotlib
# ships (DejaVu Sans, Serif and Mono in their weights and slants, STIX, Computer Modern: 22
# fonts) through matplotlib's FreeType wrapper, thickens the stroke by a random amount, fits the
# digit into a 20 x 20 box centred by its centre of mass in a 28 x 28 image (MNIST's own
# normalization), and then distorts it:
#
# * a random **affine** map: rotation up to $\pm 15°$, shear up to 0.3, scales 0.8-1.1 in height
#   and width separately, a shift of up to 1.5 pixels;
# * a random **elastic** distortion (Simard et al. 2003): a field of random displacements
#   $u(p) \sim U(-1, 1)^2$ at every pixel $p$, smoothed by a Gaussian of width $\sigma = 4$
#   pixels into a smooth bend, scaled so that no pixel moves by more than $\alpha \le 2.5$ pixels;
#   output pixel $p$ then takes the glyph's value at $A^{-1}(p + \alpha u(p) - t) + c$
#   (bilinear interpolation; $A$ the affine map, $c$ the glyph's centre of mass, $t$ its target).
#
# It returns `(x uint8 (n, 28, 28), y int64 (n,))` like MNIST's files.

# %%
N_SYN = 2000 if quick else 20000
syn_x, syn_y = synthetic_digits(N_SYN, seed=0)
fig, axes = plt.subplots(3, 10, figsize=(10, 3.2))
order = np.argsort(syn_y[:200], kind="stable")
for col in range(10):
    picks = order[syn_y[:200][order] == col][:2]
    axes[0, col].imshow(syn_x[picks[0]], cmap="gray")
    axes[1, col].imshow(syn_x[picks[1]], cmap="gray")
    if real is not None:
        axes[2, col].imshow(real[1].images[np.flatnonzero(real[1].labels == col)[0], 0], cmap="gray")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("synthetic", fontsize=8)
axes[2, 0].set_ylabel("real MNIST" if real is not None else "(no MNIST)", fontsize=8)
savefig(fig, out, "synthetic_vs_real.png")
print(f"{N_SYN} synthetic digits: mean pixel {syn_x.mean():.1f}"
      + (f", real MNIST's {real[0].images[:2000].mean() * 255:.1f}" if real is not None else ""))

# %% [markdown]
# ## Does synthetic data represent real data? Measured
#
# One small CNN, `Conv(1, 8, 5) -> ReLU -> MaxPool(2) -> Conv(8, 16, 5) -> ReLU -> MaxPool(2) ->
# Linear(256, 10)`, trained from the same initial weights with Adam for the same number of steps
# on each training set, and always tested on **real** MNIST test digits:
#
# * `synthetic only`: the synthetic set, no real label at all;
# * `real, few`: 100 real labelled digits (10 per class), and the same with augmentation;
# * `synthetic + real few`: the synthetic set plus the 100 real digits (every batch half
#   synthetic, half real);
# * `real, as many`: as many real digits as synthetic ones (what "collect more" would give).

# %%
STEPS = 300 if quick else 2000
N_TEST = 1000 if quick else 10000


def make_cnn():
    npcnn.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))


def train(sets, augment=False, steps=STEPS, batch=64, seed=1):
    """Adam on batches drawn half-and-half from the (x, y) sets given (one set: all from it)."""
    model = make_cnn()
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    loss_fn, rng = nn.CrossEntropyLoss(), np.random.default_rng(seed)
    affine = T.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1), rng=np.random.default_rng(seed + 1))
    for _ in range(steps):
        parts = [(x[i], y[i]) for x, y in sets for i in [rng.integers(0, len(x), batch // len(sets))]]
        xb, yb = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        loss_fn(model(affine(xb) if augment else xb), yb)
        model.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()
    return model


def accuracy(model, x, y):
    model.eval()
    with npcnn.no_grad():
        predictions = np.concatenate([npcnn.to_numpy(model(x[i:i + 500])).argmax(1) for i in range(0, len(x), 500)])
    return float((predictions == y).mean())


synthetic = ((syn_x[:, None] / 255.0).astype(np.float32), syn_y)
results = {}
if real is not None:
    train_set, test_set = real
    gen = np.random.default_rng(0)
    few = np.concatenate([gen.choice(np.flatnonzero(train_set.labels == d), 10, replace=False) for d in range(10)])
    many = gen.choice(len(train_set), N_SYN, replace=False)
    real_few = (train_set.images[few], train_set.labels[few])
    real_many = (train_set.images[many], train_set.labels[many])
    x_test, y_test = test_set.images[:N_TEST], test_set.labels[:N_TEST]
    runs = {"synthetic only": ([synthetic], False), "real, few (100)": ([real_few], False),
            "real, few (100) + augmentation": ([real_few], True),
            "synthetic + real few (100)": ([synthetic, real_few], False),
            f"real, as many ({N_SYN})": ([real_many], False)}
    for name, (sets, augment) in runs.items():
        results[name] = accuracy(train(sets, augment), x_test, y_test)
        print(f"{name:32s} real MNIST test accuracy {results[name]:.3f}", flush=True)
    lines = ["| training data | labelled real digits | real MNIST test accuracy |", "| --- | --- | --- |"]
    labelled = {"synthetic only": 0, f"real, as many ({N_SYN})": N_SYN}
    for name, acc in results.items():
        lines.append(f"| {name} | {labelled.get(name, 100)} | {acc:.3f} |")
    table = "\n".join(lines)
    print(table)
    (out / "synthesis.md").write_text(f"{STEPS} Adam steps of batch 64, {N_SYN} synthetic digits, "
                                      f"{N_TEST} real test digits\n\n{table}\n")
else:
    print("skipped: training on synthetic digits and testing on real ones needs MNIST")
    syn_test = synthetic_digits(500, seed=1)
    syn_only = train([synthetic], steps=STEPS // 2)
    results["synthetic only, synthetic test"] = accuracy(syn_only, (syn_test[0][:, None] / 255.0).astype(np.float32),
                                                         syn_test[1])
    print(f"synthetic only, tested on other synthetic digits: {results['synthetic only, synthetic test']:.3f}")

# %% [markdown]
# ## Reading the numbers
#
# * **Synthesis works, but it is not real data.** Trained on printed-and-bent digits alone, the
#   network recognizes most real handwritten digits, without ever having seen one: the font
#   renderings carry the shapes of the digits. But it stays well below the same network trained on
#   as many real digits. That gap is the lecture's "might not truly represent the real data",
#   measured: real handwriting has strokes, slants, loops and open 4s that no font distortion
#   produces.
# * **A few real labels close much of it.** Synthetic digits plus 100 real ones beat both the
#   synthetic set alone and the 100 real digits alone: the synthetic set supplies variety, the
#   real digits the real distribution.
# * **Augmentation** of the 100 real digits helps at least as much, at no cost: its variations
#   stay inside the real distribution, while the synthetic set's variations are those of fonts.
#   The two combine (synthetic data plus augmented real data) in practice.
# * **Collecting** more real data is best of all, at the cost the lecture names.

# %% [markdown]
# ## The claims of this lesson

# %%
claim(f"synthetic_digits returns MNIST's layout: {syn_x.shape} {syn_x.dtype}, labels {syn_y.dtype}, balanced",
      syn_x.shape == (N_SYN, 28, 28) and syn_x.dtype == np.uint8 and syn_y.dtype == np.int64
      and np.all(np.bincount(syn_y, minlength=10) == N_SYN // 10))
claim("the same seed gives the same synthetic digits, another seed other ones",
      np.array_equal(synthetic_digits(50, seed=3)[0], synthetic_digits(50, seed=3)[0])
      and not np.array_equal(synthetic_digits(50, seed=3)[0], synthetic_digits(50, seed=4)[0]))
if real is not None:
    syn, few_acc, mix = results["synthetic only"], results["real, few (100)"], results["synthetic + real few (100)"]
    many_acc = results[f"real, as many ({N_SYN})"]
    claim(f"a net trained on synthetic digits alone recognizes real MNIST digits far above chance ({syn:.3f} > 0.5)",
          syn > 0.5)
    claim(f"...but synthetic data is not real data: as many real digits do better by {many_acc - syn:.3f} "
          f"({many_acc:.3f} against {syn:.3f})", many_acc > syn + 0.03)
    claim(f"synthetic + 100 real labels ({mix:.3f}) beat 100 real labels alone ({few_acc:.3f}) and synthetic "
          f"alone ({syn:.3f})", mix > few_acc and mix > syn)
    claim(f"augmenting the 100 real digits helps ({results['real, few (100) + augmentation']:.3f} > {few_acc:.3f})",
          results["real, few (100) + augmentation"] > few_acc)
else:
    claim(f"a net trained on synthetic digits recognizes other synthetic digits "
          f"({results['synthetic only, synthetic test']:.3f} > 0.8)", results["synthetic only, synthetic test"] > 0.8)

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
