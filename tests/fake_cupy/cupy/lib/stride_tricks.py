"""Fake ``cupy.lib.stride_tricks``: strided views of the device buffer."""

import numpy as np

from cupy._fake import lookup


def __getattr__(name):
    return lookup("cupy.lib.stride_tricks", name, np.lib.stride_tricks)
