"""ResNet (He et al., "Deep Residual Learning for Image Recognition", 2015).

A residual block learns F(x) and outputs relu(F(x) + shortcut(x)); the identity shortcut lets
the gradient reach early layers unchanged:  dL/dx = dL/dy * (dF/dx + I)  (through the final ReLU).

ImageNet nets (paper Table 1, torchvision's layout and state_dict keys):

    conv1 7x7/2 -> bn1 -> relu -> maxpool 3x3/2 -> layer1 .. layer4 -> avgpool -> fc
    stage sizes: resnet18 [2, 2, 2, 2] BasicBlock, resnet34 [3, 4, 6, 3] BasicBlock,
                 resnet50 [3, 4, 6, 3], resnet101 [3, 4, 23, 3], resnet152 [3, 8, 36, 3] Bottleneck.
    Where the shape changes the shortcut is a projection, ``downsample`` = 1x1 conv (stride s) + BN.

Deviations from the paper (all torchvision's, kept so its weights load):

* Bottleneck nets (50, 101, 152) put a stage's stride 2 in the block's 3x3 conv, not in its first
  1x1 ("ResNet v1.5"): slightly more accurate and dearer, 4.09 G multiply-adds for resnet50 where
  the paper's Table 1 gives 3.8 G (101: 7.80 vs 7.6 G, 152: 11.51 vs 11.3 G). The BasicBlock
  nets (18, 34) have the paper's layout and cost (1.8 G, 3.6 G).
* Projection shortcuts only where the shape changes (the paper's option B).
* Convolutions carry no bias (BatchNorm's beta takes its place); Keras's ResNet50 v1 has one on
  every conv, and it also counts BatchNorm's moving mean and variance as (non-trainable)
  parameters: each ImageNet constructor says by how much its Keras twin's count differs.
* Init: conv weights ~ N(0, 2 / fan_out) (He et al.'s init, by fan-out as torchvision does).

CIFAR nets (paper section 4.2): conv 3x3 (16) -> three stages of n BasicBlocks with 16, 32, 64
channels (the 2nd and 3rd start with stride 2) -> global average pool -> fc(10); depth 6n + 2.
Option A shortcuts carry no parameters: subsample by 2 and zero-pad the new channels.
The plain nets are the same stacks with the shortcut removed (paper Fig. 6, left).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional, Sequence

from .. import backend, nn
from ..nn.validation import check_ndim, check_size
from ._util import backward_chain


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """A 3x3 convolution with padding 1 and no bias (BatchNorm follows), ``stride`` 1 or 2."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """A 1x1 convolution with no bias: changes the channels (and with ``stride`` subsamples)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ShortcutA(nn.Module):
    """Option A shortcut: out = zero-pad channels(x[:, :, ::stride, ::stride]); no parameters.

    Shapes: x (N, C_in, H, W) -> out (N, C_out, ceil(H / stride), ceil(W / stride)); the
    C_out - C_in new channels are zeros, split evenly before and after the input's channels.

    Gradient: dL/dx[:, :, ::stride, ::stride] = dout[:, front:front + C_in], zero elsewhere.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ShortcutA: out_channels ({out_channels}) must be >= in_channels ({in_channels})")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.front = (out_channels - in_channels) // 2

    def forward(self, x):
        check_ndim("ShortcutA", x, (4,), "(N, C, H, W)")
        check_size("ShortcutA", x, 1, self.in_channels, "in_channels (dimension 1)")
        sub = x[:, :, ::self.stride, ::self.stride]
        xp = backend.get_array_module(x)
        out = xp.zeros((x.shape[0], self.out_channels) + sub.shape[2:], dtype=x.dtype)
        out[:, self.front:self.front + self.in_channels] = sub
        self.save_for_backward(x.shape)
        return out

    def backward(self, dout):
        shape = self.pop_saved()
        dx = backend.get_array_module(dout).zeros(shape, dtype=dout.dtype)
        dx[:, :, ::self.stride, ::self.stride] = dout[:, self.front:self.front + self.in_channels]
        return dx

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions:  y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    shortcut = identity, or ``downsample`` (projection or ShortcutA) where the shape changes.
    ``residual=False`` drops the shortcut (a "plain" block): y = relu(bn2(conv2(...))).
    Backward: the gradient after the last ReLU goes into both the body and the shortcut, and
    dL/dx is the sum of what comes out of the two.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None,
                 residual: bool = True) -> None:
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.downsample = downsample
        self.stride, self.residual = stride, residual

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu2(out)

    def backward(self, dout):
        d = self.relu2.backward(dout)
        dx = backward_chain(d, self.conv1, self.bn1, self.relu1, self.conv2, self.bn2)
        if self.residual:
            dx = dx + (d if self.downsample is None else self.downsample.backward(d))
        return dx


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (stride here, as torchvision "v1.5") -> 1x1 expand (x4), plus shortcut:

        y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))

    ``se`` (a module or None) rescales the body's channels before the sum (SE-ResNet).
    Backward as BasicBlock: the gradient splits into body and shortcut and the two dx add.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU()
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.se: Optional[nn.Module] = None
        self.relu3 = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu3(out)

    def backward(self, dout):
        d = self.relu3.backward(dout)
        body = d if self.se is None else self.se.backward(d)
        dx = backward_chain(body, self.conv1, self.bn1, self.relu1, self.conv2, self.bn2, self.relu2,
                            self.conv3, self.bn3)
        return dx + (d if self.downsample is None else self.downsample.backward(d))


class ResNet(nn.Sequential):
    """ImageNet ResNet: conv1 7x7/2 - bn1 - relu - maxpool 3x3/2 - layer1 .. layer4 - avgpool - fc.

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); any H, W >= 32 (the global
    average pool absorbs the size; 224 is the native one).

    Args:
        block (BasicBlock or Bottleneck class): the residual block; its ``expansion`` (1 or 4)
            multiplies each stage's 64, 128, 256, 512 planes to give its output channels.
        layers (list of 4 ints): blocks per stage, e.g. [3, 4, 6, 3] for ResNet-34 and -50.
        num_classes (int, default 1000): outputs of ``fc``.
        in_channels (int, default 3): input channels.
    """

    def __init__(self, block: Any, layers: Sequence[int], num_classes: int = 1000, in_channels: int = 3) -> None:
        stages, inplanes = [], 64
        for planes, blocks, stride in zip((64, 128, 256, 512), layers, (1, 2, 2, 2)):
            stage, inplanes = make_stage(block, inplanes, planes, blocks, stride)
            stages.append(stage)
        super().__init__(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)),
            ("bn1", nn.BatchNorm2d(64)),
            ("relu", nn.ReLU()),
            ("maxpool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ("layer1", stages[0]), ("layer2", stages[1]), ("layer3", stages[2]), ("layer4", stages[3]),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten(1)),
            ("fc", nn.Linear(512 * block.expansion, num_classes)),
        ]))
        init_convs_kaiming(self)


def make_stage(block: Any, inplanes: int, planes: int, blocks: int, stride: int) -> tuple[nn.Sequential, int]:
    """One stage (``layerK``): ``blocks`` blocks, the first with ``stride`` and a projection
    shortcut (1x1 conv + BN) where the shape changes. Returns (stage, its output channels)."""
    downsample = None
    if stride != 1 or inplanes != planes * block.expansion:
        downsample = nn.Sequential(conv1x1(inplanes, planes * block.expansion, stride),
                                   nn.BatchNorm2d(planes * block.expansion))
    stage = [block(inplanes, planes, stride, downsample)]
    stage += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*stage), planes * block.expansion


def init_convs_kaiming(model: nn.Module) -> None:
    """torchvision's ResNet init: conv weights ~ N(0, 2 / fan_out); BatchNorm weight 1, bias 0
    (already BatchNorm's default)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-18 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", 2015),
    torchvision's layout and state_dict keys.

    Stages: conv1 7x7/2 (64) - maxpool 3x3/2 - [2, 2, 2, 2] BasicBlocks of 64, 128, 256, 512
    channels (56, 28, 14, 7 pixels square) - global average pool - fc.
    Native input 3x224x224: 11,689,512 parameters, 1,814,073,344 multiply-adds (paper: 1.8 G).
    Deviations: none in the layout (see the module docstring for the init and biases).
    Keras has no ResNet-18.

    Args: num_classes (int, default 1000; each class adds 512 + 1 parameters), in_channels
    (int, default 3), as in :class:`ResNet`.
    """
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels)


def resnet34(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-34 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", 2015),
    torchvision's layout and state_dict keys; the lecture's plain-34 vs ResNet-34 comparison.

    Stages: conv1 7x7/2 (64) - maxpool 3x3/2 - [3, 4, 6, 3] BasicBlocks of 64, 128, 256, 512
    channels (56, 28, 14, 7 pixels square) - global average pool - fc.
    Native input 3x224x224: 21,797,672 parameters, 3,663,761,408 multiply-adds (paper: 3.6 G).
    Deviations: none in the layout (see the module docstring for the init and biases).
    Keras has no ResNet-34.

    Args: num_classes (int, default 1000; each class adds 512 + 1 parameters), in_channels
    (int, default 3), as in :class:`ResNet`.
    """
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels)


