"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks", 2014; Table 1, configs A, B, D, E).

Stacks of 3x3 convolutions (stride 1, padding 1) + ReLU, with 2x2 max pooling between stages,
then three fully connected layers. Two 3x3 convs see a 5x5 window with 2 * 9 C^2 weights
instead of 25 C^2; three see 7x7 with 27 C^2 instead of 49 C^2.

torchvision's layout and keys: ``features.N``, ``avgpool`` (adaptive, 7x7), ``classifier.N``.
vgg11 / 13 / 16 / 19: 132,863,336 / 133,047,848 / 138,357,544 / 143,667,240 parameters.

Deviations from the paper (torchvision's, in all four): an adaptive 7x7 average pool before the
classifier (the identity at 224x224, so other sizes run); ``batch_norm=True`` (torchvision's
vgg*_bn) is not in the paper; torchvision's init (the paper trained A from scratch and started
the deeper nets from it). Configuration C (with 1x1 convs) is not provided.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

from .. import nn

# numbers are 3x3 conv output channels, "M" a 2x2 max pool
CONFIGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_features(config: Sequence[Any], in_channels: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The convolutional part: conv3x3 (+ BN) + ReLU per number, MaxPool2d(2) per "M".

    ``config`` is a list like ``CONFIGS["D"]``; ``in_channels`` the image's channels;
    ``batch_norm`` puts a BatchNorm2d between each conv and its ReLU (2 parameters and 2
    running statistics per channel; torchvision's vgg*_bn, not in the paper).
    """
    layers: list[nn.Module] = []
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
    (fc 4096 - ReLU - dropout - fc 4096 - ReLU - dropout - fc num_classes).

    Shapes: x (N, C, H, W) -> logits (N, num_classes), H, W >= 32; native 224.

    Args:
        features (Module): the convolutional part, ending in 512 channels (``make_features``).
        num_classes (int, default 1000): outputs of the last fc.
        dropout (float, default 0.5): drop probability after fc6 and fc7.
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, dropout: float = 0.5) -> None:
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


def vgg11(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> nn.Module:
    """VGG-11 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", 2014; configuration A of Table 1), torchvision's layout and keys.

    Stages: 8 3x3 convs with ReLU in five stages of 1 x 64, 1 x 128, 2 x 256, 2 x 512, 2 x 512
    channels, each ending in a 2x2 max pool (224 -> 7) - fc 4096 - fc 4096 - fc num_classes.
    Native input 3x224x224: 132,863,336 parameters, 7,609,090,048 multiply-adds (paper: 133M).
    Deviations: the module docstring's (adaptive pool, optional BatchNorm, init). Keras has no VGG11.

    Args: num_classes (int, default 1000; each class adds 4096 + 1 parameters), in_channels (int,
    default 3), batch_norm (bool, default False), as in :class:`VGG` and :func:`make_features`.
    """
    return VGG(make_features(CONFIGS["A"], in_channels, batch_norm), num_classes)


def vgg13(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> nn.Module:
    """VGG-13 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", 2014; configuration B of Table 1), torchvision's layout and keys.

    Stages: 10 3x3 convs with ReLU in five stages of 2 x 64, 2 x 128, 2 x 256, 2 x 512, 2 x 512
    channels, each ending in a 2x2 max pool (224 -> 7) - fc 4096 - fc 4096 - fc num_classes.
    Native input 3x224x224: 133,047,848 parameters, 11,308,466,176 multiply-adds (paper: 133M).
    Deviations: the module docstring's (adaptive pool, optional BatchNorm, init). Keras has no VGG13.

    Args: num_classes (int, default 1000; each class adds 4096 + 1 parameters), in_channels (int,
    default 3), batch_norm (bool, default False), as in :class:`VGG` and :func:`make_features`.
    """
    return VGG(make_features(CONFIGS["B"], in_channels, batch_norm), num_classes)


def vgg16(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> nn.Module:
    """VGG-16 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", 2014; configuration D of Table 1), torchvision's layout and keys.

    Stages: 13 3x3 convs with ReLU in five stages of 2 x 64, 2 x 128, 3 x 256, 3 x 512, 3 x 512
    channels, each ending in a 2x2 max pool (224 -> 7) - fc 4096 - fc 4096 - fc num_classes.
    Native input 3x224x224: 138,357,544 parameters, 15,470,264,320 multiply-adds (paper: 138M).
    Deviations: the module docstring's (adaptive pool, optional BatchNorm, init).
    Keras's VGG16 counts the same 138,357,544 (no BatchNorm).

    Args: num_classes (int, default 1000; each class adds 4096 + 1 parameters), in_channels (int,
    default 3), batch_norm (bool, default False), as in :class:`VGG` and :func:`make_features`.
    """
    return VGG(make_features(CONFIGS["D"], in_channels, batch_norm), num_classes)


def vgg19(num_classes: int = 1000, in_channels: int = 3, batch_norm: bool = False) -> nn.Module:
    """VGG-19 (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", 2014; configuration E of Table 1), torchvision's layout and keys.

    Stages: 16 3x3 convs with ReLU in five stages of 2 x 64, 2 x 128, 4 x 256, 4 x 512, 4 x 512
    channels, each ending in a 2x2 max pool (224 -> 7) - fc 4096 - fc 4096 - fc num_classes.
    Native input 3x224x224: 143,667,240 parameters, 19,632,062,464 multiply-adds (paper: 144M).
    Deviations: the module docstring's (adaptive pool, optional BatchNorm, init).
    Keras's VGG19 counts the same 143,667,240 (no BatchNorm).

    Args: num_classes (int, default 1000; each class adds 4096 + 1 parameters), in_channels (int,
    default 3), batch_norm (bool, default False), as in :class:`VGG` and :func:`make_features`.
    """
    return VGG(make_features(CONFIGS["E"], in_channels, batch_norm), num_classes)
