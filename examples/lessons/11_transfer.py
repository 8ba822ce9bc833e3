# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Lesson 11: Transfer learning, the whole decision table
#
# Training a CNN from scratch needs a lot of labelled data. **Transfer learning** starts instead
# from a network trained on another, larger task (the *source*) and reuses what it learned for
# the new one (the *target*). The lectures give two families of methods,
#
# * **feature extraction**: freeze the pretrained network, read the activations of one of its
#   layers as features and train only a new classifier on them (softmax, linear SVM, k-nearest
#   neighbours);
# * **fine-tuning**: replace the output layer and keep training, either in two phases (first the
#   new head with the body frozen, then all layers at a lower learning rate) or with the early
#   layers frozen and only the late ones trained;
#
# and a decision table by target size and similarity to the source (deck 000):
#
# | | similar target | different target |
# | --- | --- | --- |
# | **small** target | highest-level features + a classifier | lower-level features + a classifier |
# | **large** target | fine-tune | fine-tune (the pretrained weights as initialization) |
#
# This lesson **measures** the table instead of asserting it. The source is a small CNN trained on
# MNIST digits 0-4. The similar target is digits 5-9 (same kind of images, new classes); the
# different target is five Fashion-MNIST classes (T-shirt, trouser, pullover, dress, coat). Each
# target is learned from few labels (3 per class) and from many (200 per class in quick mode,
# 1000 in full mode) with every strategy, and the test accuracy decides which strategy wins in
# each cell. With 15 labels the result depends a lot on which 15 images are drawn, so every
# cell averages several draws (10 for the classifiers on fixed features, which are cheap, 3-4 for
# the strategies that train the network).

# %%
import copy
import os
import sys
from collections import OrderedDict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else "")
from _course import all_claims_hold, claim, savefig, setup  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

import npcnn  # noqa: E402
from npcnn import nn, optim, transfer  # noqa: E402
from npcnn.data import DataLoader, DatasetNotFoundError, fashion_mnist, mnist, shapes, synthetic_digits  # noqa: E402

quick, out = setup("11_transfer", "transfer learning, the whole decision table")
PER_CLASS = {"few": 3, "many": 200 if quick else 1000}
SOURCE_N, SOURCE_STEPS = (6000, 400) if quick else (30000, 1500)
STEPS = {"few": 60, "many": 120} if quick else {"few": 200, "many": 800}
# Label draws averaged per cell: many for the cheap fixed-feature classifiers, fewer for the trained nets.
FEATURE_DRAWS = {"few": 10, "many": 2} if quick else {"few": 10, "many": 3}
TRAIN_DRAWS = {"few": 3, "many": 1} if quick else {"few": 4, "many": 1}
N_TEST = 500 if quick else 5000

# %% [markdown]
# ## Source and targets
#
# Without the MNIST and Fashion-MNIST files (`NPCNN_DATA`) the lesson runs the same experiment
# on stand-ins: synthetic digits 0-4 as the source, synthetic 5-9 as the similar target and
# synthetic shapes as the different one.

# %%
def pick(images, labels, classes, n, seed):
    """n random samples (at most all there are) of the given classes, relabelled 0..len(classes)-1."""
    gen = np.random.default_rng(seed)
    candidates = np.flatnonzero(np.isin(labels, classes))
    idx = gen.choice(candidates, min(n, len(candidates)), replace=False)
    relabel = np.full(labels.max() + 1, -1)
    relabel[list(classes)] = np.arange(len(classes))
    return images[idx], relabel[labels[idx]]


def per_class(images, labels, k, seed):
    """k random samples of each class (labels already 0..4)."""
    gen = np.random.default_rng(seed)
    idx = np.concatenate([gen.choice(np.flatnonzero(labels == c), k, replace=False) for c in range(5)])
    return images[idx], labels[idx]


