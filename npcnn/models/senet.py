"""SE-ResNet-50 (Hu et al., "Squeeze-and-Excitation Networks", 2017; paper Table 1, Fig. 3).

ResNet-50 with a squeeze-excitation block inside every bottleneck: the residual branch's
channels are rescaled by s = sigmoid(W2 relu(W1 avgpool(u))) (reduction r = 16) before the
identity is added:  y = relu(se(bn3(conv3(...))) + shortcut(x)).
About 28.1M parameters (paper Table 7: 28.09M); state_dict keys are torchvision ResNet's plus
``layerK.B.se.*``.
"""

from .. import nn
from .resnet import Bottleneck, ResNet


class SEBottleneck(Bottleneck):
    """A ResNet bottleneck whose residual branch ends in SqueezeExcitation(4 planes, reduction)."""

    def __init__(self, inplanes, planes, stride=1, downsample=None, reduction=16):
        super().__init__(inplanes, planes, stride, downsample)
        self.se = nn.SqueezeExcitation(planes * self.expansion, reduction=reduction)


def se_resnet50(num_classes=1000, in_channels=3):
    return ResNet(SEBottleneck, [3, 4, 6, 3], num_classes, in_channels)
