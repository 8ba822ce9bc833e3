"""Fake ``cupy.linalg``."""

import numpy as np

from cupy._fake import lookup


def __getattr__(name):
    return lookup("cupy.linalg", name, np.linalg)
