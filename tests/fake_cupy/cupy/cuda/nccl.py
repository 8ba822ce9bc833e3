"""Fake ``cupy.cuda.nccl`` with CuPy 14's API (the unique id is ``bytes``).

A communicator of one rank copies buffers; one of several ranks (under ``mpirun``) performs each
collective with MPI on the buffers' host memory, so npcnn's NCCL code path runs end to end. With
``FAKE_NCCL_LOG=path`` each collective appends a line "rank name count" to that file, so a test
can tell that the NCCL path, not MPI's, carried the data.
"""

import ctypes
import os

import numpy as np

from cupy._fake import API, VERSION, check_call, lookup

_DTYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64, 6: np.float16,
           7: np.float32, 8: np.float64}
_OPS = {0: "SUM", 1: "PROD", 2: "MAX", 3: "MIN"}


class NcclError(RuntimeError):
    pass


def get_unique_id():
    """128 bytes (a tuple of ints before CuPy 14)."""
    return os.urandom(128)


def _log(rank, name, count):
    path = os.environ.get("FAKE_NCCL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{rank} {name} {count}\n")


def _host_view(pointer, count, datatype):
    if datatype not in _DTYPES:
        raise NcclError(f"ncclInvalidArgument: datatype {datatype}")
    dtype = np.dtype(_DTYPES[datatype])
    raw = (ctypes.c_char * (count * dtype.itemsize)).from_address(pointer)
    return np.frombuffer(raw, dtype=dtype)


class NcclCommunicator:
    def __init__(self, ndev, commId, rank, config=None):
        check_call("cupy.cuda.nccl.NcclCommunicator", API["namespaces"]["cupy.cuda.nccl"]["NcclCommunicator"]["params"],
                   (ndev, commId, rank, config), {})
        if not isinstance(commId, bytes) or len(commId) != 128:
            raise TypeError(f"Argument 'commId' has incorrect type (expected bytes of length 128 in CuPy {VERSION}, "
                            f"got {type(commId).__name__})")
        self._size, self._rank, self._mpi = int(ndev), int(rank), None
        if self._size > 1:
            from mpi4py import MPI

            self._mpi = MPI
            if (MPI.COMM_WORLD.size, MPI.COMM_WORLD.rank) != (self._size, self._rank):
                raise NcclError("ncclInvalidArgument: the fake NCCL needs ndev and rank to match the MPI world")

    def _op(self, op):
        if op not in _OPS:
            raise NcclError(f"ncclInvalidArgument: op {op}")
        return getattr(self._mpi, _OPS[op]) if self._mpi else None

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        send, recv = _host_view(sendbuf, count, datatype), _host_view(recvbuf, count, datatype)
        mpi_op = self._op(op)
        _log(self._rank, "allReduce", count)
        if self._mpi is None:
            recv[...] = send
        else:
            self._mpi.COMM_WORLD.Allreduce(self._mpi.IN_PLACE if sendbuf == recvbuf else send, recv, op=mpi_op)

    def bcast(self, buff, count, datatype, root, stream):
        buffer = _host_view(buff, count, datatype)
        _log(self._rank, "bcast", count)
        if self._mpi is not None:
            self._mpi.COMM_WORLD.Bcast(buffer, root=root)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        send = _host_view(sendbuf, count, datatype)
        recv = _host_view(recvbuf, count * self._size, datatype)
        _log(self._rank, "allGather", count)
        if self._mpi is None:
            recv[...] = send
        else:
            self._mpi.COMM_WORLD.Allgather(send.copy(), recv)

    def abort(self):
        pass

    def destroy(self):
        pass

    def size(self):
        return self._size

    def rank_id(self):
        return self._rank

    def device_id(self):
        return 0


def __getattr__(name):
    return lookup("cupy.cuda.nccl", name, None)
