# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 9: Regularization and overfitting
#
# A network with far more weights than training images can learn every training image by heart.
# It then reaches 100% training accuracy while its test accuracy stays well below: it
# **overfits**, and the distance between the two curves, the **generalization gap**, is what
# regularization is for. This lesson makes a small multilayer perceptron overfit a few hundred
# MNIST digits and then tries the four remedies of the lectures one at a time:
#
# 1. **dropout**: zero each hidden unit with probability $p$ during training;
# 2. **L2 weight decay** (ridge): add $\frac{\lambda_2}{2}\sum_i w_i^2$ to the loss;
# 3. **L1 penalty** (lasso), and L1 + L2 together (**elastic net**): add $\lambda_1 \sum_i |w_i|$;
# 4. **data augmentation**: train on randomly rotated, shifted and scaled copies of the images.
#
# Every configuration trains the same network from the same initial weights on the same batches;
# only the regularizer changes. One table at the end gives the gap each one leaves.

# %%
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "")
from _course import all_claims_hold, claim, savefig, setup  # noqa: E402

import npcnn  # noqa: E402
from npcnn import nn, optim  # noqa: E402
from npcnn.data import DatasetNotFoundError, mnist, synthetic_digits  # noqa: E402
from npcnn.data import transforms as T  # noqa: E402
from npcnn.optim import add_weight_penalty  # noqa: E402

quick, out = setup("09_regularization", "regularization and overfitting")
N_TRAIN = 300 if quick else 1000
N_TEST = 1000 if quick else 10000
EPOCHS = 60 if quick else 150
HIDDEN = 256

# %% [markdown]
# ## The data: a small subset of MNIST
#
# A few hundred training images are too few for the $784 \cdot 256 + 256 \cdot 256 + 256 \cdot 10
# \approx 270{,}000$ weights of the network below, which is exactly the situation we want. Without
# the MNIST files (set `NPCNN_DATA` to the folder holding them) the lesson falls back on
# synthetic digits (`npcnn.data.synthetic_digits`, lesson 12), where the same effects appear with
# other numbers.

# %%
def load_data():
    """(x, y, x_test, y_test, name): a random MNIST training subset, or synthetic digits."""
    try:
        train = mnist(train=True, normalize=True, download=False)
        test = mnist(train=False, normalize=True, download=False)
    except DatasetNotFoundError as err:
        print(f"MNIST not found ({err}); using synthetic digits instead")
        x, y = synthetic_digits(N_TRAIN + N_TEST, seed=0)
        x = (x[:, None] / 255.0).astype(np.float32)         # (N, 1, 28, 28) in [0, 1], like mnist(normalize=True)
        return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], "synthetic digits"
    pick = np.random.default_rng(0).choice(len(train), N_TRAIN, replace=False)
    return train.images[pick], train.labels[pick], test.images[:N_TEST], test.labels[:N_TEST], "MNIST"


x_train, y_train, x_test, y_test, data_name = load_data()
print(f"{data_name}: {len(x_train)} training images, {len(x_test)} test images")

# %% [markdown]
# ## The network and one training loop for every regularizer
#
# A two-hidden-layer perceptron, `Flatten -> Linear(784, 256) -> ReLU -> Linear(256, 256) -> ReLU
# -> Linear(256, 10)`, trained by SGD with momentum 0.9 (learning rate 0.05, batches of 50).
# With dropout it gets a `Dropout(0.2)` on the input pixels and a `Dropout(0.5)` after each
# hidden layer, the rates of Hinton et al.'s original dropout networks.
#
# The loop is the bare cycle: forward, loss, backward, (penalty), step. The L2 penalty is SGD's
# `weight_decay` argument: it adds $\lambda_2 w$ to every gradient before the step. L1 has no
# optimizer argument; `npcnn.optim.add_weight_penalty(params, l1=..., l2=...)` adds the
# subgradient of $P(w) = \lambda_1 \sum|w_i| + \frac{\lambda_2}{2}\sum w_i^2$,
#
# $$\frac{\partial P}{\partial w_i} = \lambda_1 \,\mathrm{sign}(w_i) + \lambda_2 w_i ,$$
#
# to the gradients between `backward` and `step` (biases are left alone with `skip_1d=True`).

