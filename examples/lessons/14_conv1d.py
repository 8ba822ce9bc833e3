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
# # Lesson 14: one-dimensional convolutions — heartbeats and word order
#
# A convolution needs only a grid with neighbours. Images give a 2-D grid; a signal sampled in
# time or a sentence read word by word gives a 1-D one. The filter is then a short window that
# slides along the sequence, and everything the 2-D lessons said carries over: local
# connectivity, weights shared along the sequence, output length from the same formula.
#
# The lectures show two uses, and this lesson builds both:
#
# 1. **ECG classification.** Hannun, Rajpurkar et al. (Stanford, 2017/2019) trained a 34-layer
#    1-D CNN with residual blocks that maps an electrocardiogram to rhythm classes with
#    cardiologist-level accuracy. We build that network block for block and train it on the
#    ECG-like synthetic signals of `npcnn.data.signals`.
# 2. **Text.** Words become vectors through an embedding table (`nn.Embedding`, added for this
#    lesson), and a 1-D convolution slides over the sequence of vectors. We make a task that a
#    bag-of-words model provably cannot solve and watch the convolution solve it.
#
# Run it with `--quick` for the small version that CI runs.

# %%
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd())

import numpy as np
from _course import all_claims_hold, claim, savefig, setup

import npcnn
from npcnn import nn
from npcnn.data import SIGNAL_CLASSES, DataLoader, marker_order, signals
from npcnn.train import Trainer, evaluate

quick, out = setup("14_conv1d", "1-D CNNs: a residual ECG network and a convolution over word embeddings")
npcnn.manual_seed(0)
print("quick mode" if quick else "full mode", "-> figures in", out)

# %% [markdown]
# ## 1. The 1-D convolution
#
# For an input $x$ of shape $(C_\text{in}, L)$ and a filter bank $w$ of shape
# $(C_\text{out}, C_\text{in}, k)$, with stride $s$ and zero padding $p$,
#
# $$ y[o, t] = b[o] + \sum_{c=1}^{C_\text{in}} \sum_{i=0}^{k-1} w[o, c, i]\, x_\text{pad}[c, s t + i],
# \qquad L_\text{out} = \left\lfloor \frac{L + 2p - k}{s} \right\rfloor + 1 .$$
#
# It is the 2-D convolution of an image one pixel tall with a $1 \times k$ kernel — which is
# exactly how `nn.Conv1d` is implemented. The parameter count,
# $C_\text{out} C_\text{in} k + C_\text{out}$, does not depend on $L$: the same filter reads every
# position (weight sharing), so a network trained on 10-second recordings runs unchanged on
# 30-second ones.

# %%
conv1 = nn.Conv1d(3, 4, kernel_size=5, stride=2, padding=2)
conv2 = nn.Conv2d(3, 4, kernel_size=(1, 5), stride=(1, 2), padding=(0, 2))
conv2.weight.data[...] = conv1.weight.data[:, :, None, :]
conv2.bias.data[...] = conv1.bias.data
x = npcnn.backend.rng().standard_normal((2, 3, 101)).astype(np.float32)
y1, y2 = conv1(x), conv2(x[:, :, None, :])[:, :, 0, :]
length_formula = (101 + 2 * 2 - 5) // 2 + 1
print(f"Conv1d output {y1.shape}; formula floor((101 + 4 - 5) / 2) + 1 = {length_formula}; "
      f"max |Conv1d - Conv2d(1x5)| = {float(np.abs(y1 - y2).max()):.1e}; parameters {conv1.num_parameters()}")

# %% [markdown]
# ## 2. ECG-like signals
#
# `npcnn.data.signals` draws five kinds of waveform with random frequency (2-6 periods per
# window), phase, amplitude, offset and Gaussian noise: sine, square, sawtooth, chirp, and
# "beats", an ECG-like trace with a sharp R spike and a broad T bump in every period. We raise
# the noise above the example's default so that the classes overlap more.

# %%
length = 128 if quick else 256
noise = 0.3
n_train, n_test = (1000, 500) if quick else (4000, 1000)
train = signals(n_train, length=length, noise=noise, seed=0)
test = signals(n_test, length=length, noise=noise, seed=1)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 5, figsize=(15, 2.2))
for k, ax in enumerate(axes):
    i = int(np.flatnonzero(train[1] == k)[0])
    ax.plot(train[0][i, 0], lw=0.8)
    ax.set_title(SIGNAL_CLASSES[k])
    ax.set_xticks([])
    ax.set_yticks([])
savefig(fig, out, "signals.png")

