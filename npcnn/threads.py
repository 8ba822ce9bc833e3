"""How many threads NumPy's BLAS (OpenBLAS) uses for npcnn's matrix products.

NumPy's OpenBLAS starts one thread per core and, after each call, keeps them spinning for a
while waiting for the next one. On an idle machine the second core speeds up the large GEMMs;
when another process keeps a core busy, the spinning threads fight it for the core and a
multi-threaded GEMM can take many times longer than a single-threaded one (see the README's
"Behaviour under load"). :func:`set_num_threads` changes the thread count at run time (without
restarting Python); the environment variable ``OPENBLAS_NUM_THREADS`` sets it before NumPy loads.

Only the BLAS is affected: NumPy's element-wise work is single-threaded whatever this says.
On the CuPy backend the GPU does the work and these functions change nothing there.

At import npcnn applies :func:`apply_default` once: the environment variable
``NPCNN_NUM_THREADS`` (an integer, ``auto``, ``split`` or ``keep``) decides; unset, a BLAS thread variable
the user set (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) is respected,
and otherwise ``DEFAULT`` applies. ``NPCNN_NUM_THREADS=keep`` opts out (NumPy's own default).
"""

import ctypes
import os

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads",
            "scipy_openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads",
            "scipy_openblas_get_num_threads")

_cache: dict = {}  # the BLAS library found, looked up once

ENV = "NPCNN_NUM_THREADS"
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# What npcnn does at import when neither NPCNN_NUM_THREADS nor a BLAS variable is set.
# Measured (benchmarks/fair_bench.py --suite load, 2 cores, ResNet-20 batch 128 train step):
# two BLAS threads 1.14 s quiet but 2.5-2.7 s beside one busy process (their spinning threads
# fight it); one BLAS thread 1.29 s quiet and 1.18-1.34 s beside it. "split" (one BLAS thread,
# the Winograd chunks on both cores) is 1.18 s quiet and 1.34-1.41 s loaded: nearly the best
# of both, so it is the default.
DEFAULT = "split"


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
            ``split`` (one BLAS thread, which never spins against other processes, and the split
            kernels' workers on every available core: :func:`set_num_workers`) or ``keep``
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
        set_num_workers(available_cores())
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


def set_num_workers(n):
    """Threads :func:`map_split` (the Winograd kernels) splits its chunks over.

    Args:
        n (int or None): threads >= 1; None (the default): as many as the BLAS uses
            (:func:`get_num_threads`). Unlike BLAS threads these never spin: on a busy machine
            they share the cores with the other work instead of fighting it.
    """
    if n is not None and int(n) < 1:
        raise ValueError(f"set_num_workers: expected a thread count >= 1 or None, got {n}")
    _split["workers"] = None if n is None else int(n)


def get_num_workers():
    """The threads :func:`map_split` uses by default (see :func:`set_num_workers`)."""
    return _split["workers"] or get_num_threads()


def map_split(fn, items, workers=None):
    """[fn(group) for group in groups], the groups being ``items`` split into up to ``workers``
    contiguous runs, run in parallel threads.

    For kernels whose work falls into independent chunks: NumPy releases the GIL in array
    operations, so two threads put two cores on the element-wise work too, which BLAS threads
    never do. While the groups run, the BLAS is set to one thread (and put back afterwards):
    each thread's GEMMs then run on its own core instead of two threads' GEMMs fighting over
    one shared BLAS pool. (OpenBLAS's ``openblas_set_num_threads_local`` would be the
    per-thread way, but in its pthreads builds it changes the global count too.)

    Args:
        fn (callable): takes a list of items (one group), returns anything.
        items (list): the work items, e.g. (start, stop) chunks of a batch.
        workers (int, default None): threads; None: :func:`get_num_workers` (unless set, what
            the BLAS may use, so ``set_num_threads(1)`` makes every kernel single-threaded).
            With 1, or a single item, ``fn`` runs once in this thread on all items.

    Returns the list of the groups' results, in order.
    """
    items = list(items)
    blas_threads = get_num_threads()
    workers = max(1, min(len(items), get_num_workers() if workers is None else int(workers)))
    if workers == 1:
        return [fn(items)]
    size, extra = divmod(len(items), workers)
    groups, start = [], 0
    for i in range(workers):
        stop = start + size + (1 if i < extra else 0)
        groups.append(items[start:stop])
        start = stop
    if _pool["workers"] < workers:
        from concurrent.futures import ThreadPoolExecutor

        if _pool["executor"] is not None:
            _pool["executor"].shutdown(wait=False)
        _pool["executor"] = ThreadPoolExecutor(workers, thread_name_prefix="npcnn")
        _pool["workers"] = workers
    if blas_threads > 1:
        set_num_threads(1)
    try:
        return list(_pool["executor"].map(fn, groups))
    finally:
        if blas_threads > 1:
            set_num_threads(blas_threads)
