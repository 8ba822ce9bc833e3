# %% [markdown]
# # Lesson 4 — The architectures, counted
#
# From LeNet-5 (1998) to MobileNetV2 (2018), every ImageNet milestone is built from the same few
# layers. Here we build each one with `npcnn.models` and let `npcnn.models.profile` count its
# parameters and multiply-accumulates (MACs) for one image, and we check the figures the lectures
# quote: LeNet-5's layer table, AlexNet as published against torchvision's, GoogLeNet's 1x1
# bottleneck, global average pooling against a fully connected layer, and the Keras model-zoo
# table, which we reproduce to the last parameter.
#
# Run: `python examples/lessons/04_architectures.py [--quick]` (quick: the smaller models only).

# %%
from npcnn import models, nn
from _course import all_claims_hold, claim, savefig, setup

quick, out = setup("04_architectures", "The architectures, counted")

# %% [markdown]
# ## 1. LeNet-5, layer by layer
#
# A convolution with $C_{in}$ inputs, $K$ filters of $F \times F$ has $F \cdot F \cdot C_{in} \cdot K$
# weights and $K$ biases; a dense layer $n_{in} \cdot n_{out} + n_{out}$.
#
# | layer | output | parameters |
# | --- | --- | --- |
# | C1: 6 filters 5x5 on 1 channel | 28x28x6 | $25 \cdot 6 + 6 = 156$ |
# | S2: 2x2 pooling | 14x14x6 | 0 |
# | C3: 16 filters 5x5 on 6 channels | 10x10x16 | $150 \cdot 16 + 16 = 2{,}416$ |
# | S4: 2x2 pooling | 5x5x16 | 0 |
# | C5 / FC: 400 -> 120 | 120 | $400 \cdot 120 + 120 = 48{,}120$ |
# | F6: 120 -> 84 | 84 | $120 \cdot 84 + 84 = 10{,}164$ |
# | output: 84 -> 10 | 10 | $84 \cdot 10 + 10 = 850$ |
#
# 61,706 in all. **The lecture's table prints 416, 48,001, 10,081 and 841 for the last four
# layers**: it forgets that each of C3's filters spans all 6 input channels, and it adds a
# single bias per dense layer instead of one per output. (npcnn's `lenet5` connects C3 to all of
# S2's maps; the paper's sparse connection table would give 1,516.)

# %%
lenet = models.profile(models.lenet5(), (1, 32, 32))
lenet_counts = [(row.name, row.params) for row in lenet.rows if row.params]
print(lenet_counts, "total", lenet.params)

# %% [markdown]
# ## 2. The table
#
# Parameters are the learned weights and biases (torchvision's count); MACs are for one image at
# the model's native input size. Quick mode profiles the smaller models only.

# %%
NAMES = ["lenet5", "alexnet", "alexnet_original", "zfnet", "vgg16", "vgg19", "googlenet", "resnet18",
         "resnet34", "resnet50", "resnet101", "resnet152", "densenet121", "densenet169", "densenet201",
         "se_resnet50", "mobilenet_v2"]
QUICK = ["lenet5", "alexnet_original", "googlenet", "resnet18", "resnet50", "densenet121", "se_resnet50",
         "mobilenet_v2"]
KERAS = {"vgg16": 138_357_544, "vgg19": 143_667_240, "resnet50": 25_636_712, "resnet101": 44_707_176,
         "resnet152": 60_419_944, "densenet121": 8_062_504, "densenet169": 14_307_880,
         "densenet201": 20_242_984, "mobilenet_v2": 3_538_984}


def build(name):
    if name == "alexnet_original":
        return models.alexnet_original(), (3, 227, 227)
    return models.get_model(name), models.input_shape(name)


