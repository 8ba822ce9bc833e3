"""Fake ``cupy.cuda.runtime``: one visible device."""

from cupy._fake import lookup


def getDeviceCount():
    return 1


def __getattr__(name):
    return lookup("cupy.cuda.runtime", name, None)
