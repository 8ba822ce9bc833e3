"""Communicators: who am I, how many are we, and collectives on arrays.

Data-parallel training needs four collectives, all applied to arrays in place:

    all_reduce(a)        every rank ends with the element-wise sum (or max/min) over ranks
    broadcast(a, root)   every rank ends with root's values
    all_gather(a)        every rank gets the stack (size, *a.shape) of all ranks' arrays
    barrier()            nobody leaves until everybody has arrived

Three communicators implement them behind one interface:

* :class:`SingleProcess` -- a world of one; every collective is the identity. This is what
  everything falls back to when mpi4py is absent or the job was not launched by ``mpirun``.
* :class:`MPICommunicator` -- NumPy arrays go through mpi4py's *buffer* API (``Iallreduce``,
  ``Ibcast``, ``Iallgather`` with ``MPI.IN_PLACE``): the array's memory is handed to MPI as it
  is, nothing is pickled. Each collective is non-blocking and polled against a deadline, so a
  rank that died or hangs makes the others stop with a clear message (and ``MPI_Abort``)
  instead of waiting forever. CuPy arrays go through NCCL (:class:`_NCCL`) on the GPU.
* :class:`ThreadCommunicator` -- ``size`` ranks as threads of one process, sharing memory.
  The tests use it to run "two ranks" without MPI (e.g. to gradient-check SyncBatchNorm).

mpi4py is imported only inside :func:`init` (``import npcnn`` never imports it).
"""

import atexit
import importlib.util
import os
import sys
import threading
import time

import numpy as np

from .. import backend

# Environment variables that MPI launchers set in every process they start.
_LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_SIZE")
_LOCAL_RANK_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")

DEFAULT_TIMEOUT = 300.0  # seconds a collective may wait for the slowest rank before the job stops
_OPS = ("sum", "max", "min")


class DistributedError(RuntimeError):
    """A collective could not complete (a rank died, hung, or called a different collective)."""


class CommunicationTimeout(DistributedError):
    """A collective waited longer than the communicator's ``timeout``."""


def _check_op(op):
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")


class Communicator:
    """The interface: ``rank``, ``size``, ``local_rank`` and four in-place collectives."""

    rank = 0
    size = 1
    local_rank = 0
    timeout = DEFAULT_TIMEOUT
    name = "single"

    def all_reduce(self, array, op="sum"):
        """Replace ``array`` by its element-wise reduction over all ranks; returns ``array``."""
        raise NotImplementedError

    def broadcast(self, array, root=0):
        """Replace ``array`` by rank ``root``'s array; returns ``array``."""
        raise NotImplementedError

    def all_gather(self, array):
        """A new array of shape ``(size, *array.shape)``: row r holds rank r's ``array``."""
        raise NotImplementedError

    def barrier(self):
        """Wait until every rank has called ``barrier``."""
        raise NotImplementedError

    def abort(self, message, code=1):
        """Stop every rank of the job with ``message``."""
        raise DistributedError(message)

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"


class SingleProcess(Communicator):
    """A world of one process: every collective leaves the array as it is."""

    def all_reduce(self, array, op="sum"):
        _check_op(op)
        return array

    def broadcast(self, array, root=0):
        if root != 0:
            raise ValueError(f"broadcast: root {root} does not exist in a world of size 1")
        return array

    def all_gather(self, array):
        return backend.get_array_module(array).stack([array])

    def barrier(self):
        pass


# ----------------------------------------------------------------------------- MPI


def _contiguous_buffer(array):
    """``array`` itself when C-contiguous (MPI reads and writes it directly), else a copy."""
    xp = backend.get_array_module(array)
    return array if array.flags.c_contiguous else xp.ascontiguousarray(array)


