"""Fake ``cupyx.scipy.special``."""

import scipy.special

from cupy._fake import lookup


def __getattr__(name):
    return lookup("cupyx.scipy.special", name, scipy.special)
