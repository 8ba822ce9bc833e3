"""Datasets, mini-batch loading and augmentation.

* real data: :func:`mnist`, :func:`fashion_mnist`, :func:`cifar10` -> :class:`ImageDataset`
  (files found via ``root=`` / ``NPCNN_DATA`` / ``~/.cache/npcnn`` or downloaded, checksummed);
* synthetic data: :func:`shapes` (images and segmentation masks), :func:`signals` (1-D);
* PyTorch's map-style dataset protocol: :class:`Dataset`, :class:`TensorDataset`, :class:`Subset`,
  :class:`ConcatDataset`, :func:`random_split`, :func:`default_collate`;
* batching: :class:`DataLoader` (whole batches by one fancy indexing for array datasets, one
  sample at a time for every other dataset);
* augmentation: :mod:`npcnn.data.transforms`.
"""

from . import transforms
from .collate import CollateError, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
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
from .loader import DataLoader
from .synthetic import SHAPE_CLASSES, SIGNAL_CLASSES, shapes, signals
from .synthetic_digits import synthetic_digits
from .synthetic_text import marker_order
