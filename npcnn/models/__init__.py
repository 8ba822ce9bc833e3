"""Classic CNN architectures, one short file per family, with torchvision's state_dict keys.

    lenet5                                   LeNet-5 (1998)
    alexnet, zfnet                           AlexNet (2012), ZFNet (2013)
    alexnet_original                         AlexNet as published (two groups, LRN, 227x227)
    vgg11, vgg13, vgg16, vgg19               VGG (2014)
    googlenet                                Inception v1 (2014)
    resnet18 .. resnet152                    ResNet, ImageNet (2015)
    resnet20 .. resnet110, plain20 .. 110    ResNet and plain nets for CIFAR-10 (2015, sec. 4.2)
    densenet121, densenet169, densenet201    DenseNet-BC (2017)
    se_resnet50                              SE-ResNet-50 (2017)
    mobilenet_v2                             MobileNetV2 (2018)
    fcn8s, fcn_tiny, convolutionize          fully convolutional networks (2015)
    mlp                                      multilayer perceptron

``get_model("resnet50", num_classes=10)`` builds one by name; ``list_models()`` lists the names;
``input_shape(name)`` gives the native input; ``profile(model, input_shape)`` / ``summary(...)``
report parameters, output shapes and multiply-adds (MACs); ``keras_parameter_count(model)`` the
total Keras's ``summary()`` would print.

Every constructor's docstring gives the paper (authors, year), the stage layout, every deviation
from the paper, and a line

    Native input CxHxW: P parameters, M multiply-adds.

with the counts of ``profile(get_model(name), input_shape(name))`` (default ``num_classes``),
checked by ``tests/test_models_docs.py``; where Keras ships the same architecture, a line
``Keras counts K parameters: + S BatchNorm moving statistics [+ B conv biases].`` says how its
count differs (see :mod:`npcnn.models.counting`).
"""

from __future__ import annotations

from typing import Any, Callable

from .alexnet import AlexNet, AlexNetOriginal, ZFNet, alexnet, alexnet_original, zfnet
from .counting import batchnorm_channels, biasless_conv_channels, keras_parameter_count
from .densenet import DenseLayer, DenseNet, densenet121, densenet169, densenet201, dense_block, transition
from .fcn import FCN8s, SkipFusion, bilinear_kernel_, convolutionize, fcn8s, fcn_tiny
from .googlenet import BasicConv2d, GoogLeNet, Inception, googlenet
from .lenet import LeNet5, lenet5
from .mlp import mlp
from .mobilenet import InvertedResidual, MobileNetV2, mobilenet_v2
from ..nn.module import Module
from ..nn.summary import LayerProfile, Profile, layer_macs, profile, summary
from .resnet import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    ResNet,
    ShortcutA,
    plain20,
    plain32,
    plain44,
    plain56,
    plain110,
    resnet18,
    resnet20,
    resnet32,
    resnet34,
    resnet44,
    resnet50,
    resnet56,
    resnet101,
    resnet110,
    resnet152,
)
from .senet import SEBottleneck, se_resnet50
from .vgg import VGG, vgg11, vgg13, vgg16, vgg19

# name -> constructor; every one accepts keyword arguments such as num_classes and in_channels
MODELS: dict[str, Callable[..., Module]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "alexnet_original": alexnet_original,
    "zfnet": zfnet,
    "vgg11": vgg11,
    "vgg13": vgg13,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "googlenet": googlenet,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "plain20": plain20,
    "plain32": plain32,
    "plain44": plain44,
    "plain56": plain56,
    "plain110": plain110,
    "densenet121": densenet121,
    "densenet169": densenet169,
    "densenet201": densenet201,
    "se_resnet50": se_resnet50,
    "mobilenet_v2": mobilenet_v2,
    "fcn8s": fcn8s,
    "fcn_tiny": fcn_tiny,
}

# the input each model is built for (channels, height, width), for summaries and tests
INPUT_SHAPES = {name: (3, 224, 224) for name in MODELS}
INPUT_SHAPES.update({"lenet5": (1, 32, 32), "fcn_tiny": (3, 64, 64), "alexnet_original": (3, 227, 227)})
INPUT_SHAPES.update({f"{kind}{depth}": (3, 32, 32) for kind in ("resnet", "plain") for depth in (20, 32, 44, 56, 110)})


def list_models() -> list[str]:
    """The names ``get_model`` accepts, sorted."""
    return sorted(MODELS)


def get_model(name: str, **kwargs: Any) -> Any:
    """Build the model called ``name`` (see ``list_models()``), passing ``kwargs`` on."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(list_models())}")
    return MODELS[name](**kwargs)


def input_shape(name: str) -> tuple[int, ...]:
    """The native input shape (C, H, W) of the model called ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(list_models())}")
    return INPUT_SHAPES[name]
