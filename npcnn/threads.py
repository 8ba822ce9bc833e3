"""Threads: how npcnn puts both (all) cores to work, and how many threads NumPy's BLAS uses.

NumPy runs element-wise work on one core; only its BLAS (OpenBLAS) uses several, and after
each call OpenBLAS keeps its threads spinning for a while waiting for the next one. On an idle
machine that speeds up large GEMMs; when another process keeps a core busy, the spinning threads
fight it for the core and a multi-threaded GEMM can take many times longer than a one-thread
one (see the README's "Behaviour under load").

So npcnn's kernels split the work themselves. A convolution (im2col or Winograd) cuts its batch
into chunks, and the kernel's threads share them (:func:`run_shared`): each thread takes the
next chunk when it is done with its last, with one BLAS thread each, so the copies and
transforms around the GEMMs run on all cores too, and a thread the operating system keeps
waiting simply takes fewer chunks. BatchNorm, ReLU and max pooling do the same with chunks of
``ELEMENTWISE_CHUNK_BYTES`` (:func:`each_batch_chunk`, :func:`batched`). The chunks are fixed
by the shapes alone and partial sums are added in chunk order, so results are the same bits on
any number of threads. On CuPy the GPU runs each kernel whole and none of this applies.

At import npcnn applies :func:`apply_default` once: the environment variable
``NPCNN_NUM_THREADS`` (an integer, ``auto``, ``split`` or ``keep``) decides; unset, a BLAS thread variable
the user set (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) is respected,
and otherwise ``DEFAULT`` ("split": one BLAS thread, the kernels' chunks on every available
core) applies. ``NPCNN_NUM_THREADS=keep`` opts out (NumPy's own default).
:func:`set_num_threads` changes the BLAS thread count at run time, :func:`set_num_workers`
(or ``with num_workers(n):``) the kernels' threads.
"""

import contextlib
import ctypes
import os
import threading

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads",
            "scipy_openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads",
            "scipy_openblas_get_num_threads")

_cache: dict = {}  # the BLAS library found, looked up once

ENV = "NPCNN_NUM_THREADS"
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# What npcnn does at import when neither NPCNN_NUM_THREADS nor a BLAS variable is set.
# Measured (benchmarks/fair_bench.py --suite load, 2 cores, ResNet-20 batch 128 train step,
# 2026-12-01): "split" (one BLAS thread, the kernels' chunks on both cores, the load detector
# of run_shared) 0.78 s quiet and 1.20-1.27 s beside one busy process; one thread for
# everything 1.40 s quiet and 1.23-1.27 s loaded; two BLAS threads 0.82 s quiet and 1.29-1.33 s
# loaded (2.5-2.7 s in the release before, when the kernels did not hold the BLAS to one thread).
DEFAULT = "split"
# "split" uses at most this many kernel threads: each keeps its own work buffers (about 20 MB for
# a convolution), and a batch is cut into few enough chunks that more would mostly wait.
MAX_DEFAULT_WORKERS = 8


def _openblas():
    """NumPy's loaded OpenBLAS as a ctypes library, or None (another BLAS, or not found)."""
    if "lib" not in _cache:
        import numpy  # noqa: F401  (the BLAS is loaded with NumPy)

        _cache["lib"] = None
        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
        except OSError:  # not Linux: leave it to threadpoolctl
            paths = set()
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
            getter = next((getattr(lib, g) for g in _GETTERS if hasattr(lib, g)), None)
            if setter is not None and getter is not None:
                setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
                _cache["lib"], _cache["path"] = (setter, getter), path
                break
    return _cache["lib"]


def available_cores():
    """The cores this process may run on (its CPU affinity; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def get_num_threads():
    """The number of threads NumPy's BLAS uses now (1 when it cannot be asked)."""
    lib = _openblas()
    if lib is not None:
        return int(lib[1]())
    try:
        import threadpoolctl
    except ImportError:
        return 1
    counts = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    return max(counts, default=1)


