"""Every public function of npcnn.data tried with wrong types and ranges: a clear error naming the
function and the argument, never a NumPy message from deep inside or a silently wrong result."""

import numpy as np
import pytest

from npcnn.data import ImageDataset, cifar10, fashion_mnist, mnist, shapes, signals


@pytest.mark.parametrize("loader", [mnist, fashion_mnist, cifar10])
@pytest.mark.parametrize("kwargs, error, match", [
    ({"normalize": True, "dtype": np.uint8}, TypeError, "normalize=True gives floats in \\[0, 1\\]; dtype must be"),
    ({"dtype": np.int8}, TypeError, "dtype must be a float dtype or an integer dtype holding 0..255"),
    ({"dtype": "float17"}, TypeError, "dtype must be None or a NumPy dtype"),
    ({"train": "test"}, TypeError, "train must be True or False"),
    ({"normalize": "yes"}, TypeError, "normalize must be True or False"),
    ({"download": 0}, TypeError, "download must be True or False"),
    ({"root": 5}, TypeError, "root must be None or a folder path"),
])
def test_dataset_loaders_check_their_arguments_before_touching_files(tmp_path, loader, kwargs, error, match):
    kwargs = {"root": tmp_path, "download": False, **kwargs}
    with pytest.raises(error, match=f"{loader.__name__}: {match}"):
        loader(**kwargs)


@pytest.mark.parametrize("func", [shapes, signals])
@pytest.mark.parametrize("kwargs, error, match", [
    ({"n": -1}, ValueError, "n must be >= 0"),
    ({"n": 2.5}, TypeError, "n must be an int"),
    ({"classes": ()}, ValueError, "classes must name at least one class"),
    ({"classes": "circle"}, TypeError, "classes must be a sequence of class names"),
    ({"noise": -1}, ValueError, r"noise must be in \[0, inf\)"),
    ({"noise": float("nan")}, ValueError, "noise must be a finite number"),
    ({"seed": -3}, ValueError, "seed must be >= 0"),
    ({"dtype": np.int32}, TypeError, "dtype must be a float dtype"),
])
def test_synthetic_generators_check_their_arguments(func, kwargs, error, match):
    kwargs = {"n": 4, **kwargs}
    with pytest.raises(error, match=f"{func.__name__}: {match}"):
        func(**kwargs)


def test_synthetic_sizes():
    with pytest.raises(ValueError, match="shapes: size must be >= 4"):
        shapes(4, size=0)
    with pytest.raises(TypeError, match="shapes: return_masks must be True or False"):
        shapes(4, return_masks="yes")
    with pytest.raises(ValueError, match="signals: length must be >= 1"):
        signals(4, length=0)
    assert shapes(0)[0].shape == (0, 1, 32, 32)


def test_image_dataset_checks_its_parts():
    x, y = np.zeros((3, 1, 2, 2)), np.zeros(3, np.int64)
    with pytest.raises(TypeError, match="classes must be a list of class names"):
        ImageDataset(x, y, classes=3)
    with pytest.raises(ValueError, match=r"ImageDataset\('toy'\): labels must be an array of 1-D"):
        ImageDataset(x, y[:, None], classes=list("abc"), name="toy")
    with pytest.raises(ValueError, match="images must be an array"):
        ImageDataset([[1]], y, classes=list("abc"))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ImageDataset(x, y[:2], classes=list("abc"))
