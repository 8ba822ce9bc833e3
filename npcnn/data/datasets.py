"""Real image datasets: MNIST, Fashion-MNIST and CIFAR-10, read from their original files.

Each loader returns an :class:`ImageDataset` for one split::

    train = npcnn.data.mnist(train=True)              # uint8 images (60000, 1, 28, 28)
    test = npcnn.data.mnist(train=False, normalize=True)   # float32 in [0, 1]
    train.images, train.labels, train.classes, len(train), train[idx]

Files are found or downloaded as described in :mod:`npcnn.data.download` (``root=``, then
``NPCNN_DATA``, then ``~/.cache/npcnn``, then the well-known mirrors, checksum-verified).
"""

import os
import pathlib
import shutil
import tarfile
import tempfile
from typing import Any, Optional, Union

import numpy as np

from .. import backend
from . import cifar, download
from ._checks import check_bool, check_image_dtype, check_root
from .dataset import Dataset
from .download import DatasetNotFoundError
from .idx import CorruptFileError, read_idx


class ImageDataset(Dataset):
    """One split of an image-classification dataset, held in memory (a map-style :class:`Dataset`).

    Attributes: ``images`` (N, C, H, W) uint8 or float, ``labels`` (N,) int64, ``classes``
    (list of class names, ``classes[label]``), ``name``, ``train`` (bool).
    ``dataset[idx]`` returns ``(images[idx], labels[idx])`` for an int, slice or index array
    (``batch_indexing = True``), so a :class:`npcnn.data.DataLoader` takes a whole batch in one
    indexing.
    """

    batch_indexing = True

    def __init__(self, images, labels, classes, name="", train=True):
        who = f"ImageDataset({name!r})" if name else "ImageDataset"
        for what, a, ndims in (("images", images, (2, 3, 4)), ("labels", labels, (1,))):
            if not hasattr(a, "ndim") or a.ndim not in ndims:
                got = f"shape {tuple(a.shape)}" if hasattr(a, "shape") else type(a).__name__
                raise ValueError(f"{who}: {what} must be an array of {' or '.join(f'{d}-D' for d in ndims)}, got {got}")
        if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
            raise TypeError(f"{who}: classes must be a list of class names, got {type(classes).__name__}")
        if len(images) != len(labels):
            raise ValueError(f"{who}: {len(images)} images but {len(labels)} labels")
        self.images, self.labels, self.classes = images, labels, list(classes)
        self.name, self.train = name, train

    def __len__(self):
        """Number of images."""
        return len(self.labels)

    def __getitem__(self, idx):
        """``(images[idx], labels[idx])`` for an int, slice or index array ``idx``."""
        return self.images[idx], self.labels[idx]

    def __repr__(self):
        split = "train" if self.train else "test"
        return (f"ImageDataset({self.name!r}, {split}, images={tuple(self.images.shape)} {self.images.dtype}, "
                f"classes={len(self.classes)})")


def _as_float(images, normalize, dtype):
    """uint8 images as they are, or scaled to [0, 1] in ``dtype`` (the default float dtype) with
    a single conversion (one float array, scaled in place)."""
    if not normalize:
        if dtype is not None and np.dtype(dtype) != images.dtype:
            return images.astype(dtype)
        return images
    out = images.astype(dtype or backend.get_default_dtype())
    out *= 1.0 / 255.0  # a Python float keeps the dtype
    return out


# ----------------------------------------------------------------------------- MNIST family

MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
FASHION_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]

# file name -> (sha256, md5) of the original releases
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                   "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                   "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                  "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                  "ec29112dd5afa0611ce80d1b7f02629c"),
}
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                                   "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                                   "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                                  "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                                  "bb300cfdad3c16e7a12a480ee83cd310"),
}
MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _idx_file(name, folders, mirrors, files, root, download_missing, what):
    """Path of one IDX file: the .gz, or an already-uncompressed copy, or downloaded."""
    for candidate in (name, name[:-3]):  # also accept "train-images-idx3-ubyte" unpacked
        found = download.locate(candidate, folders, root)
        if found is not None:
            return found
    sha256, md5 = files[name]
    return download.fetch(name, folders, [m + name for m in mirrors], root=root, download_missing=download_missing,
                          sha256=sha256, md5=md5, what=what)


