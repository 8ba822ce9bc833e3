"""Parameter counts the way other frameworks report them, for comparing with their tables.

npcnn (like PyTorch) counts parameters: the arrays a gradient updates. Keras's ``model.summary()``
"Total params" also counts BatchNorm's moving mean and moving variance (2 numbers per channel,
its "non-trainable params"), and some Keras models carry a bias on convolutions that npcnn's
(torchvision's) do not: ResNet50/101/152 "v1" put one on every conv, each followed by a
BatchNorm, so their number equals the BatchNorm channels. Hence, for example,

    resnet50:    25,557,032 + 53,120 moving statistics + 26,560 conv biases = 25,636,712 (Keras)
    densenet121:  7,978,856 + 83,648 moving statistics                      =  8,062,504 (Keras)

Each model constructor's docstring gives its Keras twin's count and the difference.
"""

from __future__ import annotations

from .. import nn
from ..nn.norm import _BatchNorm


def batchnorm_channels(model: nn.Module) -> int:
    """The number of BatchNorm channels in ``model`` (sum of ``num_features`` over its BatchNorm
    layers): each has 2 parameters (weight, bias) and 2 moving statistics per channel."""
    return sum(m.num_features for m in model.modules() if isinstance(m, _BatchNorm))


def biasless_conv_channels(model: nn.Module) -> int:
    """Output channels of the convolutions without a bias: the biases Keras's ResNet v1 adds."""
    return sum(int(m.weight.shape[0]) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.bias is None)


def keras_parameter_count(model: nn.Module, conv_biases: bool = False) -> int:
    """What Keras's ``model.summary()`` reports as "Total params" for the same architecture.

    Args:
        model (Module): an npcnn model.
        conv_biases (bool, default False): also count a bias for every convolution that has
            none (True for Keras's ResNet50, ResNet101, ResNet152 "v1"; False for its
            DenseNets, MobileNetV2 and the V2 ResNets).

    Returns:
        int: ``model.num_parameters()`` + 2 * BatchNorm channels (moving mean and variance)
        [+ the bias-less convolutions' output channels].
    """
    total = model.num_parameters() + 2 * batchnorm_channels(model)
    return total + biasless_conv_channels(model) if conv_biases else total