def resnet50(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-50 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", 2015),
    torchvision's layout ("v1.5") and state_dict keys.

    Stages: conv1 7x7/2 (64) - maxpool 3x3/2 - [3, 4, 6, 3] Bottlenecks of 64, 128, 256, 512
    planes (x4 = 256 .. 2048 output channels; 56, 28, 14, 7 pixels square) - global average
    pool - fc.
    Native input 3x224x224: 25,557,032 parameters, 4,089,184,256 multiply-adds.
    Deviations: the stride-2 of stages 2-4 sits in the 3x3 conv (paper: the first 1x1, 3.8 G
    multiply-adds); see the module docstring.
    Keras counts 25,636,712 parameters: + 53,120 BatchNorm moving statistics + 26,560 conv biases
    (``keras.applications.ResNet50``, v1: a bias on every conv, 26,560 = the BatchNorm channels).

    Args: num_classes (int, default 1000; each class adds 2048 + 1 parameters), in_channels
    (int, default 3), as in :class:`ResNet`.
    """
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels)


def resnet101(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-101 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", 2015),
    torchvision's layout ("v1.5") and state_dict keys.

    Stages: conv1 7x7/2 (64) - maxpool 3x3/2 - [3, 4, 23, 3] Bottlenecks of 64, 128, 256, 512
    planes (x4 output channels) - global average pool - fc.
    Native input 3x224x224: 44,549,160 parameters, 7,801,405,440 multiply-adds.
    Deviations: the stride-2 of stages 2-4 sits in the 3x3 conv (paper: 7.6 G multiply-adds).
    Keras counts 44,707,176 parameters: + 105,344 BatchNorm moving statistics + 52,672 conv biases.

    Args: num_classes (int, default 1000; each class adds 2048 + 1 parameters), in_channels
    (int, default 3), as in :class:`ResNet`.
    """
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels)