def load():
    try:
        digits = [mnist(train=t, normalize=True, download=False) for t in (True, False)]
        clothes = [fashion_mnist(train=t, normalize=True, download=False) for t in (True, False)]
    except DatasetNotFoundError:
        print("MNIST / Fashion-MNIST not found (set NPCNN_DATA): synthetic stand-ins instead")
        x, y = synthetic_digits(4 * SOURCE_N + 4 * N_TEST, seed=0)
        x = (x[:, None] / 255.0).astype(np.float32)
        half = 4 * SOURCE_N
        s_x, s_y = shapes(12000, size=28, classes=("circle", "square", "triangle", "cross", "ring"), seed=0,
                          noise=0.1)
        return ((x[:half], y[:half]), (x[half:], y[half:]), (s_x[:8000], s_y[:8000]), (s_x[8000:], s_y[8000:]),
                "synthetic", "shapes", False)
    return ((digits[0].images, digits[0].labels), (digits[1].images, digits[1].labels),
            (clothes[0].images, clothes[0].labels), (clothes[1].images, clothes[1].labels),
            "MNIST", "Fashion-MNIST", True)


digits_train, digits_test, other_train, other_test, digits_name, other_name, real_data = load()
source = pick(*digits_train, range(5), SOURCE_N, seed=0)
source_test = pick(*digits_test, range(5), N_TEST, seed=1)
TARGETS = {
    "similar": {"train": pick(*digits_train, range(5, 10), 6 * PER_CLASS["many"], seed=2),
                "test": pick(*digits_test, range(5, 10), N_TEST, seed=3), "name": f"{digits_name} 5-9"},
    "different": {"train": pick(*other_train, range(5), 6 * PER_CLASS["many"], seed=2),
                  "test": pick(*other_test, range(5), N_TEST, seed=3), "name": f"{other_name} classes 0-4"},
}

# %% [markdown]
# ## The pretrained network
#
# `c1: Conv(1, 8, 5) -> ReLU -> p1: MaxPool(2) -> c2: Conv(8, 16, 5) -> ReLU -> p2: MaxPool(2) ->
# Flatten -> f3: Linear(256, 64) -> r3: ReLU -> out: Linear(64, 5)`, trained with Adam on the
# source digits 0-4. Its layers give three levels of features: `p1` (low: 8 maps of 12 x 12 =
# 1152 numbers, edge and stroke detectors), `p2` (middle: 16 x 4 x 4 = 256) and `r3` (the top,
# 64 numbers: the "CNN codes" just below the classifier).

# %%
def make_net(seed=0):
    npcnn.manual_seed(seed)
    return nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 8, 5)), ("r1", nn.ReLU()), ("p1", nn.MaxPool2d(2)),
        ("c2", nn.Conv2d(8, 16, 5)), ("r2", nn.ReLU()), ("p2", nn.MaxPool2d(2)), ("flat", nn.Flatten()),
        ("f3", nn.Linear(256, 64)), ("r3", nn.ReLU()), ("out", nn.Linear(64, 5)),
    ]))


def train(model, data, steps, lr=2e-3, params=None, seed=1, batch=64):
    """Adam on random mini-batches of data = (images, labels); the trainable parameters by default."""
    params = transfer.trainable_parameters(model) if params is None else params
    optimizer = optim.Adam(params, lr=lr)
    loss_fn, gen = nn.CrossEntropyLoss(), np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        idx = gen.choice(len(data[0]), min(batch, len(data[0])), replace=False)
        loss_fn(model(data[0][idx]), data[1][idx])
        model.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()
    return model


def accuracy(model, data):
    model.eval()
    with npcnn.no_grad():
        scores = [npcnn.to_numpy(model(data[0][i:i + 500])) for i in range(0, len(data[0]), 500)]
    return float((np.concatenate(scores).argmax(1) == data[1]).mean())


pretrained = train(make_net(), source, SOURCE_STEPS)
source_accuracy = accuracy(pretrained, source_test)
print(f"pretrained on {SOURCE_N} {digits_name} digits 0-4: test accuracy {source_accuracy:.3f}")