class MPICommunicator(Communicator):
    """Collectives over an mpi4py communicator, with a deadline on every wait.

    NumPy arrays use the buffer API (no pickling); CuPy arrays use NCCL when ``nccl`` is given.
    ``abort_on_timeout=False`` raises :class:`CommunicationTimeout` instead of aborting the job
    (only sensible when the caller will end the job itself).
    """

    name = "mpi"
    SPIN_SECONDS = 1.0

    def __init__(self, mpi_comm, local_rank=0, timeout=DEFAULT_TIMEOUT, abort_on_timeout=True):
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = mpi_comm
        self.rank, self.size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        self.local_rank = int(local_rank)
        self.timeout = float(timeout)
        self.abort_on_timeout = abort_on_timeout
        self.calls = 0  # numbered in error messages: ranks that disagree on the count ran different code
        self.nccl = None
        self._mpi_ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    # -- waiting with a deadline

    def _wait(self, request, what):
        """Poll ``request`` until done; past the deadline, stop the job with a clear message.

        Polling (``Test``) instead of ``Wait`` is what makes the deadline possible: a blocking
        wait on a collective whose partner is dead never returns. MPI moves a large message in
        fragments only while some call of ours is inside MPI, so the first ``SPIN_SECONDS`` poll
        back to back (yielding the core between polls, as MPI's own blocking wait spins); a
        wait that lasts longer is a straggler or a failure, and is polled once a millisecond to
        spare the CPU until the deadline.
        """
        self.calls += 1
        start = time.monotonic()
        deadline = start + self.timeout
        while not request.Test():
            now = time.monotonic()
            if now > deadline:
                self._timed_out(what)
            if now - start < self.SPIN_SECONDS:
                os.sched_yield()
            else:
                time.sleep(1e-3)

    def _timed_out(self, what):
        message = (
            f"npcnn.distributed: rank {self.rank} of {self.size} waited {self.timeout:g} s for "
            f"{what} (collective #{self.calls}) and the other ranks never joined: a rank has died, "
            "hangs, or runs different code. Stopping all ranks. (The limit is init(timeout=...) "
            "or the NPCNN_DIST_TIMEOUT environment variable.)"
        )
        if not self.abort_on_timeout:
            raise CommunicationTimeout(message)
        self.abort(message)

    def abort(self, message, code=1):
        """Print ``message`` on stderr and kill every rank of the job (``MPI_Abort``)."""
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
        self.MPI.COMM_WORLD.Abort(code)

    # -- collectives

    def all_reduce(self, array, op="sum"):
        _check_op(op)
        if backend.is_cupy_array(array):
            return self._require_nccl("all_reduce").all_reduce(array, op)
        buffer = _contiguous_buffer(array)
        request = self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self._mpi_ops[op])
        self._wait(request, f"all_reduce of {buffer.size} x {buffer.dtype}")
        if buffer is not array:
            array[...] = buffer
        return array

    def broadcast(self, array, root=0):
        if backend.is_cupy_array(array):
            return self._require_nccl("broadcast").broadcast(array, root)
        buffer = _contiguous_buffer(array)
        request = self.comm.Ibcast(buffer, root=root)
        self._wait(request, f"broadcast of {buffer.size} x {buffer.dtype} from rank {root}")
        if buffer is not array:
            array[...] = buffer
        return array

    def all_gather(self, array):
        if backend.is_cupy_array(array):
            return self._require_nccl("all_gather").all_gather(array)
        buffer = _contiguous_buffer(array)
        out = np.empty((self.size,) + buffer.shape, dtype=buffer.dtype)
        request = self.comm.Iallgather(buffer, out)
        self._wait(request, f"all_gather of {buffer.size} x {buffer.dtype}")
        return out

    def barrier(self):
        self._wait(self.comm.Ibarrier(), "barrier")

    def _require_nccl(self, what):
        if self.nccl is None:
            raise DistributedError(
                f"{what} on a CuPy array needs NCCL: call npcnn.distributed.init() after "
                "npcnn.set_backend('cupy') (or with NPCNN_BACKEND=cupy)"
            )
        return self.nccl


def _nccl_unique_id(nccl, mpi):
    """Rank 0's NCCL unique id (``ncclUniqueId``, 128 chars), on every rank.

    It travels over MPI as 128 bytes. CuPy 14 takes and gives it as ``bytes``; earlier versions
    as a tuple of 128 signed chars. Every rank runs the same CuPy, so its version says which.
    """
    import cupy

    raw = np.zeros(128, dtype=np.uint8)
    if mpi.rank == 0:
        uid = nccl.get_unique_id()
        raw[:] = np.frombuffer(uid, np.uint8) if isinstance(uid, bytes) else np.array(uid, np.int8).view(np.uint8)
    mpi.broadcast(raw, root=0)
    if int(cupy.__version__.split(".")[0]) >= 14:
        return raw.tobytes()
    return tuple(int(v) for v in raw.view(np.int8))


