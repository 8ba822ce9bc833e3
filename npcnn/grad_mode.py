"""Gradient mode: whether layers keep the caches their backward pass needs.

Inside ``with npcnn.no_grad():`` layers skip their caches, which saves the memory of every
intermediate activation during inference. Backward is then impossible and says so.
"""

import contextlib

_enabled = [True]


def is_grad_enabled():
    """True unless inside a ``no_grad()`` block."""
    return _enabled[0]


@contextlib.contextmanager
def no_grad():
    """Run inference without keeping backward caches."""
    previous = _enabled[0]
    _enabled[0] = False
    try:
        yield
    finally:
        _enabled[0] = previous


@contextlib.contextmanager
def enable_grad():
    """Turn caching back on inside a ``no_grad()`` block."""
    previous = _enabled[0]
    _enabled[0] = True
    try:
        yield
    finally:
        _enabled[0] = previous