# %% [markdown]
# ## The strategies
#
# * **features + classifier** at each of the three levels. `transfer.extract_features(model,
#   loader, layer=...)` runs the frozen network in eval mode and returns one feature vector per
#   image; on them we train a softmax classifier (a new `Linear` layer, Adam on standardized
#   features), and on the top features also `transfer.LinearSVM` (one-vs-rest hinge loss) and
#   `transfer.KNeighborsClassifier` (a vote of the 3 nearest training features);
# * **fine-tune, two phases**: `replace_head`, `freeze(up_to="r3")` and train the head; then
#   `unfreeze` and train all layers, the body at a lower learning rate (`param_groups`);
# * **fine-tune the late layers**: freeze `c1` and `c2`, train `f3` and a new head;
# * **from scratch**: the same architecture, freshly initialized, the same number of steps.

# %%
def softmax_on_features(train_feats, train_labels, test_feats, test_labels, steps=200):
    npcnn.manual_seed(0)                                   # the same initial head for every call
    mean, std = train_feats.mean(0), train_feats.std(0) + 1e-6
    head = nn.Linear(train_feats.shape[1], 5)
    optimizer = optim.Adam(head.parameters(), lr=0.05, weight_decay=1e-4)
    loss_fn, x = nn.CrossEntropyLoss(), ((train_feats - mean) / std).astype(np.float32)
    for _ in range(steps):
        loss_fn(head(x), train_labels)
        head.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()
    with npcnn.no_grad():
        scores = npcnn.to_numpy(head(((test_feats - mean) / std).astype(np.float32)))
    return float((scores.argmax(1) == test_labels).mean())


LEVELS = {"p1": "low (p1)", "p2": "middle (p2)", "r3": "top (r3)"}


TEST_FEATURES = {}                     # (target, layer) -> features of the target's test set, computed once


def feature_strategies(target, data):
    """Accuracies of the classifiers on fixed features of the three levels, for one labelled set."""
    result = {}
    for layer, level in LEVELS.items():
        feats, labels = transfer.extract_features(pretrained, DataLoader(data, batch_size=500), layer=layer)
        if (target, layer) not in TEST_FEATURES:
            TEST_FEATURES[target, layer] = transfer.extract_features(
                pretrained, DataLoader(TARGETS[target]["test"], batch_size=500), layer=layer)
        test_feats, test_labels = TEST_FEATURES[target, layer]
        result[f"{level} features + softmax"] = softmax_on_features(feats, labels, test_feats, test_labels)
        if layer == "r3":
            svm = transfer.LinearSVM(lam=1e-3, epochs=200).fit(feats, labels, num_classes=5)
            result[f"{level} features + linear SVM"] = svm.score(test_feats, test_labels)
            knn = transfer.KNeighborsClassifier(k=3).fit(feats, labels)
            result[f"{level} features + 3-NN"] = knn.score(test_feats, test_labels)
    return result


