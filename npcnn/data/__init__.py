"""Datasets, mini-batch loading and augmentation.

* real data: :func:`mnist`, :func:`fashion_mnist`, :func:`cifar10` -> :class:`ImageDataset`
  (files found via ``root=`` / ``NPCNN_DATA`` / ``~/.cache/npcnn`` or downloaded, checksummed);
* synthetic data: :func:`shapes` (images and segmentation masks), :func:`signals` (1-D);
* batching: :class:`DataLoader`, :class:`TensorDataset`;
* augmentation: :mod:`npcnn.data.transforms`.
"""

from . import transforms
from .datasets import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    ImageDataset,
    cifar10,
    fashion_mnist,
    mnist,
)
from .download import ChecksumError, DatasetNotFoundError, cache_dir
from .idx import CorruptFileError, read_idx
from .loader import DataLoader, TensorDataset
from .synthetic import SHAPE_CLASSES, SIGNAL_CLASSES, shapes, signals
from .synthetic_digits import synthetic_digits
