"""Fake ``cupyx.scipy``."""

from cupyx.scipy import fft, special  # noqa: F401
