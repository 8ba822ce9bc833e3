"""Stacking single samples into a batch: :func:`default_collate`, as ``torch.utils.data.default_collate``."""

import numbers
from typing import Any, Sequence

import numpy as np

from .. import backend


class CollateError(ValueError):
    """Samples that cannot be stacked into one batch (different shapes, types or keys)."""


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into one batch, recursively, as PyTorch's ``default_collate``.

    Per element of the samples:

    * arrays (NumPy/CuPy, any shape, all the same shape and dtype) -> one array with a new first
      axis (the dtype of the samples kept);
    * Python ints -> int64 array, Python floats -> float64 array (PyTorch's dtypes), bools -> bool,
      NumPy scalars -> an array of their dtype;
    * strings and bytes -> a list of them;
    * tuples -> a tuple of the collated elements (PyTorch returns a list here; unpacking
      ``x, y = batch`` works the same), lists -> a list, dicts -> a dict with the same keys.

    Raises :class:`CollateError` naming the sample (by its position in ``batch``) whose shape,
    type, length or keys differ from the first sample's.
    """
    return collate_samples(batch, list(range(len(batch))), "default_collate", "sample")


def collate_samples(batch, indices, who, noun):
    """:func:`default_collate` with errors that call sample ``k`` ``f"{noun}[{indices[k]}]"``."""
    if len(batch) == 0:
        raise CollateError(f"{who}: cannot collate an empty list of samples")
    return _collate(batch, indices, who, noun, "")


def _where(noun, index, path):
    return f"{noun}[{index}]" + (f" (element {path})" if path else "")


def _mismatch(batch, indices, who, noun, path, what, describe):
    """The error for the first sample whose ``describe(sample)`` differs from the first sample's."""
    first = describe(batch[0])
    for k, sample in enumerate(batch):
        if describe(sample) != first:
            return CollateError(
                f"{who}: {_where(noun, indices[k], path)} has {what} {describe(sample)} but "
                f"{_where(noun, indices[0], path)} has {first}; every sample must agree to be stacked "
                f"into a batch (pass collate_fn= to batch such samples yourself)")
    return None


def _collate(batch, indices, who, noun, path):
    elem = batch[0]
    err = _mismatch(batch, indices, who, noun, path, "type", lambda s: _kind(s))
    if err is not None:
        raise err
    if hasattr(elem, "shape") and hasattr(elem, "dtype") and not isinstance(elem, np.generic):
        err = _mismatch(batch, indices, who, noun, path, "shape", lambda s: tuple(s.shape))
        err = err or _mismatch(batch, indices, who, noun, path, "dtype", lambda s: str(s.dtype))
        if err is not None:
            raise err
        return backend.get_array_module(elem).stack(batch)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, (numbers.Number, np.generic)):
        return np.asarray(batch)  # Python ints -> int64, floats -> float64, NumPy scalars keep their dtype
    if isinstance(elem, dict):
        err = _mismatch(batch, indices, who, noun, path, "keys", lambda s: sorted(map(str, s)))
        if err is not None:
            raise err
        return {key: _collate([s[key] for s in batch], indices, who, noun, f"{path}[{key!r}]") for key in elem}
    if isinstance(elem, (tuple, list)):
        err = _mismatch(batch, indices, who, noun, path, "length", len)
        if err is not None:
            raise err
        columns = [_collate([s[j] for s in batch], indices, who, noun, f"{path}[{j}]") for j in range(len(elem))]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple keeps its type
            return type(elem)(*columns)
        return tuple(columns) if isinstance(elem, tuple) else columns
    raise CollateError(f"{who}: {_where(noun, indices[0], path)} is a {type(elem).__name__}; default_collate "
                       f"stacks arrays, numbers, strings and tuples, lists or dicts of them (pass collate_fn= "
                       f"for other samples)")


def _kind(sample):
    """The category a sample's element is collated by (samples must agree on it)."""
    if hasattr(sample, "shape") and hasattr(sample, "dtype") and not isinstance(sample, np.generic):
        return "array"
    for kind, types in (("string", (str, bytes)), ("number", (numbers.Number, np.generic)), ("dict", dict),
                        ("tuple", tuple), ("list", list)):
        if isinstance(sample, types):
            return kind
    return type(sample).__name__
