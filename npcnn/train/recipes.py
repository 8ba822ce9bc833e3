"""Training recipes: the datasets, splits, transforms, loaders and optimizers the CLI and the
example scripts share, so ``python -m npcnn train`` and ``examples/*.py`` train the same way.

    train_set, test_set = load_dataset("mnist")
    loaders = make_loaders(train_set, test_set, "mnist", batch_size=128, image_size=32, val_size=5000)
    loaders.train, loaders.val, loaders.test          # fit(loaders.train, val_loader=loaders.val)

The validation split is held out of the *training* set (seeded, so a rerun holds out the same
digits): checkpoints and early stopping choose by it, and the test set is touched once, at the
end, for the figure that is reported.
"""

from collections import namedtuple
from typing import Any, Iterable, Optional, Tuple

import numpy as np

# Standardization constants (per-channel mean and std of the training set in [0, 1]).
DATASET_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
DATASETS = tuple(sorted(DATASET_STATS))
OPTIMIZERS = ("adam", "adamw", "sgd")
DEFAULT_VAL_SIZE = 5000

Loaders = namedtuple("Loaders", ["train", "val", "test"])
Loaders.__doc__ = """The (train, val, test) DataLoaders of a recipe; ``val`` is None without a validation split."""


def load_dataset(name: str, root: Optional[str] = None, download: bool = True) -> Tuple[Any, Any]:
    """(train, test) ImageDatasets of uint8 images for ``name`` (one of :data:`DATASETS`).

    ``root``: the folder holding the files (else ``NPCNN_DATA``, then the user cache);
    ``download``: fetch missing files (checksummed) into ``root`` or the cache. A missing file
    with ``download=False`` or offline is a :class:`npcnn.data.DatasetNotFoundError` saying where
    it looked and how to provide it.
    """
    from .. import data

    readers = {"mnist": data.mnist, "fashion-mnist": data.fashion_mnist, "cifar10": data.cifar10}
    if name not in readers:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    reader = readers[name]
    return reader(root=root, train=True, download=download), reader(root=root, train=False, download=download)


def build_transforms(dataset: str, augment: bool, image_size: int,
                     crop_padding: Optional[int] = None) -> Tuple[Any, Any]:
    """(train, eval) per-batch transforms: optional augmentation -- a random crop with zero padding
    (``crop_padding``, default image_size // 8, at least 2) and, except for digits, a horizontal
    flip -- then standardization with the dataset's statistics (the eval transform only
    standardizes)."""
    from ..data import transforms as T

    mean, std = DATASET_STATS[dataset]
    normalize = T.Normalize(mean, std)
    steps: list = []
    if augment:
        padding = max(2, image_size // 8) if crop_padding is None else crop_padding
        steps.append(T.RandomCrop(image_size, padding=padding))
        if dataset != "mnist":  # a mirrored shirt or truck keeps its class; a mirrored digit may not
            steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [normalize]), normalize


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad uint8 images (N, C, H, W) symmetrically to ``size`` x ``size`` (28 -> 32 for LeNet-5)."""
    pad = (size - images.shape[-1]) // 2
    if pad <= 0:
        return images
    return np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def split_validation(images: np.ndarray, labels: np.ndarray, val_size: int, seed: int = 0) -> Tuple[tuple, tuple]:
    """((train_images, train_labels), (val_images, val_labels)): ``val_size`` examples drawn at
    random (NumPy generator seeded with ``seed``) from a training set, the rest kept in their order.

    ``val_size`` 0 gives an empty validation split; it must leave at least one training example.
    """
    n, val_size = len(labels), int(val_size)
    if not 0 <= val_size < n:
        raise ValueError(f"split_validation: val_size must be in [0, {n - 1}] for {n} training examples, "
                         f"got {val_size}")
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng(seed).permutation(n)[:val_size]] = True
    return (images[~held], labels[~held]), (images[held], labels[held])


def make_loaders(train_set: Any, test_set: Any, dataset: str, batch_size: int = 128, seed: int = 0,
                 augment: bool = False, image_size: Optional[int] = None, crop_padding: Optional[int] = None,
                 subset: int = 0, test_subset: int = 0, test_batch_size: int = 500,
                 val_size: int = DEFAULT_VAL_SIZE) -> "Loaders":
    """:class:`Loaders` (train, val, test) over uint8 images kept in memory, converted to float
    and standardized per batch.

    ``val_size`` examples are held out of ``train_set`` (seeded by ``seed``; 0: no validation
    loader); ``subset`` / ``test_subset`` then keep the first N remaining training / test images
    (0: all). The train loader shuffles (seeded) and, with ``augment``, augments
    (:func:`build_transforms`); images are zero-padded to ``image_size`` (default: as they are).
    """
    from ..data import DataLoader

    size = image_size or train_set.images.shape[-1]
    (train_x, train_y), (val_x, val_y) = split_validation(train_set.images, train_set.labels, val_size, seed)
    if subset:
        train_x, train_y = train_x[:subset], train_y[:subset]
    test_x, test_y = test_set.images, test_set.labels
    if test_subset:
        test_x, test_y = test_x[:test_subset], test_y[:test_subset]
    train, val, test = ((pad_to(x, size), y) for x, y in ((train_x, train_y), (val_x, val_y), (test_x, test_y)))
    train_tf, eval_tf = build_transforms(dataset, augment, size, crop_padding)
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, seed=seed, transform=train_tf,
                              to_float=True)
    val_loader = DataLoader(val, batch_size=test_batch_size, transform=eval_tf, to_float=True) if val_size else None
    test_loader = DataLoader(test, batch_size=test_batch_size, transform=eval_tf, to_float=True)
    return Loaders(train_loader, val_loader, test_loader)


def make_optimizer(name: str, params: Iterable, lr: float, weight_decay: float = 0.0) -> Any:
    """The optimizer of a recipe: ``"sgd"`` (Nesterov momentum 0.9), ``"adam"`` or ``"adamw"``."""
    from .. import optim

    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def all_finite(model: Any) -> bool:
    """Whether every floating-point parameter and buffer of ``model`` is finite (no NaN, no inf):
    checked before a trained model is saved, so a run that diverged never writes its weights."""
    from .. import backend

    for value in model.state_dict().values():
        array = backend.to_numpy(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            return False
    return True
