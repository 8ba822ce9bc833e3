"""AlexNet (Krizhevsky et al., 2012) and ZFNet (Zeiler & Fergus, 2013).

alexnet(): torchvision's single-tower variant ("One weird trick", Krizhevsky 2014) with its
layout and keys (``features.N``, ``avgpool``, ``classifier.N``): 61,100,840 parameters.

zfnet(): the paper's Fig. 3 on 224x224x3 inputs, with local response normalization for its
"contrast normalization across feature maps":

    layer 1: 96 filters 7x7 stride 2 -> 110x110, 3x3/2 max pool -> 55x55, normalize
    layer 2: 256 filters 5x5 stride 2 -> 26x26, 3x3/2 max pool -> 13x13, normalize
    layers 3, 4, 5: 384, 384, 256 filters 3x3 -> 13x13, 3x3/2 max pool -> 6x6
    fc6 4096, fc7 4096, output num_classes                        (62,357,608 parameters)

(ceil_mode pooling gives the paper's 55 and 13 from 110 and 26.)
"""

from __future__ import annotations

from collections import OrderedDict

from .. import nn


class AlexNet(nn.Sequential):
    """5 convolutions (11x11/4, 5x5, 3x3 x3) with max pools, adaptive pool to 6x6, 3 fc layers."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        super().__init__(OrderedDict([
            ("features", nn.Sequential(
                nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )),
            ("avgpool", nn.AdaptiveAvgPool2d((6, 6))),
            ("flatten", nn.Flatten(1)),
            ("classifier", nn.Sequential(
                nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
                nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Linear(4096, num_classes),
            )),
        ]))


class ZFNet(nn.Sequential):
    """Zeiler & Fergus Fig. 3: AlexNet with a 7x7/2 first layer and a 5x5/2 second layer."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        def normalize():
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)

        super().__init__(OrderedDict([
            ("features", nn.Sequential(
                nn.Conv2d(in_channels, 96, kernel_size=7, stride=2, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True), normalize(),
                nn.Conv2d(96, 256, kernel_size=5, stride=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True), normalize(),
                nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )),
            ("flatten", nn.Flatten(1)),
            ("classifier", nn.Sequential(
                nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
                nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Linear(4096, num_classes),
            )),
        ]))


def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """AlexNet (:class:`AlexNet`) with ``num_classes`` outputs, ``in_channels`` inputs and dropout ``dropout``."""
    return AlexNet(num_classes, in_channels, dropout)


def zfnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """ZFNet (:class:`ZFNet`) with ``num_classes`` outputs, ``in_channels`` inputs and dropout ``dropout``."""
    return ZFNet(num_classes, in_channels, dropout)
