"""Fake ``cupy.fft``."""

import numpy as np

from cupy._fake import lookup


def __getattr__(name):
    return lookup("cupy.fft", name, np.fft)
