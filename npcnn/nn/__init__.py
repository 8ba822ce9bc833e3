"""Layers with explicit forward and backward passes, PyTorch's names and layouts."""

from . import init
from .container import Flatten, Identity, ModuleList, Reshape, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .linear import Linear
from .module import Module
from .parameter import Parameter
