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
