"""Layers with explicit forward and backward passes, PyTorch's names and layouts."""

from . import init
from .activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import Flatten, Identity, ModuleList, Reshape, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module
from .parameter import Parameter
