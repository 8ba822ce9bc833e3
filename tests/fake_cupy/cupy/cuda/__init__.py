"""Fake ``cupy.cuda``: one "device" (the host), a null stream whose work is always done."""

from cupy._fake import MemoryPointer, lookup  # noqa: F401
from cupy.cuda import nccl, runtime  # noqa: F401


class Device:
    """``cupy.cuda.Device(id)``: ``use()`` and ``with Device(i):`` select it."""

    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if not 0 <= self.id < runtime.getDeviceCount():
            raise RuntimeError(f"cudaErrorInvalidDevice: device {self.id} of {runtime.getDeviceCount()}")

    def use(self):
        pass

    def synchronize(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Event:
    """``cupy.cuda.Event``: work on the fake device is finished when it is queued."""

    done = True

    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


class Stream:
    """``cupy.cuda.Stream``: the null stream, address 0."""

    ptr = 0

    def record(self, event=None):
        return event or Event()

    def synchronize(self):
        pass

    def use(self):
        return self


Stream.null = Stream()


def get_current_stream(device_id=-1):
    return Stream.null


def __getattr__(name):
    return lookup("cupy.cuda", name, None)