def set_num_threads(n):
    """Use ``n`` BLAS threads from now on; returns the count now in force.

    Args:
        n (int): threads, >= 1 (more than :func:`available_cores` only oversubscribes).

    OpenBLAS is set through its own ``openblas_set_num_threads``; another BLAS (MKL, BLIS)
    through ``threadpoolctl`` when that is installed (it is not a dependency of npcnn); with
    neither, a RuntimeError says so.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a thread count >= 1, got {n}")
    lib = _openblas()
    if lib is not None:
        lib[0](n)
        return get_num_threads()
    try:
        import threadpoolctl
    except ImportError as err:
        raise RuntimeError("set_num_threads: NumPy's BLAS is not OpenBLAS and threadpoolctl is not installed "
                           "(pip install threadpoolctl, or set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS before "
                           "Python starts)") from err
    threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    return get_num_threads()


def busy_cores_elsewhere(interval=0.05):
    """Cores kept busy by other processes over the next ``interval`` seconds (a float).

    Read from Linux's /proc/stat (all CPU time spent outside idle and iowait) less this
    process's own CPU time over the same interval; 0.0 where /proc is missing.
    """
    import time

    def machine_busy():
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # everything but idle and iowait, in clock ticks

    try:
        ticks = float(os.sysconf("SC_CLK_TCK"))
        busy0, own0, t0 = machine_busy(), sum(os.times()[:2]), time.perf_counter()
        time.sleep(interval)
        busy1, own1, t1 = machine_busy(), sum(os.times()[:2]), time.perf_counter()
    except (OSError, ValueError):
        return 0.0
    return max(0.0, ((busy1 - busy0) / ticks - (own1 - own0)) / (t1 - t0))


def default_num_threads():
    """The automatic thread count: the available cores not kept busy by other processes (>= 1)."""
    return max(1, available_cores() - round(busy_cores_elsewhere()))


def apply_default(environ=None):
    """Set the BLAS thread count as ``NPCNN_NUM_THREADS`` says (npcnn calls this once at import).

    Args:
        environ (mapping, default None): the environment to read; None: ``os.environ``.
            ``NPCNN_NUM_THREADS`` = an integer n (n threads), ``auto`` (:func:`default_num_threads`),
            ``split`` (one BLAS thread, which never spins against other processes, and the
            kernels' threads on every available core, at most ``MAX_DEFAULT_WORKERS``:
            :func:`set_num_workers`) or ``keep``
            (change nothing). Unset: ``keep`` when a BLAS variable (BLAS_ENV) is set, else ``DEFAULT``.

    Returns the thread count in force afterwards, or None where nothing was changed. A bad
    value is a ValueError naming the variable.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV, "").strip().lower()
    if not value:
        value = "keep" if any(environ.get(v) for v in BLAS_ENV) else DEFAULT
    if value == "keep":
        return None
    if value == "split":
        set_num_workers(min(available_cores(), MAX_DEFAULT_WORKERS))
        value = "1"
    if value == "auto":
        n = default_num_threads()
    else:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{ENV}={environ.get(ENV)!r}: expected a thread count >= 1, 'auto', 'split' or 'keep'")
    try:
        return set_num_threads(n)
    except RuntimeError:  # neither OpenBLAS nor threadpoolctl: nothing can be set at run time
        return None


# ----------------------------------------------------------------------------- splitting work


_pool = {"executor": None, "workers": 0}
_split = {"workers": None}
_inside = threading.local()  # .active: this thread is running a work function of run_shared


def set_num_workers(n):
    """Threads :func:`run_shared` (the convolutions, BatchNorm, ReLU, max pooling) shares their
    chunks over.

    Args:
        n (int or None): threads >= 1; None (the default): as many as the BLAS uses
            (:func:`get_num_threads`). Unlike BLAS threads these never spin: on a busy machine
            they share the cores with the other work instead of fighting it.
    """
    if n is not None and int(n) < 1:
        raise ValueError(f"set_num_workers: expected a thread count >= 1 or None, got {n}")
    _split["workers"] = None if n is None else int(n)


def get_num_workers():
    """The threads :func:`run_shared` uses by default (see :func:`set_num_workers`)."""
    return _split["workers"] or get_num_threads()


@contextlib.contextmanager
def num_workers(n):
    """``with num_workers(n):`` runs the block with :func:`set_num_workers` ``(n)`` and puts the
    previous setting back afterwards (also after an exception)."""
    before = _split["workers"]
    set_num_workers(n)
    try:
        yield
    finally:
        _split["workers"] = before


@contextlib.contextmanager
def _one_blas_thread():
    """Hold the BLAS to one thread for the block, then put its count back.

    While a kernel's threads run, each one's GEMMs then run on its own core instead of two
    threads' GEMMs fighting over one shared BLAS pool. (OpenBLAS's
    ``openblas_set_num_threads_local`` would be the per-thread way, but in its pthreads builds
    it changes the global count too.)"""
    blas_threads = get_num_threads()
    if blas_threads > 1:
        set_num_threads(1)
    try:
        yield
    finally:
        if blas_threads > 1:
            set_num_threads(blas_threads)