class _NCCL:
    """All-reduce, broadcast and all-gather of CuPy arrays on the GPU through NCCL.

    Tested on the fake CuPy of tests/fake_cupy, whose NCCL runs each collective with MPI on host
    memory (see tests/test_fake_cupy.py); never yet on GPUs. The NCCL unique id is made on
    rank 0 and sent to the others over MPI as 128 numbers (buffer API, no pickling). NCCL calls
    are queued on the current CUDA stream; completion is polled with a deadline like MPI's, and
    on timeout the NCCL communicator is aborted before the MPI job.
    """

    def __init__(self, mpi):
        # NCCL is CuPy's binding; this communication library has no NumPy twin for the backend
        # switch to choose between, so it is imported here, only when the backend is CuPy.
        from cupy.cuda import nccl

        self.nccl, self.mpi = nccl, mpi
        self.comm = nccl.NcclCommunicator(mpi.size, _nccl_unique_id(nccl, mpi), mpi.rank)
        self.ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}
        self.dtypes = {
            np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
            np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int32): nccl.NCCL_INT32,
            np.dtype(np.int64): nccl.NCCL_INT64,
        }

    def _dtype(self, array):
        try:
            return self.dtypes[np.dtype(array.dtype)]
        except KeyError:
            supported = sorted(str(d) for d in self.dtypes)
            raise TypeError(f"NCCL collectives support {supported}, got {array.dtype}") from None

    def _wait(self, what):
        """Poll the stream's work with the communicator's deadline (NCCL calls return at once)."""
        xp = backend.xp()
        stream = xp.cuda.get_current_stream()
        event = stream.record()
        deadline = time.monotonic() + self.mpi.timeout
        while not event.done:
            if time.monotonic() > deadline:
                self.comm.abort()
                self.mpi._timed_out(f"NCCL {what}")
            time.sleep(1e-4)

    def all_reduce(self, array, op):
        buffer = _contiguous_buffer(array)
        stream = backend.xp().cuda.get_current_stream().ptr
        self.comm.allReduce(buffer.data.ptr, buffer.data.ptr, buffer.size, self._dtype(buffer), self.ops[op], stream)
        self._wait(f"all_reduce of {buffer.size} x {buffer.dtype}")
        if buffer is not array:
            array[...] = buffer
        return array

    def broadcast(self, array, root):
        buffer = _contiguous_buffer(array)
        stream = backend.xp().cuda.get_current_stream().ptr
        self.comm.bcast(buffer.data.ptr, buffer.size, self._dtype(buffer), root, stream)
        self._wait(f"broadcast of {buffer.size} x {buffer.dtype}")
        if buffer is not array:
            array[...] = buffer
        return array

    def all_gather(self, array):
        buffer = _contiguous_buffer(array)
        xp = backend.get_array_module(buffer)
        out = xp.empty((self.mpi.size,) + buffer.shape, dtype=buffer.dtype)
        stream = xp.cuda.get_current_stream().ptr
        self.comm.allGather(buffer.data.ptr, out.data.ptr, buffer.size, self._dtype(buffer), stream)
        self._wait(f"all_gather of {buffer.size} x {buffer.dtype}")
        return out


# ----------------------------------------------------------------------------- threads


class _ThreadGroup:
    """What the ranks of a ThreadCommunicator share: one slot per rank and a barrier."""

    def __init__(self, size, timeout):
        self.size, self.timeout = size, timeout
        self.slots = [None] * size
        self.barrier = threading.Barrier(size, timeout=timeout)


class ThreadCommunicator(Communicator):
    """Rank ``rank`` of ``size`` ranks that are threads of one process (a fake world for tests).

    A collective is two barrier waits: every rank posts its array in its slot, waits for all,
    reads every slot and computes the result (in rank order, so all ranks get identical bits),
    then waits again so no rank overwrites its slot while another still reads it. Make the
    ranks with :meth:`group` and run them with :func:`run_in_threads`.
    """

    name = "threads"

    def __init__(self, group, rank):
        self.group, self.rank, self.size = group, rank, group.size
        self.local_rank = rank
        self.timeout = group.timeout

    @classmethod
    def group(cls, size, timeout=10.0):
        """``size`` communicators, one per rank, sharing one group."""
        shared = _ThreadGroup(size, timeout)
        return [cls(shared, rank) for rank in range(size)]

    def _sync(self, what):
        try:
            self.group.barrier.wait()
        except threading.BrokenBarrierError:
            raise CommunicationTimeout(
                f"npcnn.distributed: rank {self.rank} of {self.size} (thread) waited {self.timeout:g} s "
                f"for {what}; another rank failed or never called it"
            ) from None

    def _exchange(self, array, what):
        """Post ``array``, wait for all, and return every rank's copy (in rank order)."""
        self.group.slots[self.rank] = array.copy()
        self._sync(what)
        arrays = list(self.group.slots)
        self._sync(what)
        return arrays

    def all_reduce(self, array, op="sum"):
        _check_op(op)
        arrays = self._exchange(array, "all_reduce")
        xp = backend.get_array_module(array)
        reduce = {"sum": xp.add, "max": xp.maximum, "min": xp.minimum}[op]
        total = arrays[0]
        for other in arrays[1:]:
            total = reduce(total, other)
        array[...] = total
        return array

    def broadcast(self, array, root=0):
        array[...] = self._exchange(array, "broadcast")[root]
        return array

    def all_gather(self, array):
        return backend.get_array_module(array).stack(self._exchange(array, "all_gather"))

    def barrier(self):
        self._sync("barrier")

    def abort(self, message, code=1):
        self.group.barrier.abort()  # wake the other ranks: their collectives fail at once
        raise DistributedError(message)


