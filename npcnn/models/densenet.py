"""DenseNet-BC (Huang et al., "Densely Connected Convolutional Networks", 2017; Table 1).

Inside a dense block every layer sees the concatenation of all earlier feature maps and adds
``growth_rate`` new channels:  x_l = concat(x_{l-1}, H_l(x_{l-1})),  with the bottleneck
H_l = BN-ReLU-Conv1x1(bn_size * k)-BN-ReLU-Conv3x3(k). Transitions between blocks halve the
channels (BN-ReLU-Conv1x1) and the resolution (2x2 average pool).

torchvision's layout and keys: ``features.conv0``, ``features.denseblock1.denselayer1.norm1``,
``features.transition1.conv``, ``features.norm5``, ``classifier``.
densenet121 / 169 / 201: blocks (6, 12, 24, 16) / (6, 12, 32, 32) / (6, 12, 48, 32), k = 32.
"""

from collections import OrderedDict

from .. import backend, nn
from ._util import backward_chain


class DenseLayer(nn.Module):
    """out = concat(x, H(x)) along channels, H = norm1-relu1-conv1(1x1)-norm2-relu2-conv2(3x3).

    Shapes: x (N, C, H, W) -> out (N, C + growth_rate, H, W).
    Backward: dL/dx = dout[:, :C] + H.backward(dout[:, C:])  (x reaches the output twice).
    """

    def __init__(self, num_input_features, growth_rate, bn_size):
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


def dense_block(num_layers, num_input_features, bn_size, growth_rate):
    """``num_layers`` dense layers in a row (keys denselayer1, denselayer2, ...)."""
    return nn.Sequential(OrderedDict(
        (f"denselayer{i + 1}", DenseLayer(num_input_features + i * growth_rate, growth_rate, bn_size))
        for i in range(num_layers)))


def transition(num_input_features, num_output_features):
    """BN-ReLU-Conv1x1 (halve the channels) - 2x2 average pool (halve the resolution)."""
    return nn.Sequential(OrderedDict([
        ("norm", nn.BatchNorm2d(num_input_features)),
        ("relu", nn.ReLU()),
        ("conv", nn.Conv2d(num_input_features, num_output_features, kernel_size=1, bias=False)),
        ("pool", nn.AvgPool2d(kernel_size=2, stride=2)),
    ]))


class DenseNet(nn.Sequential):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), dense blocks with transitions between them,
    final BN + ReLU, global average pool, linear classifier."""

    def __init__(self, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, bn_size=4,
                 num_classes=1000, in_channels=3):
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


def densenet121(num_classes=1000, in_channels=3):
    return DenseNet(32, (6, 12, 24, 16), 64, num_classes=num_classes, in_channels=in_channels)


def densenet169(num_classes=1000, in_channels=3):
    return DenseNet(32, (6, 12, 32, 32), 64, num_classes=num_classes, in_channels=in_channels)


def densenet201(num_classes=1000, in_channels=3):
    return DenseNet(32, (6, 12, 48, 32), 64, num_classes=num_classes, in_channels=in_channels)