def _load_idx_pair(what, folders, mirrors, files, classes, root, train, normalize, dtype, download_missing):
    prefix = "train" if train else "t10k"
    n = 60000 if train else 10000
    args = (folders, mirrors, files, root, download_missing, what)
    labels_path = _idx_file(f"{prefix}-labels-idx1-ubyte.gz", *args)
    images_path = _idx_file(f"{prefix}-images-idx3-ubyte.gz", *args)
    labels = read_idx(labels_path, expected_shape=(n,))
    if labels.max() >= len(classes):
        raise CorruptFileError(f"{labels_path}: label {labels.max()} out of range 0..{len(classes) - 1}")
    images = read_idx(images_path, expected_shape=(n, 28, 28))
    images = _as_float(images[:, None], normalize, dtype)  # (N, 1, 28, 28): a view, then one conversion
    return ImageDataset(images, labels.astype(np.int64), classes, name=what, train=train)


def _check_loader_args(who, root, train, normalize, dtype, download):
    check_root(who, root)
    check_bool(who, "train", train)
    check_bool(who, "download", download)
    return check_image_dtype(who, dtype, check_bool(who, "normalize", normalize))


def mnist(root: Optional[Union[str, os.PathLike]] = None, train: bool = True, normalize: bool = False,
          dtype: Any = None, download: bool = True) -> ImageDataset:
    """MNIST digits as uint8 pixels 0-255 (floats in [0, 1] with ``normalize=True``), labels 0-9.

    60000 train / 10000 test handwritten digits (LeCun et al. 1998), images (N, 1, 28, 28).

    Args:
        root: folder holding the files (``<root>/mnist/`` or ``<root>/``); ``None`` searches
            ``NPCNN_DATA`` and then ``~/.cache/npcnn`` (see :mod:`npcnn.data.download`).
        train: the 60000-image training split (True) or the 10000-image test split (False).
        normalize: False keeps the files' uint8 pixels 0-255 (4x less memory; a
            :class:`DataLoader` with ``to_float=True`` converts per batch); True gives floats in [0, 1].
        dtype: with ``normalize=True`` the float dtype (default: npcnn's default float dtype);
            without, ``None`` keeps uint8 and a float or wide-enough int dtype converts 0-255 values.
        download: fetch missing files from the mirrors (checksum-verified); False never touches
            the network and raises :class:`DatasetNotFoundError` saying where files were looked for.

    Returns:
        An :class:`ImageDataset` with ``images`` (N, 1, 28, 28), ``labels`` (N,) int64 and
        ``classes`` ``["0", ..., "9"]``.
    """
    dtype = _check_loader_args("mnist", root, train, normalize, dtype, download)
    return _load_idx_pair("mnist", ["mnist", "MNIST"], MNIST_MIRRORS, MNIST_FILES, MNIST_CLASSES,
                          root, train, normalize, dtype, download)


def fashion_mnist(root: Optional[Union[str, os.PathLike]] = None, train: bool = True, normalize: bool = False,
                  dtype: Any = None, download: bool = True) -> ImageDataset:
    """Fashion-MNIST as uint8 pixels 0-255 (floats in [0, 1] with ``normalize=True``), 10 classes.

    60000 train / 10000 test grayscale 28 x 28 article photos (Xiao et al. 2017, Zalando),
    images (N, 1, 28, 28). Same arguments, layout and return value as :func:`mnist` (files in
    ``<root>/fashion-mnist/``); class names in ``FASHION_MNIST_CLASSES``.
    """
    dtype = _check_loader_args("fashion_mnist", root, train, normalize, dtype, download)
    return _load_idx_pair("fashion-mnist", ["fashion-mnist", "fashion_mnist", "FashionMNIST"], FASHION_MIRRORS,
                          FASHION_MNIST_FILES, FASHION_MNIST_CLASSES, root, train, normalize, dtype, download)