def trained_strategies(data, test, steps):
    """Accuracies of the strategies that train layers: two-phase and late fine-tuning, scratch."""
    result = {}
    model = copy.deepcopy(pretrained)
    npcnn.manual_seed(3)
    transfer.replace_head(model, 5)
    transfer.freeze(model, up_to="r3")                                   # phase 1: the new head only
    train(model, data, steps // 2, lr=5e-3)
    transfer.unfreeze(model)                                             # phase 2: everything, gently
    groups = transfer.param_groups(model, {"out": 1e-3}, default_lr=5e-4)
    train(model, data, steps - steps // 2, lr=5e-4, params=groups, seed=2)
    result["fine-tune, two phases"] = accuracy(model, test)

    model = copy.deepcopy(pretrained)
    npcnn.manual_seed(3)
    transfer.replace_head(model, 5)
    transfer.freeze(model, up_to="p2")                                   # c1 and c2 stay as they are
    result["fine-tune late layers (f3, out)"] = accuracy(train(model, data, steps), test)

    result["from scratch"] = accuracy(train(make_net(seed=5), data, steps), test)
    return result


def mean_over(runs):
    return {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}


table = {}
for target in TARGETS:
    for size in PER_CLASS:
        draws = [per_class(*TARGETS[target]["train"], PER_CLASS[size], seed=4 + d) for d in range(FEATURE_DRAWS[size])]
        table[target, size] = mean_over([feature_strategies(target, data) for data in draws])
        table[target, size].update(mean_over([trained_strategies(data, TARGETS[target]["test"], STEPS[size])
                                              for data in draws[:TRAIN_DRAWS[size]]]))
        best = max(table[target, size], key=table[target, size].get)
        print(f"{TARGETS[target]['name']}, {5 * PER_CLASS[size]} labels: best {best} "
              f"({table[target, size][best]:.3f})", flush=True)

# %% [markdown]
# ## The measured table

# %%
cells = [(t, s) for t in TARGETS for s in PER_CLASS]
header = "| strategy | " + " | ".join(f"{t}, {s} ({5 * PER_CLASS[s]} labels)" for t, s in cells) + " |"
lines = [header, "| --- |" + " --- |" * len(cells)]
for strategy in table[cells[0]]:
    row = []
    for cell in cells:
        value = table[cell][strategy]
        mark = "**" if value == max(table[cell].values()) else ""
        row.append(f"{mark}{value:.3f}{mark}")
    lines.append(f"| {strategy} | " + " | ".join(row) + " |")
markdown = "\n".join(lines)
print(markdown)
(out / "transfer_table.md").write_text(
    f"Source: {SOURCE_N} {digits_name} digits 0-4 ({SOURCE_STEPS} Adam steps, test accuracy "
    f"{source_accuracy:.3f}). Similar target: {TARGETS['similar']['name']}; different target: "
    f"{TARGETS['different']['name']}. Test accuracy on {N_TEST} target test images; best per column in bold.\n\n"
    + markdown + "\n")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, target in zip(axes, TARGETS):
    for size in PER_CLASS:
        accs = [table[target, size][f"{level} features + softmax"] for level in LEVELS.values()]
        ax.plot(list(LEVELS.values()), accs, marker="o", label=f"{5 * PER_CLASS[size]} labels")
        ax.axhline(table[target, size]["from scratch"], linestyle=":", color=ax.lines[-1].get_color())
    ax.set(title=f"{target}: {TARGETS[target]['name']}", xlabel="features from layer", ylabel="test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
savefig(fig, out, "layer_transferability.png")

# %% [markdown]
# ## Reading the table
#
# **Layer transferability.** The lower a layer, the more general its features (strokes and edges
# appear in digits and clothes alike); the higher, the more specific to the source task. On the
# different target the top-level features `r3` are worse than the lower ones (the better of `p1`
# and `p2`), with few labels and with many: the top layer has specialized in telling the digits
# 0-4 apart, which helps little with coats and trousers. On the similar target the top layer
# fares better against the lowest one. That is the lectures' "lower layer features are more
# general and transferable, higher layer features more specific" (Yosinski et al. 2014),
# measured; in the figure the dotted lines mark training from scratch.
#
# **The small-target row.** For the different target the table's advice, *lower-level features
# + a classifier*, holds among the feature methods: lower levels beat the top one (though
# fine-tuning the late layers, which keeps the low levels and retrains the rest, does better
# still). For the similar target our measurement disagrees with the table: the top-level features with a new
# classifier are no better than training from scratch, and the winner is fine-tuning the late
# layers (the convolutional layers frozen, `f3` and the head trained). Two reasons. "Similar"
# here means the same kind of images but **new classes**, and the top layer of a network that
# only ever separated 0-4 has discarded much of what tells a 5 from an 8. And our source is tiny:
# a few thousand digits, against the 1.2 million images and 1000 classes of the ImageNet models
# the lectures have in mind, whose top-level features describe thousands of objects and
# transfer far better. The table is a rule of thumb for that setting; measure before trusting it.
#
# **The large-target row.** With many labels the network can afford to adapt: training layers
# (fine-tuning the late ones, or from scratch) beats the fixed top features on both targets (on
# the different one only narrowly in quick mode), and training from scratch is already about as
# good as anything: the target alone is enough. The advantage of transfer shrinks as the target
# grows. Two-phase fine-tuning (head first, then everything at a lower rate) comes close to the
# best with the full budget of 800 steps, not with quick mode's 120.
#
# **The classifiers on fixed features.** Softmax and the linear SVM are close (both linear, with
# different losses); k-nearest neighbours is the weakest once there are many labels: it learns
# nothing, and the Euclidean distance between codes weighs every feature the same, useful or not.
#
# A note on the lecture's figures: deck 000 names "VGG16, resnet19" as typical pretrained
# architectures; there is no ResNet-19 (the family is ResNet-18, 34, 50, 101, 152).

# %% [markdown]
# ## The claims of this lesson

# %%
top, low = "top (r3) features + softmax", "low (p1) features + softmax"
claim(f"the source network learned its task ({source_accuracy:.3f} > 0.9)", source_accuracy > 0.9)
claim("every strategy does better with many labels than with few, on both targets",
      all(table[t, "many"][k] > table[t, "few"][k] for t in TARGETS for k in table[t, "few"]))
for size in PER_CLASS:
    sim = table["similar", size][top] - table["similar", size][low]
    dif = table["different", size][top] - table["different", size][low]
    claim(f"layer transferability ({size} labels): the top layer against the lowest gains more on the similar "
          f"target ({sim:+.3f}) than on the different one ({dif:+.3f})", sim > dif)
mid = "middle (p2) features + softmax"
lower = {size: max(table["different", size][low], table["different", size][mid]) for size in PER_CLASS}
# On the synthetic stand-ins every strategy is near chance on 15 shapes, so only "many" is checked there.
checked = list(PER_CLASS) if real_data else ["many"]
claim("different target: lower-level features (the better of p1 and p2) beat the top-level ones with "
      + " and ".join(f"{size} labels ({lower[size]:.3f} > {table['different', size][top]:.3f})" for size in checked),
      all(lower[size] > table["different", size][top] + 0.02 for size in checked))
transfer_methods = [k for k in table[cells[0]] if k != "from scratch"]
best_few = max(table["similar", "few"][k] for k in transfer_methods)
best_many = max(table["similar", "many"][k] for k in transfer_methods)
scratch_few, scratch_many = table["similar", "few"]["from scratch"], table["similar", "many"]["from scratch"]
claim(f"similar target, few labels: the best transfer strategy beats training from scratch "
      f"({best_few:.3f} > {scratch_few:.3f} + 0.02)", best_few > scratch_few + 0.02)
claim(f"similar target: the advantage of transfer over scratch shrinks as the labels grow "
      f"({best_few - scratch_few:+.3f} with few, {best_many - scratch_many:+.3f} with many)",
      best_many - scratch_many < best_few - scratch_few)
trained = max(table["similar", "many"]["fine-tune late layers (f3, out)"], table["similar", "many"]["from scratch"])
claim(f"similar target, many labels: training layers (fine-tuning the late ones or from scratch, {trained:.3f}) "
      f"beats the fixed top features ({table['similar', 'many'][top]:.3f})", trained > table["similar", "many"][top])
knn_many = table["similar", "many"]["top (r3) features + 3-NN"]
svm_many = table["similar", "many"]["top (r3) features + linear SVM"]
claim(f"similar target, many labels: the trained linear classifiers beat 3-NN on the top features "
      f"(softmax {table['similar', 'many'][top]:.3f}, SVM {svm_many:.3f}, 3-NN {knn_many:.3f})",
      knn_many < min(table["similar", "many"][top], svm_many))

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