rows = {}
keras_rows = {}
for name in QUICK if quick else NAMES:
    model, shape = build(name)
    prof = models.profile(model, shape)
    # Keras counts BatchNorm's moving mean and variance as (non-trainable) parameters, and its
    # ResNet v1 convolutions keep their biases; torchvision counts neither.
    bn_stats = sum(2 * m.num_features for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    conv_biases = sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d) and m.bias is None)
    keras_style = prof.params + bn_stats + (conv_biases if name.startswith("resnet") else 0)
    rows[name] = (shape, prof.params, prof.macs, bn_stats, keras_style)
    if name in KERAS:
        keras_rows[name] = (prof.params, bn_stats, keras_style, KERAS[name])
    del model

lines = ["| model | input | parameters | MACs |", "| --- | --- | ---: | ---: |"]
for name, (shape, params, macs, _, _) in rows.items():
    lines.append(f"| {name} | {'x'.join(map(str, shape))} | {params:,} | {macs:,} |")
table = "\n".join(lines)
print(table)
(out / "architectures.md").write_text(table + "\n")

# %% [markdown]
# Reading the table:
#
# * **AlexNet as published** (`alexnet_original`: 96 first-layer filters, local response
#   normalization, 227x227 input, and the two GPUs as two-group convolutions in conv2, conv4 and
#   conv5) has 60,965,224 parameters and 724.4M MACs. torchvision's `alexnet` is the later
#   single-tower variant (64, 192, 384, 256, 256 filters, no LRN): 61,100,840. Both are the
#   lecture's "~60 million", a thousand times LeNet-5's ~60K, and 58.6M of them sit in the three
#   fully connected layers.
# * **VGG16** has 138M parameters for 15.5G MACs: 3x3 convolutions throughout, and 102.8M
#   parameters in its first fully connected layer alone.
# * **GoogLeNet** does better than VGG with 6.6M parameters: 1x1 bottlenecks and global average
#   pooling (below).
# * **ResNet-34** and a plain 34-layer net have the same layers; identity shortcuts add no
#   parameters (npcnn's CIFAR `resnet20` and `plain20` both have 269,722).
# * **MobileNetV2** matches VGG16's top-1 accuracy in the Keras table (0.713) with 3.5M
#   parameters and 0.3G MACs (depthwise separable convolutions, inverted residuals).
#
# ## 3. GoogLeNet's bottleneck
#
# Inception 4a has a 5x5 branch with 48 filters on a 14x14x480 input. Directly, that costs
# $14 \cdot 14 \cdot 480 \cdot 5 \cdot 5 \cdot 48 = 112{,}896{,}000$ multiply-adds. With a 1x1
# reduction to 16 channels first: $14 \cdot 14 \cdot 480 \cdot 16 = 1{,}505{,}280$ plus
# $14 \cdot 14 \cdot 16 \cdot 5 \cdot 5 \cdot 48 = 3{,}763{,}200$, in all **5,268,480**, 21 times less.
# **The lecture's slide writes $14 \times 15 \times 16 \times 5 \times 5 \times 48 = 4{,}032{,}000$ and a
# total of 5,537,280: the 15 is a typo for 14.** We read both branches off npcnn's GoogLeNet
# (built with the paper's 5x5 kernel, `kernel5=5`; torchvision's weights use 3x3 there).

# %%
google = models.profile(models.googlenet(kernel5=5), (3, 224, 224))
reduce_macs = google["inception4a.branch3.0.conv"].macs
conv5_macs = google["inception4a.branch3.1.conv"].macs
direct_macs = models.profile(nn.Conv2d(480, 48, 5, padding=2), (480, 14, 14)).macs
print(f"5x5 conv on 14x14x480 directly: {direct_macs:,} MACs; 1x1 -> 16 then 5x5: "
      f"{reduce_macs:,} + {conv5_macs:,} = {reduce_macs + conv5_macs:,}")