def run_in_threads(communicators, function):
    """Run ``function(comm)`` for every communicator in its own thread; return the results in
    rank order. An exception on any rank breaks the others' barriers and is re-raised here."""
    results, errors = [None] * len(communicators), [None] * len(communicators)

    def target(comm):
        try:
            results[comm.rank] = function(comm)
        except BaseException as err:  # noqa: BLE001 -- handed to the caller below
            errors[comm.rank] = err
            comm.group.barrier.abort()

    threads = [threading.Thread(target=target, args=(comm,)) for comm in communicators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Report the first rank's own failure rather than the broken barriers it caused elsewhere.
    for err in sorted((e for e in errors if e is not None), key=lambda e: isinstance(e, CommunicationTimeout)):
        raise err
    return results


# ----------------------------------------------------------------------------- the world

_world = {"comm": SingleProcess()}


def is_available():
    """True when mpi4py is installed (found without importing it)."""
    return importlib.util.find_spec("mpi4py") is not None


def launched_by_mpi():
    """True when this process was started by an MPI launcher (``mpirun``, ``srun``, ...)."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


def _local_rank_from_environment(mpi_comm):
    for name in _LOCAL_RANK_VARIABLES:
        if name in os.environ:
            return int(os.environ[name])
    from mpi4py import MPI

    node = mpi_comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks sharing this machine's memory
    local_rank = node.Get_rank()
    node.Free()
    return local_rank


def init(timeout=None, abort_on_exception=True):
    """Join the MPI world (when launched by ``mpirun`` with mpi4py installed); returns the world.

    Otherwise the world is a single process and every collective is a no-op, so the same script
    runs with and without ``mpirun``. Under the CuPy backend each rank picks the GPU
    ``local_rank % device_count`` and an NCCL communicator is built for GPU arrays.

    ``timeout`` (seconds, default ``NPCNN_DIST_TIMEOUT`` or 300) bounds every collective's wait.
    With ``abort_on_exception`` an uncaught exception on any rank prints its traceback and aborts
    the whole job at once, instead of leaving the others to time out.
    """
    if timeout is None:
        timeout = float(os.environ.get("NPCNN_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    if not (is_available() and launched_by_mpi()):
        _world["comm"] = SingleProcess()
        return _world["comm"]
    if isinstance(_world["comm"], MPICommunicator):
        _world["comm"].timeout = float(timeout)
        return _world["comm"]
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    comm = MPICommunicator(world, _local_rank_from_environment(world), timeout)
    if abort_on_exception and comm.size > 1:
        _install_abort_on_exception(comm)  # first, so that a failure setting up NCCL stops all ranks too
    if backend.get_backend() == "cupy":
        cuda = backend.xp().cuda
        cuda.Device(comm.local_rank % cuda.runtime.getDeviceCount()).use()
        comm.nccl = _NCCL(comm)
    _world["comm"] = comm
    return comm


def _install_abort_on_exception(comm):
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        comm.abort(f"npcnn.distributed: rank {comm.rank} of {comm.size} raised {kind.__name__}; stopping all ranks")

    sys.excepthook = hook
    atexit.register(lambda: setattr(sys, "excepthook", previous))


def get_world():
    """The communicator of this process's world (a :class:`SingleProcess` before :func:`init`)."""
    return _world["comm"]


def set_world(comm):
    """Make ``comm`` the default world (tests; returns the previous one)."""
    previous = _world["comm"]
    _world["comm"] = comm
    return previous


def is_initialized():
    """True once :func:`init` joined a world of more than one process."""
    return _world["comm"].size > 1


def get_rank():
    """This process's rank in the world, 0 .. world_size - 1 (0 without a launcher)."""
    return _world["comm"].rank


def get_world_size():
    """The number of processes in the world (1 without a launcher)."""
    return _world["comm"].size


def get_local_rank():
    """This process's rank among those on its own machine (which GPU it uses)."""
    return _world["comm"].local_rank


def is_main_process():
    """True on rank 0: the rank that prints, writes checkpoints and plots."""
    return _world["comm"].rank == 0


def _resolve(comm):
    return _world["comm"] if comm is None else comm


def all_reduce(array, op="sum", comm=None):
    """In-place all-reduce of ``array`` over the world (or ``comm``); returns ``array``."""
    return _resolve(comm).all_reduce(array, op)


def broadcast(array, root=0, comm=None):
    """In-place broadcast of rank ``root``'s ``array``; returns ``array``."""
    return _resolve(comm).broadcast(array, root)


def all_gather(array, comm=None):
    """Stack of every rank's ``array``: shape ``(world_size, *array.shape)``."""
    return _resolve(comm).all_gather(array)


def barrier(comm=None):
    """Wait until every rank of the world (or of ``comm``) has arrived."""
    _resolve(comm).barrier()

