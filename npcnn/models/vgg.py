"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks", 2014; Table 1, configs A, B, D, E).

Stacks of 3x3 convolutions (stride 1, padding 1) + ReLU, with 2x2 max pooling between stages,
then three fully connected layers. Two 3x3 convs see a 5x5 window with 2 * 9 C^2 weights
instead of 25 C^2; three see 7x7 with 27 C^2 instead of 49 C^2.

torchvision's layout and keys: ``features.N``, ``avgpool`` (adaptive, 7x7), ``classifier.N``.
vgg11 / 13 / 16 / 19: 132,863,336 / 133,047,848 / 138,357,544 / 143,667,240 parameters.
"""

from collections import OrderedDict

from .. import nn

# numbers are 3x3 conv output channels, "M" a 2x2 max pool
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_features(config, in_channels=3, batch_norm=False):
    """The convolutional part: conv3x3 (+ BN) + ReLU per number, MaxPool2d(2) per "M"."""
    layers = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU())
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Sequential):
    """features -> adaptive average pool to 7x7 (identity at 224x224) -> flatten -> classifier
    (fc 4096 - ReLU - dropout - fc 4096 - ReLU - dropout - fc num_classes)."""

    def __init__(self, features, num_classes=1000, dropout=0.5):
        super().__init__(OrderedDict([
            ("features", features),
            ("avgpool", nn.AdaptiveAvgPool2d((7, 7))),
            ("flatten", nn.Flatten(1)),
            ("classifier", nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(4096, num_classes),
            )),
        ]))
        for module in self.modules():  # torchvision's init
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)


def vgg11(num_classes=1000, in_channels=3, batch_norm=False):
    return VGG(make_features(CONFIGS["A"], in_channels, batch_norm), num_classes)


def vgg13(num_classes=1000, in_channels=3, batch_norm=False):
    return VGG(make_features(CONFIGS["B"], in_channels, batch_norm), num_classes)


def vgg16(num_classes=1000, in_channels=3, batch_norm=False):
    return VGG(make_features(CONFIGS["D"], in_channels, batch_norm), num_classes)


def vgg19(num_classes=1000, in_channels=3, batch_norm=False):
    return VGG(make_features(CONFIGS["E"], in_channels, batch_norm), num_classes)