def chunk_ranges(n, size):
    """(start, stop) ranges of ``size`` items (the last one shorter) covering 0 .. n."""
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def contiguous_runs(items, count):
    """``items`` (a list) cut into min(len(items), count) >= 1 runs of consecutive items whose
    lengths differ by at most one, the longer runs first."""
    count = max(1, min(len(items), int(count)))
    size, extra = divmod(len(items), count)
    runs, start = [], 0
    for i in range(count):
        stop = start + size + (1 if i < extra else 0)
        runs.append(items[start:stop])
        start = stop
    return runs


def _forget_pool():
    """In a child made by ``os.fork`` the pool's threads do not exist (only the forking thread is
    copied), so the child starts a pool of its own; without this its first parallel kernel would
    wait forever for threads that are not there."""
    _pool["executor"], _pool["workers"] = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor(workers):
    """The shared pool, grown to at least ``workers`` threads."""
    if _pool["workers"] < workers:
        from concurrent.futures import ThreadPoolExecutor

        if _pool["executor"] is not None:
            _pool["executor"].shutdown(wait=False)
        _pool["executor"] = ThreadPoolExecutor(workers, thread_name_prefix="npcnn")
        _pool["workers"] = workers
    return _pool["executor"]


def kernel_workers(xp):
    """Threads a kernel on array module ``xp`` shares its chunks over: None (the default of
    :func:`run_shared`) for NumPy, 1 for CuPy (the GPU runs the chunks in order)."""
    import numpy

    return None if xp is numpy else 1


def run_shared(work, items, workers=None):
    """Run ``work(queue)`` in up to ``workers`` threads that share one queue of ``items``.

    ``queue`` is an iterator every thread draws from: each item goes to whichever thread asks
    next, so a thread the operating system keeps waiting (another process on the core) takes
    fewer items instead of holding the others up at a fixed split. ``work`` sets up its own
    scratch buffers, processes the items it draws and writes each result where no other item
    writes, so the answer does not depend on which thread took which item. The calling thread is
    one of the workers; while they run the BLAS is set to one thread (:func:`_one_blas_thread`).
    When the splits keep coming out lopsided (a loaded machine, see the load detector below) the
    calls run on the calling thread alone for a while.

    Args:
        work (callable): takes the shared iterator of items; its return value is ignored.
        items (list): the work items, e.g. (index, (start, stop)) chunks of a batch.
        workers (int, default None): threads; None: :func:`get_num_workers`. With 1, a single
            item, or when called from inside another ``work``, everything runs in this thread.
    """
    items = list(items)
    workers = max(1, min(len(items), get_num_workers() if workers is None else int(workers)))
    if workers == 1 or getattr(_inside, "active", False):
        work(iter(items))
        return
    if _solo_because_loaded():  # on one thread, and one BLAS thread, which never spins against the load
        with _one_blas_thread():
            work(iter(items))
        return
    lock, source, failed = threading.Lock(), iter(items), threading.Event()
    taken = [0] * workers  # items each thread drew: the load detector reads them

    def queue(slot):
        while not failed.is_set():  # after a failure in any thread the others stop drawing
            with lock:  # next() on a shared iterator from several threads needs the lock
                item = next(source, _DONE)
            if item is _DONE:
                return
            taken[slot] += 1
            yield item

    def run(slot=0):
        _inside.active = True
        try:
            work(queue(slot))
        except BaseException:
            failed.set()
            raise
        finally:
            _inside.active = False

    with _one_blas_thread():
        futures = [_executor(workers - 1).submit(run, slot) for slot in range(1, workers)]
        error = None
        try:
            run()
        except BaseException as err:  # let the helpers finish before passing it on
            error = err
        for future in futures:
            future.result() if error is None else future.exception()
        if error is not None:
            raise error
    _judge_load(taken)


_DONE = object()

# The load detector of run_shared. On a machine with other work on it the operating system
# keeps one of the threads waiting now and then, and the others then wait for it at the end of
# every call (and for the GIL it holds): measured, a ResNet-20 step beside one busy process took
# 1.44 s on two threads against 1.29 s on one. The sign is a lopsided split: when, in
# LOADED_STRIKES calls in a row of at least JUDGE_MIN_ITEMS items, some thread drew less than
# half its fair share, the next SOLO_CALLS calls run on the calling thread alone, then the
# threads are tried again. The split of the work never changes the answer, only the speed.
LOADED_STRIKES = 3
JUDGE_MIN_ITEMS = 8
SOLO_CALLS = 300
# The first calls are not judged: the pool's threads start and fault in their work buffers then,
# which makes a few calls lopsided on an idle machine too.
WARMUP_CALLS = 50
_load = {"calls": 0, "strikes": 0, "solo_calls": 0, "solo_spells": 0}


