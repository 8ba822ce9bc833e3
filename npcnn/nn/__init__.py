"""Layers with explicit forward and backward passes, PyTorch's names and layouts."""

from . import init, utils
from .activation import ELU, GELU, Hardswish, LeakyReLU, LogSoftmax, ReLU, ReLU6, Sigmoid, SiLU, Softmax, Tanh
from .blocks import SqueezeExcitation
from .channel_pool import MaxPoolChannels
from .composition import Add, Concat, Residual
from .container import Flatten, Identity, ModuleDict, ModuleList, ParameterList, Reshape, Sequential, Unflatten
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .dropout import Dropout, Dropout2d
from .embedding import Embedding
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, LossValue, MSELoss, NLLLoss
from .module import Module, no_input_grad
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, LocalResponseNorm
from .parameter import Parameter
from .pooling import (
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool2d,
    LPPool1d,
    LPPool2d,
    MaxPool1d,
    MaxPool2d,
)
from .upsample import Upsample
