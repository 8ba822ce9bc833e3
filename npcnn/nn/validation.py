"""Input checks shared by the layers: a wrong input is a clear error naming the layer."""

import numpy as np


def check_ndim(layer, x, ndims, layout):
    """``x.ndim`` must be one of ``ndims``; ``layout`` (e.g. "(N, C, H, W)") goes in the error."""
    if not hasattr(x, "ndim"):
        raise TypeError(f"{layer}: expected an array of shape {layout}, got {type(x).__name__}")
    if x.ndim not in ndims:
        hint = "; for one sample add the batch axis: x[None]" if x.ndim == min(ndims) - 1 else ""
        raise ValueError(f"{layer}: expected input of shape {layout}, got shape {tuple(x.shape)}{hint}")


def check_float(layer, x, expected_dtype=None):
    """``x`` must be floating point, and of the layer's parameter dtype when it has parameters."""
    dtype = np.dtype(x.dtype)
    if dtype.kind != "f":
        raise TypeError(f"{layer}: expected a floating-point input, got dtype {dtype} "
                        "(convert images with x.astype(np.float32) / 255)")
    if expected_dtype is not None and dtype != np.dtype(expected_dtype):
        expected = np.dtype(expected_dtype)
        raise TypeError(f"{layer}: input dtype {dtype} does not match the parameters' dtype {expected}; "
                        f"convert the input or call model.to({expected.name})")


def check_size(layer, x, axis, expected, what):
    """``x.shape[axis]`` must equal ``expected``; ``what`` names the dimension in the error."""
    if x.shape[axis] != expected:
        raise ValueError(f"{layer}: expected {what} = {expected}, got input of shape {tuple(x.shape)}")


def check_int(layer, name, value, minimum=1):
    """A constructor argument that must be an integer >= ``minimum``; returns it as an int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_number(layer, name, value, low=None, high=None, low_open=False, high_open=False):
    """A constructor argument that must be a finite real number in the given range (each end
    inclusive unless ``*_open``); returns it as a float. The error states the allowed range."""
    left = "" if low is None else f"{low} <{'' if low_open else '='} "
    right = "" if high is None else f" <{'' if high_open else '='} {high}"
    allowed = f"a finite number with {left}{name}{right}" if left or right else "a finite number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{layer}: {name} must be {allowed}, got {value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    bad = bad or (low is not None and (value < low or (low_open and value == low)))
    bad = bad or (high is not None and (value > high or (high_open and value == high)))
    if bad:
        raise ValueError(f"{layer}: {name} must be {allowed}, got {value}")
    return value
