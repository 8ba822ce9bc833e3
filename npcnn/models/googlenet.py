"""GoogLeNet / Inception v1 (Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke &
Rabinovich, "Going Deeper with Convolutions", 2014; Table 1), torchvision's layout and keys
(``conv1.conv``, ``conv1.bn``, ``inception3a.branch1.conv`` ...).

An Inception module runs four branches on the same input and concatenates their channels:

    branch1: 1x1 conv
    branch2: 1x1 reduce -> 3x3 conv
    branch3: 1x1 reduce -> "5x5" conv   (torchvision, and so npcnn by default, uses a 3x3 kernel
                                         here: a known bug, pytorch/vision issue 906, kept since
                                         its weights have that shape; ``kernel5=5``: the paper's)
    branch4: 3x3 max pool (stride 1) -> 1x1 projection

The 1x1 reductions are what make it cheap (paper section 4). The lecture's example is inception
4a's 5x5 branch on its 14x14x480 input, 48 filters of 5x5 (run ``googlenet(kernel5=5)`` and
``models.profile`` to see each number; ``tests/test_models_docs.py`` checks them):

    direct:       14*14*48 * 5*5*480                        = 112,896,000 multiply-adds
    bottleneck:   14*14*16 * 480  +  14*14*48 * 5*5*16       = 1,505,280 + 3,763,200 = 5,268,480

21.4 times fewer (112.9M vs 5.27M). The lecture's slide writes the second term as
14 x 15 x 16 x 5 x 5 x 48 = 4,032,000 and the total as 5,537,280: "15" is a typo for 14, and the
right total is 5,268,480. The same arithmetic on inception 3a (28x28x192 in, 16 reduce, 32 filters
of 5x5), the example of Andrew Ng's course: direct 28*28*32 * 5*5*192 = 120,422,400, bottleneck
28*28*16 * 192 + 28*28*32 * 5*5*16 = 2,408,448 + 10,035,200 = 12,443,648 (120.4M vs 12.4M).

Deviations from the paper (torchvision's, for its state_dict):

* the 3x3 kernel in branch3 (above; ``kernel5=5`` for the paper's 5x5);
* BatchNorm (eps 1e-3) after every convolution, which then has no bias (BatchNorm came a year
  later, with Inception v2; the paper's convolutions have biases and no normalization);
* no local response normalization in the stem (the paper has two);
* no auxiliary classifiers (the paper trains with two, on 4a and 4d);
* dropout 0.2 before the classifier (the paper: 0.4); maxpool4 is 2x2/2 (the paper: 3x3/2; with
  ceil-mode rounding both give 7x7 from 14x14); the final 7x7 average pool is adaptive.

The paper budgets "1.5 billion multiply-adds at inference time"; npcnn's counts are in
:func:`googlenet`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .. import backend, nn


class BasicConv2d(nn.Sequential):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, children named conv, bn, relu.

    ``conv_kwargs`` (kernel_size, stride, padding ...) go to the Conv2d.
    """

    def __init__(self, in_channels: int, out_channels: int, **conv_kwargs: Any) -> None:
        super().__init__(OrderedDict([
            ("conv", nn.Conv2d(in_channels, out_channels, bias=False, **conv_kwargs)),
            ("bn", nn.BatchNorm2d(out_channels, eps=0.001)),
            ("relu", nn.ReLU()),
        ]))


