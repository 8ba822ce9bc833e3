"""SE-ResNet-50 (Hu et al., "Squeeze-and-Excitation Networks", 2017; paper Table 1, Fig. 3).

ResNet-50 with a squeeze-excitation block inside every bottleneck: the residual branch's
channels are rescaled by s = sigmoid(W2 relu(W1 avgpool(u))) (reduction r = 16) before the
identity is added:  y = relu(se(bn3(conv3(...))) + shortcut(x)).
About 28.1M parameters (paper Table 7: 28.09M); state_dict keys are torchvision ResNet's plus
``layerK.B.se.*``.
"""

from __future__ import annotations

from typing import Optional

from .. import nn
from .resnet import Bottleneck, ResNet


class SEBottleneck(Bottleneck):
    """A ResNet bottleneck whose residual branch ends in SqueezeExcitation(4 planes, reduction):
    y = relu(se(bn3(conv3(...))) + shortcut(x)), se(u) = u * sigmoid(W2 relu(W1 avgpool(u))).

    Arguments as :class:`Bottleneck`, plus ``reduction`` (default 16): the excitation's hidden
    width is 4 planes / reduction.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 reduction: int = 16) -> None:
        super().__init__(inplanes, planes, stride, downsample)
        self.se = nn.SqueezeExcitation(planes * self.expansion, reduction=reduction)


def se_resnet50(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """SE-ResNet-50 (Hu, Shen & Sun, "Squeeze-and-Excitation Networks", 2017): ResNet-50 with a
    squeeze-excitation block (reduction 16) in every bottleneck.

    Stages: as :func:`resnet50`, conv1 7x7/2 - maxpool - [3, 4, 6, 3] SEBottlenecks of 64, 128,
    256, 512 planes (x4 channels) - global average pool - fc.
    Native input 3x224x224: 28,088,024 parameters, 4,091,699,200 multiply-adds (resnet50's plus
    2,514,944 for the excitation's two small fc layers per block; the paper: 3.87 G against
    ResNet-50's 3.86 G, with the stride in the first 1x1).
    Deviations: the ResNet "v1.5" stride placement of :func:`resnet50`. The excitation's fc1 and
    fc2 are Linear layers with biases on the squeezed (N, C) vector.
    Keras has no SE-ResNet.

    Args:
        num_classes (int, default 1000): outputs of ``fc`` (the counts are for 1000).
        in_channels (int, default 3): input channels.
    """
    return ResNet(SEBottleneck, [3, 4, 6, 3], num_classes, in_channels)