def resnet152(num_classes: int = 1000, in_channels: int = 3) -> nn.Module:
    """ResNet-152 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", 2015),
    torchvision's layout ("v1.5") and state_dict keys.

    Stages: conv1 7x7/2 (64) - maxpool 3x3/2 - [3, 8, 36, 3] Bottlenecks of 64, 128, 256, 512
    planes (x4 output channels) - global average pool - fc.
    Native input 3x224x224: 60,192,808 parameters, 11,513,626,624 multiply-adds.
    Deviations: the stride-2 of stages 2-4 sits in the 3x3 conv (paper: 11.3 G multiply-adds).
    Keras counts 60,419,944 parameters: + 151,424 BatchNorm moving statistics + 75,712 conv biases.

    Args: num_classes (int, default 1000; each class adds 2048 + 1 parameters), in_channels
    (int, default 3), as in :class:`ResNet`.
    """
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels)


# ----------------------------------------------------------------------------- CIFAR-10 nets


class CifarResNet(nn.Sequential):
    """He et al. section 4.2: depth 6n + 2, stages of n blocks with width, 2 width, 4 width
    channels on 32x32, 16x16, 8x8 maps; option A shortcuts. ``residual=False``: the plain net.

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); native H = W = 32.

    Args:
        depth (int): 6n + 2 layers with weights (20, 32, 44, 56, 110; 8 for a tiny test net).
        num_classes (int, default 10): outputs of ``fc``.
        in_channels (int, default 3): input channels.
        width (int, default 16): channels of the first stage (the paper's 16).
        residual (bool, default True): False drops every shortcut (the paper's plain nets).
    """

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3, width: int = 16,
                 residual: bool = True) -> None:
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        stages, inplanes = [], width
        for planes, stride in ((width, 1), (2 * width, 2), (4 * width, 2)):
            blocks = []
            for i in range(n):
                s = stride if i == 0 else 1
                shortcut = ShortcutA(inplanes, planes, s) if (s != 1 or inplanes != planes) and residual else None
                blocks.append(BasicBlock(inplanes, planes, s, shortcut, residual=residual))
                inplanes = planes
            stages.append(nn.Sequential(*blocks))
        super().__init__(OrderedDict([
            ("conv1", conv3x3(in_channels, width)),
            ("bn1", nn.BatchNorm2d(width)),
            ("relu", nn.ReLU()),
            ("layer1", stages[0]), ("layer2", stages[1]), ("layer3", stages[2]),
            ("avgpool", nn.AdaptiveAvgPool2d((1, 1))),
            ("flatten", nn.Flatten(1)),
            ("fc", nn.Linear(4 * width, num_classes)),
        ]))
        self.depth = depth
        init_convs_kaiming(self)


