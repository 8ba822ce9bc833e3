"""Layers with explicit forward and backward passes, PyTorch's names and layouts."""

from . import init, utils
from .container import Flatten, Identity, ModuleList, Reshape, Sequential
from .linear import Linear
from .module import Module
from .parameter import Parameter
