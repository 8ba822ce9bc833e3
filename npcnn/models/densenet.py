"""DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks", 2017; Table 1).

Inside a dense block every layer sees the concatenation of all earlier feature maps and adds
``growth_rate`` new channels:  x_l = concat(x_{l-1}, H_l(x_{l-1})),  with the bottleneck
H_l = BN-ReLU-Conv1x1(bn_size * k)-BN-ReLU-Conv3x3(k). Transitions between blocks halve the
channels (BN-ReLU-Conv1x1) and the resolution (2x2 average pool).

torchvision's layout and keys: ``features.conv0``, ``features.denseblock1.denselayer1.norm1``,
``features.transition1.conv``, ``features.norm5``, ``classifier``.
densenet121 / 169 / 201: blocks (6, 12, 24, 16) / (6, 12, 32, 32) / (6, 12, 48, 32), k = 32.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from .. import backend, nn
from ._util import backward_chain


class DenseLayer(nn.Module):
    """out = concat(x, H(x)) along channels, H = norm1-relu1-conv1(1x1)-norm2-relu2-conv2(3x3).

    Shapes: x (N, C, H, W) -> out (N, C + growth_rate, H, W), C = num_input_features; conv1 has
    bn_size * growth_rate outputs (the bottleneck), conv2 growth_rate.
    Backward: dL/dx = dout[:, :C] + H.backward(dout[:, C:])  (x reaches the output twice).
    """

    def __init__(self, num_input_features: int, growth_rate: int, bn_size: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(num_input_features)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(num_input_features, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
        self.num_input_features = num_input_features

    def forward(self, x):
        new = self.conv1(self.relu1(self.norm1(x)))
        new = self.conv2(self.relu2(self.norm2(new)))
        return backend.get_array_module(x).concatenate([x, new], axis=1)

    def backward(self, dout):
        c = self.num_input_features
        d = backward_chain(dout[:, c:], self.norm1, self.relu1, self.conv1, self.norm2, self.relu2, self.conv2)
        return dout[:, :c] + d


def dense_block(num_layers: int, num_input_features: int, bn_size: int, growth_rate: int) -> nn.Sequential:
    """``num_layers`` dense layers in a row (keys denselayer1, denselayer2, ...): channels grow
    from ``num_input_features`` to num_input_features + num_layers * growth_rate."""
    return nn.Sequential(OrderedDict(
        (f"denselayer{i + 1}", DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size))
        for i in range(num_layers)))


def transition(num_input_features: int, num_output_features: int) -> nn.Sequential:
    """BN-ReLU-Conv1x1 (halve the channels) - 2x2 average pool (halve the resolution)."""
    return nn.Sequential(OrderedDict([
        ("norm", nn.BatchNorm2d(num_input_features)),
        ("relu", nn.ReLU()),
        ("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1, bias=False)),
        ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
    ]))


class DenseNet(nn.Sequential):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), dense blocks with transitions between them,
    final BN + ReLU, global average pool, linear classifier.

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); native H = W = 224.

    Args:
        growth_rate (int, default 32): k, the channels each dense layer adds.
        block_config (tuple of ints, default (6, 12, 24, 16)): dense layers per block.
        num_init_features (int, default 64): channels of the stem conv.
        bn_size (int, default 4): a dense layer's 1x1 bottleneck has bn_size * k channels.
        num_classes (int, default 1000): outputs of ``classifier``.
        in_channels (int, default 3): input channels.
    """

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, num_classes: int = 1000, in_channels: int = 3) -> None:
        features = OrderedDict([
            ("conv0", nn.Conv2d(in_channels, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU()),
            ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
        ])
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            features[f"denseblock{i + 1}"] = dense_block(num_layers, channels, bn_size, growth_rate)
            channels += num_layers * growth_rate
            if i != len(block_config) - 1:
                features[f"transition{i + 1}"] = transition(channels, channels // 2)
                channels //= 2
        features["norm5"] = nn.BatchNorm2d(channels)
        super().__init__(OrderedDict([
            ("features", nn.Sequential(features)),
            ("relu", nn.ReLU()),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten(1)),
            ("classifier", nn.Linear(channels, num_classes)),
        ]))
        for module in self.modules():  # torchvision's init
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
        nn.init.zeros_(self.classifier.bias)


def densenet121(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """DenseNet-121 (Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
    Networks", 2017), the DenseNet-BC of the paper's Table 1 in torchvision's layout and keys.

    Stages: conv0 7x7/2 (64) - pool0 3x3/2 - dense blocks of (6, 12, 24, 16) layers (growth 32,
    bottleneck 4 x 32 = 128) on 56, 28, 14, 7 pixel maps, with transitions halving channels and
    resolution between them (256, 512, 1024, 1024 channels after each block) - norm5 - relu - global average
    pool - classifier.
    Native input 3x224x224: 7,978,856 parameters, 2,834,161,664 multiply-adds.
    Deviations: the final 7x7 average pool is adaptive (any input size); init torchvision's.
    Keras counts 8,062,504 parameters: + 83,648 BatchNorm moving statistics.

    Args: num_classes (int, default 1000; each class adds 1024 + 1 parameters), in_channels
    (int, default 3), as in :class:`DenseNet`.
    """
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels)


def densenet169(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """DenseNet-169 (Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
    Networks", 2017), the DenseNet-BC of the paper's Table 1 in torchvision's layout and keys.

    Stages: conv0 7x7/2 (64) - pool0 3x3/2 - dense blocks of (6, 12, 32, 32) layers (growth 32,
    bottleneck 4 x 32 = 128) on 56, 28, 14, 7 pixel maps, with transitions halving channels and
    resolution between them (256, 512, 1280, 1664 channels after each block) - norm5 - relu - global average
    pool - classifier.
    Native input 3x224x224: 14,149,480 parameters, 3,359,843,328 multiply-adds.
    Deviations: the final 7x7 average pool is adaptive (any input size); init torchvision's.
    Keras counts 14,307,880 parameters: + 158,400 BatchNorm moving statistics.

    Args: num_classes (int, default 1000; each class adds 1664 + 1 parameters), in_channels
    (int, default 3), as in :class:`DenseNet`.
    """
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, in_channels=in_channels)


def densenet201(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """DenseNet-201 (Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
    Networks", 2017), the DenseNet-BC of the paper's Table 1 in torchvision's layout and keys.

    Stages: conv0 7x7/2 (64) - pool0 3x3/2 - dense blocks of (6, 12, 48, 32) layers (growth 32,
    bottleneck 4 x 32 = 128) on 56, 28, 14, 7 pixel maps, with transitions halving channels and
    resolution between them (256, 512, 1792, 1920 channels after each block) - norm5 - relu - global average
    pool - classifier.
    Native input 3x224x224: 20,013,928 parameters, 4,291,365,888 multiply-adds.
    Deviations: the final 7x7 average pool is adaptive (any input size); init torchvision's.
    Keras counts 20,242,984 parameters: + 229,056 BatchNorm moving statistics.

    Args: num_classes (int, default 1000; each class adds 1920 + 1 parameters), in_channels
    (int, default 3), as in :class:`DenseNet`.
    """
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes=num_classes, in_channels=in_channels)
