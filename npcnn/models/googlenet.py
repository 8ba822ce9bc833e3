"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", 2014; Table 1).

torchvision's layout and keys (``conv1.conv``, ``conv1.bn``, ``inception3a.branch1.conv`` ...),
with BatchNorm after every convolution and no auxiliary heads: 6,624,904 parameters.

An Inception module runs four branches on the same input and concatenates their channels:

    branch1: 1x1 conv
    branch2: 1x1 reduce -> 3x3 conv
    branch3: 1x1 reduce -> 5x5 conv     (torchvision, and so our default, uses 3x3 here: a
                                         historical quirk kept for its weights; 5 gives the paper's)
    branch4: 3x3 max pool (stride 1) -> 1x1 projection

The 1x1 reductions are what make it cheap (paper section 4): a 5x5 conv with 48 outputs on a
14x14x480 map costs 14*14*48 * 5*5*480 = 112.9M multiply-accumulates; reducing to 16 channels
first costs 14*14*16 * 480 + 14*14*48 * 5*5*16 = 1.5M + 3.8M = 5.3M.
"""

from collections import OrderedDict

from .. import backend, nn


class BasicConv2d(nn.Sequential):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU, children named conv, bn, relu."""

    def __init__(self, in_channels, out_channels, **conv_kwargs):
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
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, kernel5=3):
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
    5a-5b, global average pool, dropout 0.2, fc. ``kernel5=5`` gives the paper's 5x5 branch."""

    def __init__(self, num_classes=1000, in_channels=3, dropout=0.2, kernel5=3):
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


def googlenet(num_classes=1000, in_channels=3, dropout=0.2, kernel5=3):
    return GoogLeNet(num_classes, in_channels, dropout, kernel5)
