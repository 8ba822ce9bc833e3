"""Argument checks shared by npcnn.data: a wrong argument is an error naming the function or
class, the argument and what is allowed."""

import math
import numbers
import os

import numpy as np


def check_bool(who, name, value):
    """``value`` must be True or False (NumPy bools too); returns a Python bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_int(who, name, value, minimum=None):
    """``value`` must be an int (not a bool), at least ``minimum``; returns a Python int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{who}: {name} must be an int, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(who, name, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` must be a finite real number in the interval given; returns a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (")" if high_open or high is None
                                                                                 else "]")
        raise ValueError(f"{who}: {name} must be in {interval}, got {value:g}")
    return value


def check_interval(who, name, value, low=None, high=None, low_open=False):
    """A pair ``(lo, hi)`` of finite numbers with lo <= hi, both in [low, high]; returns floats."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{who}: {name} must be a pair (min, max), got {value!r}")
    lo = check_real(who, f"{name}[0]", value[0], low, high, low_open=low_open)
    hi = check_real(who, f"{name}[1]", value[1], low, high, low_open=low_open)
    if lo > hi:
        raise ValueError(f"{who}: {name} must be (min, max) with min <= max, got {tuple(value)!r}")
    return lo, hi


def check_root(who, root):
    """``root`` must be None, a str or an os.PathLike."""
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"{who}: root must be None or a folder path (str or os.PathLike), got {type(root).__name__}")
    return root


def check_image_dtype(who, dtype, normalize):
    """The ``dtype`` argument of the image loaders: None, a float dtype, or (without ``normalize``)
    an integer dtype that holds 0..255."""
    if dtype is None:
        return None
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{who}: dtype must be None or a NumPy dtype, got {dtype!r}") from None
    if dtype.kind == "f":
        return dtype
    if normalize:
        raise TypeError(f"{who}: normalize=True gives floats in [0, 1]; dtype must be a float dtype, got {dtype}")
    if dtype.kind in "iu" and np.iinfo(dtype).max >= 255:
        return dtype
    raise TypeError(f"{who}: dtype must be a float dtype or an integer dtype holding 0..255, got {dtype}")