# %% [markdown]
# ## 3. The lecture's 34-layer residual network
#
# The ECG network (Hannun et al., *Nature Medicine* 2019; Rajpurkar et al., arXiv:1707.01836) is
#
# * one convolution, then **16 residual blocks of two convolutions each**, then the classifier:
#   $1 + 16 \cdot 2 + 1 = 34$ layers with weights;
# * **pre-activation** blocks (He et al. 2016): BatchNorm $\to$ ReLU $\to$ Dropout $\to$ Conv
#   $\to$ BatchNorm $\to$ ReLU $\to$ Dropout $\to$ Conv, added to the shortcut. Normalization and
#   non-linearity come *before* each convolution, so the shortcut carries the block's input
#   untouched; the first block skips its leading BatchNorm-ReLU because the stem just applied
#   them;
# * filters of length 16, and $32 \cdot 2^k$ of them, $k$ growing by one every 4th block
#   (32, 64, 128, 256);
# * **every other block subsamples by 2** (stride 2 in its first convolution, max pooling of
#   width 2 on its shortcut), eight times in all, so one output covers $2^8 = 256$ samples.
#
# Two changes here, said plainly. We use an odd filter length (15 instead of 16) so that "same"
# padding is symmetric, and where the number of channels grows the shortcut gets a $1\times1$
# convolution (ResNet's projection shortcut; the paper pads with zero channels). And since our
# signals carry one label each, the classifier averages the last feature map over time before
# one linear layer, where the paper classifies every 256-sample step.
#
# $$ \text{block}(x) = F(x) + \text{shortcut}(x), \qquad
#    \frac{\partial L}{\partial x} = \frac{\partial L}{\partial H}\Big(\frac{\partial F}{\partial x} + 1\Big)$$
#
# (for an identity shortcut), which is why 34 layers still train: the "+1" carries the gradient
# to the first layers however small $\partial F / \partial x$ gets.


# %%
def ecg_block(c_in, c_out, kernel, stride, dropout, first):
    """One pre-activation residual block: [BN-ReLU-Dropout]-Conv-BN-ReLU-Dropout-Conv + shortcut."""
    pad = kernel // 2
    body = [] if first else [nn.BatchNorm1d(c_in), nn.ReLU(), nn.Dropout(dropout)]
    body += [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False),
             nn.BatchNorm1d(c_out), nn.ReLU(), nn.Dropout(dropout),
             nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False)]
    shortcut = []
    if stride > 1:
        shortcut.append(nn.MaxPool1d(stride))
    if c_in != c_out:
        shortcut.append(nn.Conv1d(c_in, c_out, 1, bias=False))
    return nn.Residual(nn.Sequential(*body), nn.Sequential(*shortcut) if shortcut else None)


