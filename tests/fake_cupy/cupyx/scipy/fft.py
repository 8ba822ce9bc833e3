"""Fake ``cupyx.scipy.fft``: SciPy's FFTs with CuPy's signatures (no ``workers``)."""

import scipy.fft

from cupy._fake import lookup


def __getattr__(name):
    return lookup("cupyx.scipy.fft", name, scipy.fft)
