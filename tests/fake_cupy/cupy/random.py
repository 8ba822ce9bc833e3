"""Fake ``cupy.random``: ``default_rng`` gives a Generator with CuPy's methods only."""

import numpy as np

from cupy._fake import API, VERSION, check_call, lookup, to_device


class Generator:
    """``cupy.random.Generator``: draws with a NumPy generator, offers CuPy's methods (no
    ``normal``, ``permutation`` or ``bit_generator``) and returns device arrays."""

    def __init__(self, bit_generator):
        self._numpy = np.random.Generator(bit_generator)

    def __getattr__(self, name):
        entry = API["classes"]["cupy.random.Generator"].get(name)
        if entry is None or name.startswith("_"):
            raise AttributeError(f"'cupy.random.Generator' object has no attribute {name!r} (CuPy {VERSION})")
        method = getattr(self._numpy, name)
        qualname = f"cupy.random.Generator.{name}"

        def call(*args, **kwargs):
            check_call(qualname, entry["params"], args, kwargs)
            return to_device(method(*args, **kwargs))

        return call


def default_rng(seed=None):
    # Philox, not NumPy's default PCG64: like the real CuPy (XORWOW), the fake draws numbers that
    # differ from NumPy's for the same seed, so no test can lean on the two streams agreeing.
    return Generator(np.random.Philox(seed))


def __getattr__(name):
    return lookup("cupy.random", name, np.random)