class Inception(nn.Module):
    """out = concat(branch1(x), branch2(x), branch3(x), branch4(x)) along channels.

    Shapes: x (N, in_channels, H, W) -> out (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    Backward: dout is split by channels into the four branches' gradients, and dL/dx is the sum
    of the four branches' input gradients.

    Args:
        in_channels (int): channels of x.
        ch1x1 (int): outputs of branch1's 1x1 conv.
        ch3x3red, ch3x3 (int): branch2's 1x1 reduction and 3x3 conv outputs.
        ch5x5red, ch5x5 (int): branch3's 1x1 reduction and "5x5" conv outputs.
        pool_proj (int): outputs of branch4's 1x1 projection after the 3x3 max pool.
        kernel5 (int, default 3): branch3's kernel size: 3 is torchvision's, 5 the paper's
            (padding kernel5 // 2 keeps H, W).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int,
                 pool_proj: int, kernel5: int = 3) -> None:
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(BasicConv2d(in_channels, ch3x3red, kernel_size=1),
                                     BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(in_channels, ch5x5red, kernel_size=1),
                                     BasicConv2d(ch5x5red, ch5x5, kernel_size=kernel5, padding=kernel5 // 2))
        self.branch4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
                                     BasicConv2d(in_channels, pool_proj, kernel_size=1))
        self.splits = [ch1x1, ch3x3, ch5x5, pool_proj]

    def forward(self, x):
        outs = [branch(x) for branch in (self.branch1, self.branch2, self.branch3, self.branch4)]
        return backend.get_array_module(x).concatenate(outs, axis=1)

    def backward(self, dout):
        dx, start = None, 0
        for branch, channels in zip((self.branch1, self.branch2, self.branch3, self.branch4), self.splits):
            d = branch.backward(dout[:, start:start + channels])
            dx = d if dx is None else dx + d
            start += channels
        return dx


# (in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj): the paper's Table 1
INCEPTION_CONFIG = OrderedDict([
    ("inception3a", (192, 64, 96, 128, 16, 32, 32)),
    ("inception3b", (256, 128, 128, 192, 32, 96, 64)),
    ("inception4a", (480, 192, 96, 208, 16, 48, 64)),
    ("inception4b", (512, 160, 112, 224, 24, 64, 64)),
    ("inception4c", (512, 128, 128, 256, 24, 64, 64)),
    ("inception4d", (512, 112, 144, 288, 32, 64, 64)),
    ("inception4e", (528, 256, 160, 320, 32, 128, 128)),
    ("inception5a", (832, 256, 160, 320, 32, 128, 128)),
    ("inception5b", (832, 384, 192, 384, 48, 128, 128)),
])


class GoogLeNet(nn.Sequential):
    """Stem (7x7/2 conv, pool, 1x1 and 3x3 convs, pool), Inception 3a-3b, pool, 4a-4e, pool,
    5a-5b, global average pool, dropout, fc. ``kernel5=5`` gives the paper's 5x5 branch.

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); native H = W = 224.
    Arguments as :func:`googlenet`.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2, kernel5: int = 3) -> None:
        def inception(name):
            return (name, Inception(*INCEPTION_CONFIG[name], kernel5=kernel5))

        super().__init__(OrderedDict([
            ("conv1", BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3)),
            ("maxpool1", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
            ("conv2", BasicConv2d(64, 64, kernel_size=1)),
            ("conv3", BasicConv2d(64, 192, kernel_size=3, padding=1)),
            ("maxpool2", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
            inception("inception3a"), inception("inception3b"),
            ("maxpool3", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
            inception("inception4a"), inception("inception4b"), inception("inception4c"),
            inception("inception4d"), inception("inception4e"),
            ("maxpool4", nn.MaxPool2d(2, stride=2, ceil_mode=True)),
            inception("inception5a"), inception("inception5b"),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten(1)),
            ("dropout", nn.Dropout(dropout)),
            ("fc", nn.Linear(1024, num_classes)),
        ]))


def googlenet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.2, kernel5: int = 3) -> nn.Module:
    """GoogLeNet (Szegedy et al., "Going Deeper with Convolutions", 2014), torchvision's layout:
    see the module docstring for the Inception arithmetic and every deviation from the paper.

    Stages (output at 224x224): conv1 7x7/2 (64, 112) - maxpool 3x3/2 (56) - conv2 1x1 (64) -
    conv3 3x3 (192) - maxpool (28) - inception 3a, 3b (256, 480) - maxpool (14) - 4a .. 4e
    (512, 512, 512, 528, 832) - maxpool (7) - 5a, 5b (832, 1024) - global average pool -
    dropout - fc.
    Native input 3x224x224: 6,624,904 parameters, 1,498,376,192 multiply-adds.
    With kernel5=5: 7,005,832 parameters, 1,582,671,872 multiply-adds (the paper's 5x5 branch).
    Deviations (details in the module docstring): a 3x3 kernel in the "5x5" branch unless
    kernel5=5; BatchNorm after every conv and no conv biases; no local response normalization;
    no auxiliary classifiers; dropout 0.2 (the paper: 0.4); a 2x2 maxpool4.
    Keras has no GoogLeNet (its InceptionV3 is a later design).

    Args:
        num_classes (int, default 1000): outputs of ``fc`` (the counts are for 1000; each class
            adds 1024 + 1 parameters).
        in_channels (int, default 3): input channels.
        dropout (float, default 0.2): drop probability before ``fc`` (the paper: 0.4).
        kernel5 (int, default 3): kernel of each Inception's "5x5" branch: 3 is torchvision's
            (loads its weights), 5 the paper's.
    """
    return GoogLeNet(num_classes, in_channels, dropout, kernel5)
