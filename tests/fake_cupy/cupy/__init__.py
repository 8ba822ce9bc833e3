"""A fake ``cupy`` for testing npcnn's CuPy path without a GPU (see ``_fake.py``).

Put ``tests/fake_cupy`` first on ``PYTHONPATH`` and ``import cupy`` finds this package. It serves
exactly the names of the real CuPy recorded in ``cupy_api.json``.
"""

import numpy as np

from cupy import cuda, fft, lib, linalg, random  # noqa: F401  (CuPy's submodules)
from cupy._fake import VERSION, lookup, ndarray

__version__ = VERSION
__fake__ = True  # lets tests tell the fake from the real CuPy


def asnumpy(a, stream=None, order="C", out=None, blocking=True):
    """A NumPy copy of ``a`` (device array or anything NumPy takes)."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    """``cupy`` if any argument is a device array, else ``numpy``."""
    import cupy

    return cupy if any(isinstance(a, ndarray) for a in args) else np


def __getattr__(name):
    return lookup("cupy", name, np)
