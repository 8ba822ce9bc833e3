"""AlexNet (Krizhevsky et al., 2012) and ZFNet (Zeiler & Fergus, 2013).

alexnet(): torchvision's single-tower variant ("One weird trick", Krizhevsky 2014) with its
layout and keys (``features.N``, ``avgpool``, ``classifier.N``): 61,100,840 parameters.

alexnet_original(): the network of the paper (Krizhevsky, Sutskever & Hinton, "ImageNet
Classification with Deep Convolutional Neural Networks", NIPS 2012, Fig. 2 and sec. 3) on
227x227x3 inputs, with its 96 first-layer filters, local response normalization and the two
GPUs' halves as two-group convolutions: 60,965,224 parameters, 724,406,816 multiply-adds.

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


class AlexNetOriginal(nn.Sequential):
    """AlexNet as published (NIPS 2012), for 227x227x3 inputs::

        conv1  96 x 11x11/4 -> 55x55, ReLU, LRN, 3x3/2 max pool -> 27x27
        conv2 256 x 5x5 pad 2, 2 groups -> 27x27, ReLU, LRN, 3x3/2 max pool -> 13x13
        conv3 384 x 3x3 pad 1 (all 256 input maps: the layer where the GPUs talk) -> 13x13, ReLU
        conv4 384 x 3x3 pad 1, 2 groups, ReLU;  conv5 256 x 3x3 pad 1, 2 groups, ReLU
        3x3/2 max pool -> 6x6x256 = 9,216;  fc6 4096, fc7 4096 (ReLU, dropout 0.5), fc8 num_classes

    The paper split every layer's kernels between two GPUs; a kernel of conv2, conv4 and conv5
    sees only the maps on its own GPU, which is exactly ``groups=2`` (conv1's input, conv3's input
    and the fully connected layers were shared, so they are not grouped). The pools overlap (3x3
    windows, stride 2), the normalization comes after the ReLU and before the pool, as in sec. 3.5.
    The paper's 224x224 only works out to 55x55 with 227 (or with padding): (227 - 11) / 4 + 1 = 55.

    LRN: the paper's b = a / (k + alpha sum a^2)^beta with k = 2, n = 5, alpha = 1e-4, beta = 0.75
    has no 1/n in front of the sum; PyTorch's LocalResponseNorm divides alpha by the size, so the
    paper's layer is ``LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)``.

    Parameters (weights + biases): conv 34,944 + 307,456 + 885,120 + 663,936 + 442,624;
    fc 37,752,832 + 16,781,312 + 4,097,000: 60,965,224 in all for 1,000 classes.
    Multiply-adds for one image: conv 105,415,200 + 223,948,800 + 149,520,384 + 112,140,288 +
    74,760,192, fc 58,621,952: 724,406,816. (tests/test_models.py checks both against profile().)
    Initialization is npcnn's default (PyTorch's), not the paper's N(0, 0.01) with biases of 1.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> None:
        def normalize():
            return nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)

        super().__init__(OrderedDict([
            ("features", nn.Sequential(
                nn.Conv2d(in_channels, 96, kernel_size=11, stride=4), nn.ReLU(), normalize(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2), nn.ReLU(), normalize(),
                nn.MaxPool2d(kernel_size=3, stride=2),
                nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
                nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2), nn.ReLU(),
                nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2), nn.ReLU(),
                nn.MaxPool2d(kernel_size=3, stride=2),
            )),
            ("flatten", nn.Flatten(1)),
            ("classifier", nn.Sequential(
                nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(dropout),
                nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
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
    """AlexNet, torchvision's single-tower variant (Krizhevsky, "One weird trick for parallelizing
    convolutional neural networks", 2014) of Krizhevsky, Sutskever & Hinton, "ImageNet
    Classification with Deep Convolutional Neural Networks", 2012; torchvision's layout and keys.

    Stages: conv 11x11/4 (64) - ReLU - max pool 3x3/2 - conv 5x5 (192) - ReLU - max pool 3x3/2 -
    conv 3x3 (384) - conv 3x3 (256) - conv 3x3 (256), each with ReLU - max pool 3x3/2 (6x6) -
    adaptive avg pool 6x6 - dropout - fc 4096 - dropout - fc 4096 - fc num_classes.
    Native input 3x224x224: 61,100,840 parameters, 714,188,480 multiply-adds.
    Deviations from the 2012 paper: 64, 192, 384, 256, 256 filters instead of 96, 256, 384, 384,
    256; one tower, no two-GPU grouping; no local response normalization; padding 2 on the first
    layer for 224x224 inputs. The published network is :func:`alexnet_original`.

    Args:
        num_classes (int, default 1000): outputs of the last layer (each class adds 4096 + 1
            parameters).
        in_channels (int, default 3): input channels.
        dropout (float, default 0.5): drop probability before fc6 and fc7.
    """
    return AlexNet(num_classes, in_channels, dropout)


def alexnet_original(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """AlexNet as published (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep
    Convolutional Neural Networks", NIPS 2012, Fig. 2): 96 first-layer filters, local response
    normalization, the two GPUs as two-group convolutions (see :class:`AlexNetOriginal`).

    Stages: conv 11x11/4 (96, 55x55) - ReLU - LRN - max pool 3x3/2 (27x27) - conv 5x5, 2 groups
    (256) - ReLU - LRN - max pool 3x3/2 (13x13) - conv 3x3 (384) - conv 3x3, 2 groups (384) -
    conv 3x3, 2 groups (256), each with ReLU - max pool 3x3/2 (6x6) - fc 4096 - dropout - fc 4096
    - dropout - fc num_classes.
    Native input 3x227x227: 60,965,224 parameters, 724,406,816 multiply-adds.
    Deviations: the paper's text says 224x224 inputs, which only give 55x55 after the 11x11/4
    layer with 227 (or padding); initialization is npcnn's default, not N(0, 0.01) with biases 1.

    Args:
        num_classes (int, default 1000): outputs of fc8 (each class adds 4096 + 1 parameters).
        in_channels (int, default 3): input channels (grouping starts at conv2, so any count works).
        dropout (float, default 0.5): drop probability after fc6 and fc7.
    """
    return AlexNetOriginal(num_classes, in_channels, dropout)


def zfnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> nn.Module:
    """ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", 2013;
    Fig. 3): AlexNet with a 7x7/2 first layer and a 5x5/2 second layer, on 224x224 inputs.

    Stages: conv 7x7/2 (96, 110x110) - ReLU - max pool 3x3/2 (55x55) - LRN - conv 5x5/2 (256,
    26x26) - ReLU - max pool 3x3/2 (13x13) - LRN - conv 3x3 (384) - conv 3x3 (384) - conv 3x3 (256),
    each with ReLU - max pool 3x3/2 (6x6) - dropout - fc 4096 - dropout - fc 4096 - fc num_classes.
    Native input 3x224x224: 62,357,608 parameters, 1,168,032,896 multiply-adds.
    Deviations: the paper's "contrast normalization across feature maps" is read as AlexNet's
    local response normalization; ceil_mode pooling gives the figure's 55 and 13; single tower.

    Args:
        num_classes (int, default 1000): outputs of the last layer (each class adds 4096 + 1
            parameters).
        in_channels (int, default 3): input channels.
        dropout (float, default 0.5): drop probability before fc6 and fc7.
    """
    return ZFNet(num_classes, in_channels, dropout)