def ecg_resnet(length, num_classes=5, blocks=16, width=32, kernel=15, grow_every=4, dropout=0.2):
    """Stem conv -> ``blocks`` pre-activation residual blocks (every other one subsamples by 2,
    the width doubles every ``grow_every`` blocks) -> BN-ReLU -> average over time -> Linear."""
    layers = [nn.Conv1d(1, width, kernel, padding=kernel // 2, bias=False), nn.BatchNorm1d(width), nn.ReLU()]
    c, remaining = width, length
    for i in range(blocks):
        c_out = width * 2 ** (i // grow_every)
        stride = 2 if i % 2 == 1 else 1
        layers.append(ecg_block(c, c_out, kernel, stride, dropout, first=(i == 0)))
        c, remaining = c_out, remaining // stride
    layers += [nn.BatchNorm1d(c), nn.ReLU(), nn.AvgPool1d(remaining), nn.Flatten(1), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def main_path_layers(model):
    """Layers with weights outside the shortcuts: convolutions of the stem and bodies, the Linear."""
    shortcut_convs = {id(m) for block in model if isinstance(block, nn.Residual) and block.shortcut is not None
                      for m in block.shortcut.modules()}
    return sum(isinstance(m, (nn.Conv1d, nn.Linear)) and id(m) not in shortcut_convs for m in model.modules())


full_size = ecg_resnet(length=2048)
full_layers = main_path_layers(full_size)
full_params = full_size.num_parameters()
probe = ecg_resnet(length=2048, width=4)  # same depth and strides, thin: a cheap shape check
probe.eval()
with npcnn.no_grad():
    before_pool = probe[:-3](np.zeros((1, 1, 2048), dtype=np.float32))
print(f"the lecture's network: {full_layers} layers with weights on the main path, {full_params:,} parameters; "
      f"2048 samples -> {before_pool.shape[-1]} time steps (one per {2048 // before_pool.shape[-1]} samples)")

# %% [markdown]
# The full-size network has about 10 million parameters — too many for a two-core laptop and
# a synthetic task. We train the same architecture, thinner and (in quick mode) shallower:
# 16 blocks of width 8 in full mode (the full 34 layers, filters of 15), 6 blocks (14 layers,
# filters of 9) in quick mode.

# %%
blocks, width, epochs = (6, 8, 10) if quick else (16, 8, 15)
model = ecg_resnet(length, blocks=blocks, width=width, kernel=9 if quick else 15)
print(f"training {main_path_layers(model)} weighted layers, {model.num_parameters():,} parameters, "
      f"{epochs} epochs on {n_train} signals of {length} samples")
optimizer = npcnn.optim.Adam(model.parameters(), lr=3e-3)
trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, verbose=0)
trainer.fit(DataLoader(train, batch_size=32, shuffle=True, seed=0), epochs)
ecg_accuracy = evaluate(model, DataLoader(test, batch_size=500))["accuracy"]
print(f"test accuracy {100 * ecg_accuracy:.1f}% on {n_test} signals (chance 20%)")

# %% [markdown]
# ## 4. Text: an embedding table and a convolution over word order
#
# A sentence is a sequence of token ids $t_1, \dots, t_L$. `nn.Embedding(V, D)` holds a table
# $W$ of shape $(V, D)$ and looks each id up: $h_p = W[t_p]$, a sequence of $L$ vectors of
# length $D$ — a "signal" with $D$ channels, ready for `Conv1d` once the axes are put in
# $(N, D, L)$ order.
#
# Its backward pass is a **scatter-add**: position $p$ read row $t_p$, so that row receives the
# gradient of position $p$, and a word used three times collects three gradients,
#
# $$ \frac{\partial L}{\partial W[k]} = \sum_{p\,:\,t_p = k} \frac{\partial L}{\partial h_p} .$$
#
# The padding token (`padding_idx`) gets no gradient, so it stays the zero vector.

# %%
table = nn.Embedding(5, 2, padding_idx=0)
ids = np.array([[3, 1, 3, 3, 0]])
table(ids)
table.backward(np.ones((1, 5, 2), dtype=np.float32))
print("gradient rows for ids [3, 1, 3, 3, 0] with dout = 1:\n", table.weight.grad)
scatter_ok = table.weight.grad[3].tolist() == [3.0, 3.0] and not table.weight.grad[0].any()

# %% [markdown]
# A lookup is a matrix product in disguise: with $E$ the one-hot rows of the ids ($E[p, t_p] = 1$),
# $h = E W$, a Linear layer without bias on one-hot vectors, and the scatter-add is its weight
# gradient $E^\top \delta$. The lookup just skips the multiplications by zero — $V$ times fewer
# operations, which matters for a vocabulary of 50,000 words.

# %%
one_hot = np.eye(5, dtype=np.float32)[ids[0]]                  # (5 positions, 5 words)
dout_rows = npcnn.backend.rng().standard_normal((5, 2)).astype(np.float32)
table.zero_grad()
lookup = table(ids)[0]
table.backward(dout_rows[None])
as_matmul = float(np.abs(lookup - one_hot @ table.weight.data).max())
grad_rows = one_hot.T @ dout_rows
grad_rows[0] = 0.0  # the padding row's gradient is withheld
as_matmul_grad = float(np.abs(table.weight.grad - grad_rows).max())
print(f"|lookup - one_hot @ W| = {as_matmul:.1e};  |dW - one_hot^T dout| (padding row aside) = {as_matmul_grad:.1e}")

# %% [markdown]
# **The task.** `npcnn.data.marker_order` writes sequences of random filler words that contain
# two marker words A and B, at most two words apart. The label is their order: A before B, or
# B before A — the way "not good" and "good, not bad" contain the same words and mean opposite
# things. The sequences come in pairs with identical words in the two orders, so **every bag of
# words occurs once with each label**: any model of word counts is right on exactly one sample of
# each pair, 50%.
#
# Two models share the embedding front end:
#
# * **bag of words**: embed, average over positions, linear layer. The average forgets order;
# * **CNN**: embed, `Conv1d` with a window of 5 words, ReLU, max over positions (the strongest
#   match anywhere in the sentence), linear layer.


# %%
class TokensToChannels(nn.Module):
    """(N, L, D) -> (N, D, L): embeddings as channels for Conv1d;  dx = dout transposed back."""

    def forward(self, h):
        return h.transpose(0, 2, 1)

    def backward(self, dout):
        return dout.transpose(0, 2, 1)


seq_len, vocab, dim = 24, 50, 16
n_text = 1000 if quick else 4000
text_train = marker_order(n_text, length=seq_len, vocab_size=vocab, min_length=12, seed=0)
text_test = marker_order(1000, length=seq_len, vocab_size=vocab, min_length=12, seed=1)


def bag_of_words():
    return nn.Sequential(nn.Embedding(vocab, dim, padding_idx=0), TokensToChannels(), nn.AvgPool1d(seq_len),
                         nn.Flatten(1), nn.Linear(dim, 2))


def text_cnn(channels=32, window=5):
    return nn.Sequential(nn.Embedding(vocab, dim, padding_idx=0), TokensToChannels(),
                         nn.Conv1d(dim, channels, window, padding=window // 2), nn.ReLU(),
                         nn.MaxPool1d(seq_len), nn.Flatten(1), nn.Linear(channels, 2))


text_accuracy = {}
for name, make in (("bag of words", bag_of_words), ("1-D CNN", text_cnn)):
    npcnn.manual_seed(0)
    net = make()
    Trainer(net, nn.CrossEntropyLoss(), npcnn.optim.Adam(net.parameters(), lr=1e-2), verbose=0).fit(
        DataLoader(text_train, batch_size=50, shuffle=True, seed=0), 6 if quick else 10)
    text_accuracy[name] = evaluate(net, DataLoader(text_test, batch_size=500))["accuracy"]
    train_acc = evaluate(net, DataLoader(text_train, batch_size=500))["accuracy"]
    print(f"{name:>13}: train {100 * train_acc:.1f}%, test {100 * text_accuracy[name]:.1f}%")
    if name == "1-D CNN":
        cnn = net

# %% [markdown]
# The bag of words sits at exactly 50% on the test pairs: with the average over positions the
# two sentences of a pair give the same vector and so the same prediction. The convolution's
# window sees "A _ B" and "B _ A" as different patterns; the max over positions finds the
# pattern wherever it occurs. Which filters learned the order? Feed the two bigrams "A B" and
# "B A" alone (padded) and compare each filter's response.

# %%
probe_ids = np.zeros((2, seq_len), dtype=np.int64)
probe_ids[0, :2] = [1, 2]  # A B
probe_ids[1, :2] = [2, 1]  # B A
cnn.eval()
with npcnn.no_grad():
    responses = cnn[:5](probe_ids)[:, :, 0]  # (2, channels): max response of each filter
difference = responses[0] - responses[1]
order = np.argsort(difference)
print("filters preferring 'B A':", order[:3].tolist(), "| preferring 'A B':", order[-3:].tolist())
print(f"largest response gap between the two orders: {float(np.abs(difference).max()):.2f}")
fig, ax = plt.subplots(figsize=(8, 2.5))
ax.bar(np.arange(len(difference)), difference)
ax.set_xlabel("filter")
ax.set_ylabel("response(A B) - response(B A)")
savefig(fig, out, "text_filters.png")

# %% [markdown]
# ## What this lesson showed, checked

# %%
claim("Conv1d is Conv2d with a 1 x k kernel on a one-pixel-tall image, output length from the formula",
      float(np.abs(y1 - y2).max()) < 1e-5 and y1.shape[-1] == length_formula)
claim(f"the lecture's ECG network has 34 weighted layers on its main path (measured {full_layers})",
      full_layers == 34)
claim("its 8 subsamplings give one output per 2^8 = 256 samples", 2048 // before_pool.shape[-1] == 256)
claim(f"the residual 1-D CNN classifies the 5 noisy waveforms (test {100 * ecg_accuracy:.1f}% > "
      f"{85 if quick else 95}%)", ecg_accuracy > (0.85 if quick else 0.95))
claim("Embedding's backward scatter-adds: a word used 3 times gets 3 gradients, padding none", scatter_ok)
claim("a lookup is one_hot @ W and its gradient one_hot^T dout", as_matmul < 1e-6 and as_matmul_grad < 1e-6)
claim(f"a bag of words scores exactly 50% on the paired test set (measured {100 * text_accuracy['bag of words']:.1f}%)",
      abs(text_accuracy["bag of words"] - 0.5) < 1e-9)
claim(f"a convolution over word order solves it (test {100 * text_accuracy['1-D CNN']:.1f}% > 95%)",
      text_accuracy["1-D CNN"] > 0.95)

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