def _solo_because_loaded():
    """True (and one call fewer to go) while the load detector has the threads resting."""
    if _load["solo_calls"] > 0:
        _load["solo_calls"] -= 1
        return True
    return False


def _judge_load(taken):
    """After a call of run_shared: ``taken`` = the items each thread drew."""
    total = sum(taken)
    _load["calls"] += 1
    if total < JUDGE_MIN_ITEMS or _load["calls"] <= WARMUP_CALLS:
        return
    if min(taken) * 2 * len(taken) < total:  # a thread drew under half of total / threads
        _load["strikes"] += 1
        if _load["strikes"] >= LOADED_STRIKES:
            _load["strikes"], _load["solo_calls"] = 0, SOLO_CALLS
            _load["solo_spells"] += 1
    else:
        _load["strikes"] = 0


def load_state():
    """The load detector of :func:`run_shared`: {"calls": parallel calls so far, "strikes":
    lopsided calls in a row, "solo_calls": calls still to run on one thread, "solo_spells": how
    often it fell back}."""
    return dict(_load)


def reset_load_state(warm=False):
    """Forget what the load detector saw (the next call uses every worker again); ``warm``:
    judge from the next call on, without the WARMUP_CALLS grace."""
    _load.update(calls=WARMUP_CALLS if warm else 0, strikes=0, solo_calls=0, solo_spells=0)


# ----------------------------------------------------------------------------- element-wise work

# Chunk size of element-wise kernels split over the batch (see batch_chunks). Measured on this
# 2-core machine, a ReLU backward of 128x16x32x32 float32: 1.64 ms on one thread, 0.88 ms on
# two with chunks of 256-512 KB, 1.08 ms with 4 MB chunks.
ELEMENTWISE_CHUNK_BYTES = 512 * 2 ** 10


def batch_chunks(a, chunk_bytes=None):
    """(start, stop) chunks of the first axis of array ``a``, each about ``chunk_bytes`` (default
    ``ELEMENTWISE_CHUNK_BYTES``) and at least one sample. The split depends only on ``a``'s shape
    and dtype, never on the thread count, so sums of per-chunk parts are the same on any machine.
    One chunk for a 0-d array and for a non-NumPy (GPU) array, whose kernels run whole."""
    import numpy

    if not isinstance(a, numpy.ndarray) or a.ndim == 0 or a.shape[0] == 0:
        return [(0, a.shape[0] if getattr(a, "ndim", 0) else 1)]
    per_sample = max(1, a.nbytes // a.shape[0])
    size = max(1, (ELEMENTWISE_CHUNK_BYTES if chunk_bytes is None else int(chunk_bytes)) // per_sample)
    return chunk_ranges(a.shape[0], size)


def each_batch_chunk(fn, a, chunk_bytes=None):
    """Call ``fn(k, rows)`` for every chunk k of :func:`batch_chunks` ``(a)`` (``rows`` a slice of
    the first axis; ``Ellipsis`` for a 0-d array), the chunks shared by the threads of
    :func:`run_shared`. ``fn`` writes its results where no other chunk writes. Returns the
    number of chunks."""
    chunks = batch_chunks(a, chunk_bytes)
    if getattr(a, "ndim", 0) == 0:
        fn(0, Ellipsis)
        return 1

    def work(queue):
        for k, (start, stop) in queue:
            fn(k, slice(start, stop))

    run_shared(work, list(enumerate(chunks)))
    return len(chunks)


def batched(ufunc, *args, out):
    """``ufunc(*args, out=out)`` computed chunk by chunk of the batch on all cores.

    ``out`` (allocated by the caller, in the dtype wanted) sets the batch: an argument that is
    an array of out's number of dimensions and out's first-axis length is sliced with it, any
    other (a scalar, a per-channel (1, C, 1, 1) array) is passed whole. Returns ``out``."""
    n = out.shape[0] if out.ndim else None

    def sliced(a, rows):
        return a[rows] if getattr(a, "ndim", -1) == out.ndim and out.ndim and a.shape[0] == n else a

    each_batch_chunk(lambda k, rows: ufunc(*(sliced(a, rows) for a in args), out=out[rows]), out)
    return out