# %%
def make_net(dropout=False):
    npcnn.manual_seed(0)                       # the same initial weights for every configuration
    def drop(p):                               # a new layer each time: a layer holds one forward's cache
        return [nn.Dropout(p)] if dropout else []

    return nn.Sequential(nn.Flatten(), *drop(0.2), nn.Linear(784, HIDDEN), nn.ReLU(), *drop(0.5),
                         nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), *drop(0.5), nn.Linear(HIDDEN, 10))


def measure(model, x, y):
    """(accuracy, mean cross-entropy) of the model in eval mode."""
    model.eval()
    with npcnn.no_grad():
        logits = model(x)
        loss = float(nn.CrossEntropyLoss()(logits, y))
    model.train()
    return float((npcnn.to_numpy(logits).argmax(1) == y).mean()), loss


def train(dropout=False, weight_decay=0.0, l1=0.0, l2_penalty=0.0, augment=False, every=5):
    """Train one configuration; returns (model, curve) with curve rows (epoch, train acc/loss, test acc/loss)."""
    model = make_net(dropout)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(1)             # the same batch order for every configuration
    affine = T.RandomAffine(12, translate=(0.1, 0.1), scale=(0.9, 1.1), rng=np.random.default_rng(2))
    curve = []
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 50):
            batch = order[start:start + 50]
            xb = affine(x_train[batch]) if augment else x_train[batch]
            loss_fn(model(xb), y_train[batch])
            model.backward(loss_fn.backward())
            if l1 or l2_penalty:
                add_weight_penalty(model.parameters(), l1=l1, l2=l2_penalty, skip_1d=True)
            optimizer.step()
            optimizer.zero_grad()
        if epoch % every == 0 or epoch == 1:
            curve.append((epoch, *measure(model, x_train, y_train), *measure(model, x_test, y_test)))
    return model, np.array(curve)


# %% [markdown]
# ## Overfitting as a curve
#
# First the unregularized network. The training loss falls towards zero: the network ends up
# classifying every training image correctly and ever more confidently. The test loss falls
# only at first; after its minimum it **rises** again, because the network grows more and more
# confident about test images it gets wrong. The test accuracy stops improving long before.

# %%
import matplotlib.pyplot as plt  # noqa: E402

baseline, curve = train()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
axes[0].plot(curve[:, 0], curve[:, 1], label="train")
axes[0].plot(curve[:, 0], curve[:, 3], label="test")
axes[0].set(xlabel="epoch", ylabel="accuracy", title=f"{data_name}, {N_TRAIN} training images")
axes[1].plot(curve[:, 0], curve[:, 2], label="train")
axes[1].plot(curve[:, 0], curve[:, 4], label="test")
axes[1].set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="the gap grows in the loss")
for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend()
savefig(fig, out, "overfitting_curve.png")
best_epoch = int(curve[curve[:, 4].argmin(), 0])
print(f"final: train accuracy {curve[-1, 1]:.3f}, test accuracy {curve[-1, 3]:.3f}; "
      f"test loss lowest at epoch {best_epoch} ({curve[:, 4].min():.3f}), final {curve[-1, 4]:.3f}")

# %% [markdown]
# ## Four remedies, the same budget
#
# Each configuration below changes one thing. The strengths were chosen by hand on this subset
# (a few values each); that is what a practitioner does too, on a validation set.

