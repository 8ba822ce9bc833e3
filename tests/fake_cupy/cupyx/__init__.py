"""Fake ``cupyx``: ``scatter_add`` and ``cupyx.scipy``."""

import numpy as np

from cupy._fake import check_call, lookup, ndarray, to_host

from cupyx import scipy  # noqa: F401,E402


def scatter_add(a, slices, value):
    """``a[slices] += value`` adding repeated indices, in place (CuPy's unbuffered add)."""
    check_call("cupyx.scatter_add", [["a", "POSITIONAL_OR_KEYWORD", False], ["slices", "POSITIONAL_OR_KEYWORD", False],
                                     ["value", "POSITIONAL_OR_KEYWORD", False]], (a, slices, value), {})
    if not isinstance(a, ndarray):
        raise TypeError(f"cupyx.scatter_add: a must be a cupy.ndarray, got {type(a)}")
    np.add.at(a._a, to_host(slices, strict=False, where="cupyx.scatter_add"),
              to_host(value, strict=True, where="cupyx.scatter_add"))


def __getattr__(name):
    return lookup("cupyx", name, None)