def resnet20(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """ResNet-20 for CIFAR-10 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", 2015, section 4.2; depth 6n + 2 with n = 3).

    Stages: conv 3x3 (16) - three stages of 3 BasicBlocks with 16, 32, 64 channels on 32x32,
    16x16, 8x8 maps (option A shortcuts: subsample and zero-pad, no parameters) - global
    average pool - fc.
    Native input 3x32x32: 269,722 parameters, 40,551,040 multiply-adds (paper Table 6: 0.27M).
    Deviations: none (torchvision has no CIFAR ResNets; the keys follow its ImageNet ones).

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(20, num_classes, in_channels, width)


def resnet32(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """ResNet-32 for CIFAR-10 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", 2015, section 4.2; depth 6n + 2 with n = 5).

    Stages: conv 3x3 (16) - three stages of 5 BasicBlocks with 16, 32, 64 channels on 32x32,
    16x16, 8x8 maps (option A shortcuts: subsample and zero-pad, no parameters) - global
    average pool - fc.
    Native input 3x32x32: 464,154 parameters, 68,862,592 multiply-adds (paper Table 6: 0.46M).
    Deviations: none (torchvision has no CIFAR ResNets; the keys follow its ImageNet ones).

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(32, num_classes, in_channels, width)


def resnet44(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """ResNet-44 for CIFAR-10 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", 2015, section 4.2; depth 6n + 2 with n = 7).

    Stages: conv 3x3 (16) - three stages of 7 BasicBlocks with 16, 32, 64 channels on 32x32,
    16x16, 8x8 maps (option A shortcuts: subsample and zero-pad, no parameters) - global
    average pool - fc.
    Native input 3x32x32: 658,586 parameters, 97,174,144 multiply-adds (paper Table 6: 0.66M).
    Deviations: none (torchvision has no CIFAR ResNets; the keys follow its ImageNet ones).

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(44, num_classes, in_channels, width)


def resnet56(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """ResNet-56 for CIFAR-10 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", 2015, section 4.2; depth 6n + 2 with n = 9).

    Stages: conv 3x3 (16) - three stages of 9 BasicBlocks with 16, 32, 64 channels on 32x32,
    16x16, 8x8 maps (option A shortcuts: subsample and zero-pad, no parameters) - global
    average pool - fc.
    Native input 3x32x32: 853,018 parameters, 125,485,696 multiply-adds (paper Table 6: 0.85M).
    Deviations: none (torchvision has no CIFAR ResNets; the keys follow its ImageNet ones).

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(56, num_classes, in_channels, width)


def resnet110(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """ResNet-110 for CIFAR-10 (He, Zhang, Ren & Sun, "Deep Residual Learning for Image
    Recognition", 2015, section 4.2; depth 6n + 2 with n = 18).

    Stages: conv 3x3 (16) - three stages of 18 BasicBlocks with 16, 32, 64 channels on 32x32,
    16x16, 8x8 maps (option A shortcuts: subsample and zero-pad, no parameters) - global
    average pool - fc.
    Native input 3x32x32: 1,727,962 parameters, 252,887,680 multiply-adds (paper Table 6: 1.7M).
    Deviations: none (torchvision has no CIFAR ResNets; the keys follow its ImageNet ones).

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(110, num_classes, in_channels, width)


def plain20(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Plain-20 for CIFAR-10 (He, Zhang, Ren & Sun, 2015, section 4.2 and Fig. 6): ResNet-20
    with every shortcut removed, the net whose training error rises with depth.

    Stages: conv 3x3 (16) - three stages of 3 plain blocks (two 3x3 convs, no addition) with
    16, 32, 64 channels on 32x32, 16x16, 8x8 maps - global average pool - fc.
    Native input 3x32x32: 269,722 parameters, 40,551,040 multiply-adds (the same as resnet20:
    option A shortcuts have no parameters and their additions count no multiply-adds).
    Deviations: none.

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(20, num_classes, in_channels, width, residual=False)


def plain32(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Plain-32 for CIFAR-10 (He, Zhang, Ren & Sun, 2015, section 4.2 and Fig. 6): ResNet-32
    with every shortcut removed, the net whose training error rises with depth.

    Stages: conv 3x3 (16) - three stages of 5 plain blocks (two 3x3 convs, no addition) with
    16, 32, 64 channels on 32x32, 16x16, 8x8 maps - global average pool - fc.
    Native input 3x32x32: 464,154 parameters, 68,862,592 multiply-adds (the same as resnet32:
    option A shortcuts have no parameters and their additions count no multiply-adds).
    Deviations: none.

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(32, num_classes, in_channels, width, residual=False)


def plain44(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Plain-44 for CIFAR-10 (He, Zhang, Ren & Sun, 2015, section 4.2 and Fig. 6): ResNet-44
    with every shortcut removed, the net whose training error rises with depth.

    Stages: conv 3x3 (16) - three stages of 7 plain blocks (two 3x3 convs, no addition) with
    16, 32, 64 channels on 32x32, 16x16, 8x8 maps - global average pool - fc.
    Native input 3x32x32: 658,586 parameters, 97,174,144 multiply-adds (the same as resnet44:
    option A shortcuts have no parameters and their additions count no multiply-adds).
    Deviations: none.

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(44, num_classes, in_channels, width, residual=False)


def plain56(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Plain-56 for CIFAR-10 (He, Zhang, Ren & Sun, 2015, section 4.2 and Fig. 6): ResNet-56
    with every shortcut removed, the net whose training error rises with depth.

    Stages: conv 3x3 (16) - three stages of 9 plain blocks (two 3x3 convs, no addition) with
    16, 32, 64 channels on 32x32, 16x16, 8x8 maps - global average pool - fc.
    Native input 3x32x32: 853,018 parameters, 125,485,696 multiply-adds (the same as resnet56:
    option A shortcuts have no parameters and their additions count no multiply-adds).
    Deviations: none.

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(56, num_classes, in_channels, width, residual=False)


def plain110(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Plain-110 for CIFAR-10 (He, Zhang, Ren & Sun, 2015, section 4.2 and Fig. 6): ResNet-110
    with every shortcut removed, the net whose training error rises with depth.

    Stages: conv 3x3 (16) - three stages of 18 plain blocks (two 3x3 convs, no addition) with
    16, 32, 64 channels on 32x32, 16x16, 8x8 maps - global average pool - fc.
    Native input 3x32x32: 1,727,962 parameters, 252,887,680 multiply-adds (the same as resnet110:
    option A shortcuts have no parameters and their additions count no multiply-adds).
    Deviations: none.

    Args: num_classes (int, default 10), in_channels (int, default 3), width (int, default 16;
    the counts above are for 16), as in :class:`CifarResNet`.
    """
    return CifarResNet(110, num_classes, in_channels, width, residual=False)