# %%
CONFIGS = {
    "none": {},
    "dropout 0.2 / 0.5": {"dropout": True},
    "L2 (weight_decay 1e-2)": {"weight_decay": 1e-2},
    "L1 (1e-4)": {"l1": 1e-4},
    "elastic net (L1 5e-5 + L2 5e-3)": {"l1": 5e-5, "l2_penalty": 5e-3},
    "augmentation": {"augment": True},
    "dropout + L2 + augmentation": {"dropout": True, "weight_decay": 1e-2, "augment": True},
}
results, models = {}, {"none": baseline}
for name, kwargs in CONFIGS.items():
    model, c = (baseline, curve) if name == "none" else train(**kwargs)
    models[name] = model
    first = [m for m in model.modules() if isinstance(m, nn.Linear)][0].weight.data
    results[name] = {"train_acc": c[-1, 1], "test_acc": c[-1, 3], "acc_gap": c[-1, 1] - c[-1, 3],
                     "train_loss": c[-1, 2], "test_loss": c[-1, 4], "loss_gap": c[-1, 4] - c[-1, 2],
                     "zero_weights": float((np.abs(first) < 1e-3).mean())}

lines = ["| regularizer | train acc | test acc | accuracy gap | train loss | test loss | loss gap "
         "| first-layer weights below 1e-3 |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for name, r in results.items():
    lines.append(f"| {name} | {r['train_acc']:.3f} | {r['test_acc']:.3f} | {r['acc_gap']:.3f} | "
                 f"{r['train_loss']:.3f} | {r['test_loss']:.3f} | {r['loss_gap']:.3f} | {r['zero_weights']:.1%} |")
table = "\n".join(lines)
print(table)
(out / "regularizers.md").write_text(f"{data_name}, {N_TRAIN} training images, {EPOCHS} epochs\n\n{table}\n")

# %% [markdown]
# ### Reading the table
#
# * **The weight penalties close the loss gap, hardly the accuracy gap.** L2 and L1 keep the
#   weights small, so the network cannot push its logits to extreme values: the test loss drops
#   a lot, but with a few hundred images the test accuracy barely moves. What a penalty buys on
#   such a small set is calibration more than correct answers.
# * **L1 makes the weights sparse.** L2 shrinks a weight in proportion to its size, so it never
#   quite reaches zero; L1 subtracts the same $\eta\lambda_1$ each step whatever the size, so the
#   weights that the data does not defend are driven to zero (and then jitter within about
#   $\eta\lambda_1/(1-\mu)$ of it). A large share of the first layer ends up numerically zero,
#   and the share keeps growing with more epochs: the pixels at the border of an MNIST digit are
#   almost always 0, so their weights get no gradient from the data at all, only the penalty's.
# * **Dropout** needs data and epochs to pay off: on 300 images and 60 epochs (quick mode) it
#   barely moves the test accuracy, on 1000 images and 150 epochs (full mode) it gains about 2.5
#   points (0.894 -> 0.920) and closes a quarter of the gap. It lowers the test loss in both.
# * **Augmentation closes the largest part of the accuracy gap**, because it is the only remedy
#   that adds information: a rotated or shifted 7 is still a 7, and the network has to learn that.
#   (Its training accuracy is measured on the un-augmented images.)
# * **All of them together** leave the smallest gap of all, but partly by lowering the training
#   accuracy: with this budget the network underfits. A small gap is not the goal; the best test
#   accuracy is. The strengths have to be tuned together.
#
# The lecture (deck 002) describes AlexNet's dropout as setting "a pixel of the feature map to
# zero with 50% probability". That is not where AlexNet used it: Krizhevsky et al. applied
# dropout with $p = 0.5$ to the units of the first two **fully connected** layers (4096 each),
# not to the pixels of convolutional feature maps (zeroing whole feature maps is
# `nn.Dropout2d`, a later idea).

# %% [markdown]
# ## Dropout as an ensemble of thinned networks
#
# A dropout mask switches off a random subset of units; what is left is a "thinned" network.
# With $784 + 256 + 256 = 1296$ droppable units there are $2^{1296}$ of them, all sharing one set
# of weights, and each training step trains one. At test time we would like the average
# prediction of all of them. npcnn's `Dropout` is *inverted* dropout: during training the kept
# units are scaled by $1/(1-p)$, so that the expected value of every unit is unchanged, and at
# test time the full network is used as it is. The full network is a cheap approximation of the
# ensemble's average (exact for a linear layer, approximate through the ReLUs). We check it by
# sampling thinned networks at test time (training mode, no gradients) and averaging their
# softmax outputs.

# %%
dropout_net = models["dropout 0.2 / 0.5"]
softmax = nn.Softmax(dim=1)
K = 30
with npcnn.no_grad():
    dropout_net.eval()
    full = npcnn.to_numpy(dropout_net(x_test)).argmax(1)
    dropout_net.train()                                    # dropout active: one thinned net per pass
    probs = [npcnn.to_numpy(softmax(dropout_net(x_test))) for _ in range(K)]
single_acc = float(np.mean([(p.argmax(1) == y_test).mean() for p in probs]))
ensemble = np.mean(probs, axis=0).argmax(1)
ensemble_acc, full_acc = float((ensemble == y_test).mean()), float((full == y_test).mean())
agreement = float((ensemble == full).mean())
print(f"one thinned net: {single_acc:.3f} on average; the mean of {K} thinned nets: {ensemble_acc:.3f}; "
      f"the full net (eval mode): {full_acc:.3f}; the full net and the ensemble agree on {agreement:.1%}")

# %% [markdown]
# A single thinned network is clearly worse than the full one; the average of 30 of them
# matches the full network's accuracy and makes the same prediction on almost every test image.
# That is the ensemble reading of dropout: training many weight-sharing networks and predicting
# with (an approximation of) their average.

# %% [markdown]
# ## The claims of this lesson

# %%
none, r = results["none"], results
claim(f"without regularization the net learns its {N_TRAIN} training images by heart (train accuracy "
      f"{none['train_acc']:.3f}) and generalizes worse (accuracy gap {none['acc_gap']:.3f} > 0.05)",
      none["train_acc"] >= 0.99 and none["acc_gap"] > 0.05)
claim(f"the unregularized test loss rises after its minimum (epoch {best_epoch}: {curve[:, 4].min():.3f} -> "
      f"final {curve[-1, 4]:.3f}) while the training loss falls to {curve[-1, 2]:.4f}",
      curve[-1, 4] > 1.1 * curve[:, 4].min() and curve[-1, 2] < 0.05)
for name in ("L2 (weight_decay 1e-2)", "L1 (1e-4)", "elastic net (L1 5e-5 + L2 5e-3)"):
    claim(f"{name} shrinks the loss gap ({r[name]['loss_gap']:.3f} < {none['loss_gap']:.3f})",
          r[name]["loss_gap"] < 0.85 * none["loss_gap"])
claim(f"L1 zeroes a large share of the first-layer weights ({r['L1 (1e-4)']['zero_weights']:.0%} below 1e-3, "
      f"against {none['zero_weights']:.0%} without it and {r['L2 (weight_decay 1e-2)']['zero_weights']:.0%} with L2)",
      r["L1 (1e-4)"]["zero_weights"] > max(0.3, 10 * none["zero_weights"], r["L2 (weight_decay 1e-2)"]["zero_weights"]))
claim(f"augmentation closes the accuracy gap most ({r['augmentation']['acc_gap']:.3f} against "
      f"{none['acc_gap']:.3f}; test accuracy {none['test_acc']:.3f} -> {r['augmentation']['test_acc']:.3f})",
      r["augmentation"]["acc_gap"] == min(v["acc_gap"] for k, v in r.items() if "+" not in k)
      and r["augmentation"]["test_acc"] > none["test_acc"] + 0.02)
both = r["dropout + L2 + augmentation"]
claim(f"dropout + L2 + augmentation leaves the smallest accuracy gap ({both['acc_gap']:.3f})",
      both["acc_gap"] == min(v["acc_gap"] for v in r.values()))
claim(f"the full dropout net approximates the average of {K} thinned nets (agreement {agreement:.1%} >= 95%, "
      f"accuracy {full_acc:.3f} vs {ensemble_acc:.3f}) and beats one thinned net ({single_acc:.3f})",
      agreement >= 0.95 and abs(full_acc - ensemble_acc) <= 0.02 and single_acc < full_acc)

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
