"""MobileNetV2 (Sandler et al., "Inverted Residuals and Linear Bottlenecks", 2018; Table 2).

An inverted residual block expands the channels t times with a 1x1 conv, filters each channel
on its own with a 3x3 depthwise conv (a grouped conv with groups = channels: 9 weights per
channel instead of 9 * channels), then projects back down with a linear 1x1 conv (no ReLU: the
"linear bottleneck"). Where stride is 1 and the channels match, the input is added back.

torchvision's layout and keys (``features.0.0`` conv, ``features.0.1`` BN,
``features.2.conv.0.0`` ..., ``classifier.1``): 3,504,872 parameters for 1000 classes.
"""

from __future__ import annotations

from collections import OrderedDict

from .. import nn

# t (expansion), c (output channels), n (repeats), s (stride of the first): the paper's Table 2
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def conv_bn_relu6(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                  groups: int = 1) -> nn.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias, "same" padding) - BN - ReLU6, keys 0, 1.

    ``groups=in_channels`` makes the conv depthwise (one filter per channel).
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                  groups=groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(),
    )


class InvertedResidual(nn.Module):
    """out = x + conv(x) where stride = 1 and inp = oup, else conv(x), with
    conv = [1x1 expand-BN-ReLU6 (when t != 1)] - 3x3 depthwise-BN-ReLU6 - 1x1 project-BN.

    Shapes: x (N, inp, H, W) -> out (N, oup, H / stride, W / stride); the hidden width is
    round(inp * expand_ratio).
    Backward: dL/dx = conv.backward(dout) (+ dout with the residual connection).
    """

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [conv_bn_relu6(inp, hidden, kernel_size=1)] if expand_ratio != 1 else []
        layers += [conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, bias=False),
                   nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)
        self.stride, self.inp, self.oup = stride, inp, oup

    def forward(self, x):
        out = self.conv(x)
        return x + out if self.use_res_connect else out

    def backward(self, dout):
        dx = self.conv.backward(dout)
        return dx + dout if self.use_res_connect else dx

    def extra_repr(self):
        return f"{self.inp}, {self.oup}, stride={self.stride}"


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never below 90% of ``v`` (torchvision)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class MobileNetV2(nn.Sequential):
    """3x3/2 conv (32) - 17 inverted residual blocks - 1x1 conv (1280) - global average pool -
    dropout 0.2 - linear. ``width_mult`` scales every layer's channels.

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); native H = W = 224.
    Arguments as :func:`mobilenet_v2`.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> None:
        channels = make_divisible(32 * width_mult)
        last_channel = make_divisible(1280 * max(1.0, width_mult))
        features: list[nn.Module] = [conv_bn_relu6(in_channels, channels, stride=2)]
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out_channels = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channels, out_channels, s if i == 0 else 1, t))
                channels = out_channels
        features.append(conv_bn_relu6(channels, last_channel, kernel_size=1))
        super().__init__(OrderedDict([
            ("features", nn.Sequential(*features)),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten(1)),
            ("classifier", nn.Sequential(nn.Dropout(dropout), nn.Linear(last_channel, num_classes))),
        ]))
        for module in self.modules():  # torchvision's init
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)


def mobilenet_v2(num_classes: int = 1000, in_channels: int = 3, width_mult: float = 1.0,
                 dropout: float = 0.2) -> nn.Module:
    """MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and
    Linear Bottlenecks", 2018), torchvision's layout and keys.

    Stages (the paper's Table 2): conv 3x3/2 (32, 112x112) - 17 inverted residual blocks in 7
    groups (t, c, n, s) = (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
    (6, 160, 3, 2), (6, 320, 1, 1), ending at 7x7 - conv 1x1 (1280) - global average pool -
    dropout - linear.
    Native input 3x224x224: 3,504,872 parameters, 300,774,272 multiply-adds (paper Table 4: 3.4M,
    300M).
    Deviations: the classifier is a Linear (the paper's Table 2 writes it as a 1x1 conv, the same
    map) after dropout 0.2 (torchvision's; the paper gives none); init torchvision's.
    Keras counts 3,538,984 parameters: + 34,112 BatchNorm moving statistics.

    Args:
        num_classes (int, default 1000): outputs of the classifier (the counts are for 1000).
        in_channels (int, default 3): input channels.
        width_mult (float, default 1.0): multiplies every layer's channels (rounded to a
            multiple of 8 by ``make_divisible``); the last conv keeps 1280 below 1.0.
        dropout (float, default 0.2): drop probability before the classifier.
    """
    return MobileNetV2(num_classes, in_channels, width_mult, dropout)