# %% [markdown]
# ## 4. Global average pooling against a fully connected layer
#
# GoogLeNet's last feature map is 7x7x1024. A fully connected layer from it to 1024 units needs
# $7 \cdot 7 \cdot 1024 \cdot 1024 = 51{,}380{,}224$ weights, **51.4M** (the slide's "51.3M" cuts
# the decimals off instead of rounding); global average pooling needs none, and the paper reports
# it 0.6% better in top-1 accuracy.

# %%
fc = nn.Linear(7 * 7 * 1024, 1024, bias=False)
gap = nn.GlobalAvgPool2d()
print(f"Linear(7*7*1024, 1024): {fc.num_parameters():,} weights; GlobalAvgPool2d: {gap.num_parameters()}")
del fc

# %% [markdown]
# ## 5. The Keras model zoo, reproduced
#
# The lecture's table comes from `keras.applications`. Its counts differ from torchvision's for
# every network with batch normalization, and the difference is bookkeeping, not architecture:
#
# * Keras counts a BatchNorm layer's moving mean and moving variance as (non-trainable)
#   parameters; PyTorch keeps them as buffers, outside `parameters()`: $+2C$ per BN layer;
# * Keras's ResNet50/101/152 (v1) convolutions keep a bias even though the BatchNorm after them
#   cancels it; torchvision's have none: $+C_{out}$ per convolution.
#
# VGG has neither, and its counts agree as they are.

# %%
keras_lines = ["| model | npcnn (= torchvision) | BN moving mean + variance | counted as Keras counts | Keras |",
               "| --- | ---: | ---: | ---: | ---: |"]
for name, (params, bn_stats, keras_style, keras) in keras_rows.items():
    keras_lines.append(f"| {name} | {params:,} | {bn_stats:,} | {keras_style:,} | {keras:,} |")
keras_table = "\n".join(keras_lines)
print(keras_table)
(out / "keras_zoo.md").write_text(keras_table + "\n")

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7.5, 4.5))
for name, (_, params, macs, _, _) in rows.items():
    ax.scatter(macs / 1e9, params / 1e6)
    ax.annotate(name, (macs / 1e9, params / 1e6), fontsize=8, xytext=(3, 3), textcoords="offset points")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("multiply-accumulates per image (G)")
ax.set_ylabel("parameters (M)")
ax.set_title("npcnn.models, counted by npcnn.models.profile")
savefig(fig, out, "architectures.png")

# %% [markdown]
# ## What this lesson claims, checked

# %%
claim("LeNet-5: 156 / 2,416 / 48,120 / 10,164 / 850 = 61,706 parameters",
      [p for _, p in lenet_counts] == [156, 2416, 48120, 10164, 850] and lenet.params == 61_706)
claim("AlexNet as published: 60,965,224 parameters and 724,406,816 MACs at 227x227",
      rows["alexnet_original"][1:3] == (60_965_224, 724_406_816))
if "alexnet" in rows:
    claim("torchvision's single-tower AlexNet: 61,100,840 parameters", rows["alexnet"][1] == 61_100_840)
if "vgg16" in rows:
    claim("VGG16: 138,357,544 parameters", rows["vgg16"][1] == 138_357_544)
claim("GoogLeNet's 5x5 branch: 112,896,000 MACs directly, 5,268,480 with the 1x1 bottleneck",
      direct_macs == 112_896_000 and reduce_macs + conv5_macs == 5_268_480)
claim("a 7x7x1024 -> 1024 dense layer has 51,380,224 weights (51.4M); global average pooling 0",
      7 * 7 * 1024 * 1024 == 51_380_224 and gap.num_parameters() == 0)
claim(f"the Keras counts of {', '.join(keras_rows)} are reproduced exactly",
      all(keras_style == keras for _, _, keras_style, keras in keras_rows.values()))
claim("identity shortcuts add no parameters: resnet20 and plain20 have the same count",
      models.resnet20().num_parameters() == models.plain20().num_parameters())

# %%
assert all_claims_hold(), "a claim of this lesson does not hold: see [FAILED] above"