# ----------------------------------------------------------------------------- CIFAR-10

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDERS = ["cifar-10", "cifar10", "CIFAR10"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _find_dir(name, root):
    """The first existing ``<root>/<dataset folder>/<name>`` or ``<root>/<name>`` directory."""
    for base in download.search_roots(root):
        for path in [base / f / name for f in CIFAR10_FOLDERS] + [base / name]:
            if path.is_dir():
                return path
    return None


def _extract_cifar(archive):
    """Unpack ``cifar-10-batches-py/`` from the archive beside it (regular files only, no paths
    outside the folder), into a temporary folder first so a partial extraction is never used."""
    target = archive.parent / "cifar-10-batches-py"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=archive.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                parts = pathlib.PurePosixPath(member.name).parts
                if member.isfile() and len(parts) == 2 and parts[0] == "cifar-10-batches-py" and parts[1] != "..":
                    with tar.extractfile(member) as src, open(tmp / parts[1], "wb") as dst:
                        shutil.copyfileobj(src, dst)
        if not (tmp / "test_batch").is_file():
            raise CorruptFileError(f"{archive}: no cifar-10-batches-py/test_batch inside")
        os.replace(tmp, target)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise CorruptFileError(f"{archive}: cannot extract ({err})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _cifar_source(root, download_missing):
    """('py' | 'bin', folder) of the CIFAR-10 batches, extracting or downloading the archive if needed."""
    for kind, name in (("py", "cifar-10-batches-py"), ("bin", "cifar-10-batches-bin")):
        folder = _find_dir(name, root)
        if folder is not None:
            return kind, folder
    archive = download.fetch("cifar-10-python.tar.gz", CIFAR10_FOLDERS, [CIFAR10_URL], root=root,
                             download_missing=download_missing, md5=CIFAR10_MD5, what="cifar10")
    return "py", _extract_cifar(archive)


def cifar10(root: Optional[Union[str, os.PathLike]] = None, train: bool = True, normalize: bool = False,
            dtype: Any = None, download: bool = True) -> ImageDataset:
    """CIFAR-10 as uint8 pixels 0-255 (floats in [0, 1] with ``normalize=True``), 10 classes.

    50000 train / 10000 test colour images (N, 3, 32, 32) (Krizhevsky 2009). Reads the python
    version (``cifar-10-batches-py/``, unpickled safely: only NumPy's array reconstructions are
    allowed) or the binary version (``cifar-10-batches-bin/``), or unpacks / downloads
    ``cifar-10-python.tar.gz`` (md5-checked). Arguments and return value as in :func:`mnist`
    (``train``: the five data batches, or the test batch); class names from ``batches.meta``.
    """
    dtype = _check_loader_args("cifar10", root, train, normalize, dtype, download)
    kind, folder = _cifar_source(root, download)
    names = cifar.TRAIN_BATCHES if train else cifar.TEST_BATCHES
    images, labels = [], []
    for name in names:
        path = folder / (name + ".bin" if kind == "bin" else name)
        if not path.is_file():
            raise DatasetNotFoundError(f"cifar10: {path} is missing (the folder {folder} is incomplete)")
        x, y = (cifar.read_bin_batch if kind == "bin" else cifar.read_py_batch)(path)
        images.append(x)
        labels.append(y)
    meta = folder / ("batches.meta.txt" if kind == "bin" else "batches.meta")
    if meta.is_file():
        classes = cifar.read_bin_meta(meta) if kind == "bin" else cifar.read_py_meta(meta)
    else:
        classes = CIFAR10_CLASSES
    if len(classes) != 10:
        raise CorruptFileError(f"cifar10: {meta} names {len(classes)} classes, expected the 10 of CIFAR-10")
    all_images = np.concatenate(images) if len(images) > 1 else images[0]
    all_labels = np.concatenate(labels) if len(labels) > 1 else labels[0]
    return ImageDataset(_as_float(all_images, normalize, dtype), all_labels, classes, name="cifar10", train=train)
