"""Fair speed comparison: npcnn, PyTorch (CPU), DeZero and Chainer, each in a process of its own.

Timing two frameworks in one process makes their thread pools (NumPy's OpenBLAS, PyTorch's
OpenMP/MKL) fight over the same cores: PyTorch measured inside npcnn's benchmark process ran at
a third of its own speed. Here every (framework, work) measurement is a fresh subprocess that
imports only its framework; the driver alternates the frameworks (in a rotated order) over
``--rounds`` rounds and reports, per framework, the median over rounds of each process's median
step time, with the min-max over rounds. npcnn runs with its library defaults (the BLAS
thread variables and ``NPCNN_NUM_THREADS`` unset in its process: one BLAS thread, its
convolution, BatchNorm, ReLU and pooling kernels sharing the batch over threads on all
available cores); the other frameworks get ``--threads`` threads (OPENBLAS/OMP/MKL_NUM_THREADS,
and ``torch.set_num_threads`` for PyTorch). Every process gets the same weights (written once
from a seeded npcnn model) and the same batch. Before any figure is reported, the outputs of
each framework are compared with npcnn's (training: logits and loss of the first step and the
loss of the second, which checks the backward pass and the SGD update too; convolution: out,
dx, dW, db); a twin that differs makes the run fail.

Suites (``--suite``, several allowed; results as JSON and markdown under ``--out``, runs/bench):

* ``fair``: LeNet-5 (ReLU, max pool, 28x28) and ResNet-20 (CIFAR) training img/s at batch 128,
  the 3x3 conv 64->64 on 64x64x32x32 forward+backward GFLOP/s (3 x 2*N*O*C*9*H*W flops; npcnn
  runs with its defaults, ``Conv2d(algo="auto")`` = im2col for these, and for ResNet-20 and the
  conv also with every 3x3 stride-1 convolution by Winograd), and the float32 GEMM throughput
  of NumPy and PyTorch;
* ``scaling``: step time, img/s and peak RSS (``resource.getrusage`` in the child, so it
  includes the framework's import) of npcnn and PyTorch against depth (ResNet-20/32/44/56/110
  at batch 128) and batch size (32..512, ResNet-20); npcnn with its defaults, PyTorch with
  ``--threads``;
* ``load``: a ResNet-20 step of npcnn with its default (1 BLAS thread, kernels on all cores),
  with ``NPCNN_NUM_THREADS=1``, with 2 BLAS threads (``OPENBLAS_NUM_THREADS=2``, with and
  without ``OPENBLAS_THREAD_TIMEOUT=4``) and of PyTorch with 1 and 2 threads, quiet and beside
  one competing busy process (a pure-Python loop; a one-thread GEMM loop).

Commands (the README's figures come from these, on a quiet machine: check ``uptime`` first):

    python benchmarks/fair_bench.py --suite fair --rounds 3 \\
        --python-dezero /tmp/dz/bin/python --python-chainer /tmp/ch/bin/python
    python benchmarks/fair_bench.py --suite scaling
    python benchmarks/fair_bench.py --suite load --rounds 2
    python benchmarks/fair_bench.py --tiny --suite fair scaling load      # plumbing check, seconds

DeZero installs with ``pip install dezero``. Chainer 7.8.1 needs NumPy < 2 and a wheel built
with setuptools < 70: ``python -m venv /tmp/ch && /tmp/ch/bin/pip install "numpy<2"
"setuptools<70" wheel && /tmp/ch/bin/pip install chainer==7.8.1 --no-build-isolation`` (its
NumPy 1.26 brings its own OpenBLAS). A framework whose interpreter cannot import it is skipped
with the reason. Not a test: figures from a machine with other work on it mean little.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

INPUT = {"lenet5": (1, 28, 28), "conv3x3": (64, 32, 32)}  # resnets: (3, 32, 32)
CONV_FLOPS = 3 * 2.0 * 64 * 64 * 64 * 9 * 32 * 32  # forward + dW + dx of the conv3x3 work at N = 64


def input_shape(work):
    return INPUT.get(work, (3, 32, 32))


# ============================================================================= the worker


def worker_main(args):
    """One framework, one work, in this process: check outputs, time steps, print RESULT json."""
    import resource

    import numpy as np

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    import frameworks

    data = dict(np.load(args.state))
    x, y = data.pop("__x__"), data.pop("__y__")
    if args.framework == "gemm-numpy" or args.framework == "gemm-torch":
        return gemm_worker(args)
    build = frameworks.BUILDERS[args.framework.split("-")[0]]
    kwargs = {}
    if args.framework == "torch":
        kwargs["threads"] = args.threads
    if args.framework == "npcnn-winograd":
        kwargs["algo"] = "winograd"  # every 3x3 stride-1 conv by Winograd ("auto" takes im2col)
    if args.framework.startswith("npcnn") and args.npcnn_threads != "env":
        import npcnn.threads

        n = npcnn.threads.default_num_threads() if args.npcnn_threads == "auto" else int(args.npcnn_threads)
        npcnn.threads.set_num_threads(n)
    step = build(args.work, data, x, y, **kwargs)
    rss_before = rss_mb()
    times, checks = [], {}
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        out = step()
        elapsed = time.perf_counter() - start
        if i < 2:
            checks.update({f"step{i + 1}_{k}": np.asarray(v) for k, v in out.items()
                           if i == 0 or k == "loss"})
        if i >= args.warmup:
            times.append(elapsed)
    np.savez(args.check_out, **checks)
    result = {"framework": args.framework, "work": args.work, "batch": args.batch, "threads": args.threads,
              "times_s": times, "median_s": statistics.median(times), "rss_before_mb": rss_before,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
              "versions": versions(args.framework)}
    if args.framework.startswith("npcnn"):
        import npcnn.threads

        result["blas_threads"] = npcnn.threads.get_num_threads()
        result["workers"] = npcnn.threads.get_num_workers()  # threads the split kernels share chunks over
    print("RESULT " + json.dumps(result), flush=True)


def gemm_worker(args):
    """float32 GEMM throughput (n x n times n x n), NumPy's BLAS or PyTorch's."""
    import numpy as np

    n = args.batch
    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in (0, 1))
    if args.framework == "gemm-torch":
        import torch

        torch.set_num_threads(args.threads)
        a, b = torch.from_numpy(a), torch.from_numpy(b)
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        a @ b
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    np.savez(args.check_out)
    print("RESULT " + json.dumps({"framework": args.framework, "work": "gemm", "batch": n, "threads": args.threads,
                                  "times_s": times, "median_s": statistics.median(times),
                                  "versions": versions(args.framework)}), flush=True)


def rss_mb():
    """This process's resident memory now, in MB (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        return None


def versions(framework):
    import numpy as np

    found = {"numpy": np.__version__, "python": platform.python_version()}
    for name in ("torch", "dezero", "chainer"):
        if name in sys.modules:
            found[name] = getattr(sys.modules[name], "__version__", "?")
    return found


def busy_main(kind):
    """A competing process: a pure-Python loop, or a one-thread float32 GEMM loop, forever."""
    if kind == "python":
        x = 0
        while True:
            x = (x * 31 + 7) % 1000003
    import numpy as np

    a = np.ones((512, 512), dtype=np.float32)
    while True:
        a @ a


# ============================================================================= the driver


class Driver:
    """Starts workers, checks their outputs against npcnn's, collects the timings."""

    def __init__(self, args, tmp):
        self.args, self.tmp, self.records = args, pathlib.Path(tmp), []
        self.pythons = {"npcnn": sys.executable, "npcnn-winograd": sys.executable,
                        "torch": args.python_torch,
                        "dezero": args.python_dezero, "chainer": args.python_chainer,
                        "gemm-numpy": sys.executable, "gemm-torch": args.python_torch}
        self.skipped, self.states, self.references = {}, {}, {}

    def state(self, work, batch):
        """Path of the .npz holding the work's weights (from a seeded npcnn model) and batch."""
        key = (work, batch)
        if key not in self.states:
            import numpy as np

            sys.path.insert(0, str(ROOT))
            sys.path.insert(0, str(HERE))
            import frameworks
            import npcnn

            npcnn.manual_seed(0)
            if work in ("conv3x3", "gemm"):
                state = frameworks.npcnn_conv_state()
            else:
                state = {k: np.array(npcnn.to_numpy(v)) for k, v in frameworks.npcnn_model(work).state_dict().items()}
            rng = np.random.default_rng(0)
            state["__x__"] = rng.standard_normal((batch,) + input_shape(work)).astype(np.float32)
            state["__y__"] = rng.integers(0, 10, batch).astype(np.int64)
            path = self.tmp / f"state_{work}_{batch}.npz"
            np.savez(path, **state)
            self.states[key] = path
        return self.states[key]

    def run(self, framework, work, batch, warmup, steps, threads, env=None, label=None, npcnn_threads="env",
            condition="quiet"):
        """One worker process; returns its result dict (also recorded), or None if skipped.

        The child's environment: this one's, the BLAS thread variables set to ``threads``, then
        ``env`` applied (a value None unsets the variable). ``env`` None: ``NPCNN_DEFAULTS`` for
        npcnn (the BLAS variables and NPCNN_NUM_THREADS unset, so npcnn's own default applies
        whatever ``threads`` says), nothing more for the others."""
        if (framework, work) in self.skipped:
            return None
        if env is None:
            env = NPCNN_DEFAULTS if framework.startswith("npcnn") else {}
        check = self.tmp / f"check_{framework}_{work}_{batch}_{len(self.records)}.npz"
        cmd = [self.pythons[framework], str(pathlib.Path(__file__).resolve()), "--worker",
               "--framework", framework, "--work", work, "--batch", str(batch), "--warmup", str(warmup),
               "--steps", str(steps), "--threads", str(threads), "--state", str(self.state(work, batch)),
               "--check-out", str(check), "--npcnn-threads", npcnn_threads]
        child_env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            child_env[var] = str(threads)
        child_env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        for var, val in (env or {}).items():  # None: unset (npcnn's own default applies)
            if val is None:
                child_env.pop(var, None)
            else:
                child_env[var] = val
        try:
            proc = subprocess.run(cmd, env=child_env, capture_output=True, text=True, timeout=self.args.worker_timeout)
        except subprocess.TimeoutExpired:
            print(f"  {condition:<13} {label or framework:<24} {work:<10} b{batch:<4} t{threads} "
                  f"did not finish in {self.args.worker_timeout} s (left out)", flush=True)
            self.skipped[(framework + (f" [{label}, {condition}]" if label else ""), work)] = "timed out"
            return None
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            if framework in ("dezero", "chainer", "torch", "gemm-torch"):
                print(f"  skipping {framework} {work}: {reason}", flush=True)
                self.skipped[(framework, work)] = reason
                return None
            raise RuntimeError(f"{framework} {work} failed:\n{proc.stderr}")
        result = json.loads(lines[-1][len("RESULT "):])
        result.update(label=label or framework, condition=condition, env=env, npcnn_threads=npcnn_threads)
        if work != "gemm":
            result["check"] = self.compare(framework, work, batch, check)
        self.records.append(result)
        rate = (f"{batch / result['median_s']:8.0f} img/s" if work not in ("conv3x3", "gemm")
                else f"{result['median_s'] * 1e3:8.1f} ms")
        used = (f" (BLAS {result['blas_threads']}, workers {result['workers']})" if "blas_threads" in result
                else "")
        print(f"  {condition:<13} {result['label']:<24} {work:<10} b{batch:<4} t{threads} {rate}"
              f"  peak {result.get('peak_rss_mb', 0):6.0f} MB{used}", flush=True)
        return result

    def compare(self, framework, work, batch, check):
        """Compare a worker's outputs with npcnn's for the same work (npcnn runs first)."""
        import numpy as np

        got = dict(np.load(check))
        key = (work, batch)
        if framework == "npcnn" and key not in self.references:
            self.references[key] = got
            return "reference"
        ref = self.references.get(key)
        if ref is None:
            return "unchecked"
        worst = 0.0
        for name, value in ref.items():
            if name not in got:
                continue
            scale = max(float(np.abs(value).max()), 1e-6)
            worst = max(worst, float(np.abs(got[name].astype(np.float64) - value).max()) / scale)
        if worst > self.args.check_tol:
            raise AssertionError(f"{framework} {work} batch {batch}: outputs differ from npcnn's by {worst:.2e} "
                                 f"(relative to their scale; tolerance {self.args.check_tol})")
        return f"max rel diff {worst:.1e}"


def rounds_of(driver, jobs, rounds):
    """Run ``jobs`` (kwargs for Driver.run) ``rounds`` times, rotating their order each round.

    npcnn's job of a work runs first in round one, so its outputs are the reference."""
    for r in range(rounds):
        order = jobs if r == 0 else jobs[r % len(jobs):] + jobs[:r % len(jobs)]
        for job in order:
            driver.run(**job)


def summarize(records):
    """Group records by (condition, label, work, batch, threads): median over rounds and range."""
    groups = {}
    for rec in records:
        key = (rec["condition"], rec["label"], rec["work"], rec["batch"], rec["threads"])
        groups.setdefault(key, []).append(rec)
    rows = []
    for (condition, label, work, batch, threads), recs in groups.items():
        meds = [r["median_s"] for r in recs]
        row = {"condition": condition, "label": label, "work": work, "batch": batch, "threads": threads,
               "rounds": len(recs), "step_s": statistics.median(meds), "step_min_s": min(meds),
               "step_max_s": max(meds), "peak_rss_mb": max(r.get("peak_rss_mb") or 0 for r in recs),
               "rss_before_mb": max(r.get("rss_before_mb") or 0 for r in recs),
               "check": recs[0].get("check"), "versions": recs[0].get("versions"),
               "blas_threads": recs[0].get("blas_threads"), "workers": recs[0].get("workers")}
        if work == "gemm":
            flops = 2.0 * batch ** 3
            row.update(gflops=flops / row["step_s"] / 1e9, gflops_lo=flops / row["step_max_s"] / 1e9,
                       gflops_hi=flops / row["step_min_s"] / 1e9)
        elif work == "conv3x3":
            flops = CONV_FLOPS * batch / 64
            row.update(gflops=flops / row["step_s"] / 1e9, gflops_lo=flops / row["step_max_s"] / 1e9,
                       gflops_hi=flops / row["step_min_s"] / 1e9)
        else:
            row.update(img_s=batch / row["step_s"], img_s_lo=batch / row["step_max_s"],
                       img_s_hi=batch / row["step_min_s"])
        rows.append(row)
    return rows


def rate(row):
    """'median (lo-hi)' of the row's rate: img/s or GFLOP/s."""
    if "img_s" in row:
        return f"{row['img_s']:,.0f} ({row['img_s_lo']:,.0f}-{row['img_s_hi']:,.0f})"
    return f"{row['gflops']:.1f} ({row['gflops_lo']:.1f}-{row['gflops_hi']:.1f})"


def value(row):
    return row.get("img_s", row.get("gflops"))


# ----------------------------------------------------------------------------- suites


def suite_fair(driver, args):
    t = args.threads
    b, conv_b = (8, 4) if args.tiny else (args.batch, 64)
    steps = {"lenet5": (3, 10), "resnet20": (1, 4), "conv3x3": (2, 5)}
    if args.tiny:
        steps = {k: (2, 1) for k in steps}
    frameworks = [f for f in ("npcnn", "torch", "dezero", "chainer") if f in args.frameworks]
    for work in ("lenet5", "resnet20", "conv3x3"):
        batch = conv_b if work == "conv3x3" else b
        # npcnn (and npcnn-winograd, every 3x3 stride-1 conv by Winograd: the other algorithm)
        # with the library's thread defaults (Driver.run: NPCNN_DEFAULTS), the others with t threads
        names = frameworks + (["npcnn-winograd"] if work != "lenet5" and "npcnn" in frameworks else [])
        jobs = [dict(framework=f, work=work, batch=batch, warmup=steps[work][0], steps=steps[work][1], threads=t)
                for f in names]
        print(f"{work}:", flush=True)
        rounds_of(driver, jobs, args.rounds)
    n = 256 if args.tiny else 2048
    print("gemm:", flush=True)
    rounds_of(driver, [dict(framework=f, work="gemm", batch=n, warmup=2, steps=5, threads=t)
                       for f in ("gemm-numpy", "gemm-torch")], args.rounds)


def suite_scaling(driver, args):
    t = args.threads
    depths = (20, 32) if args.tiny else (20, 32, 44, 56, 110)
    batches = (4, 8) if args.tiny else (32, 64, 128, 256, 512)
    b = 8 if args.tiny else args.batch
    warmup, steps = (1, 1) if args.tiny else (1, 3)
    # npcnn with its defaults (Driver.run: NPCNN_DEFAULTS), PyTorch with torch.set_num_threads(t)
    jobs = [dict(framework=f, work=f"resnet{d}", batch=b, warmup=warmup, steps=steps, threads=t)
            for d in depths for f in ("npcnn", "torch")]
    jobs += [dict(framework=f, work="resnet20", batch=n, warmup=warmup, steps=steps, threads=t)
             for n in batches if n != b for f in ("npcnn", "torch")]
    rounds_of(driver, jobs, args.rounds)


# None: unset in the child. NPCNN_DEFAULTS: npcnn's library defaults (NPCNN_NUM_THREADS unset and no
# BLAS variable, so its "split" default applies: 1 BLAS thread, kernel workers on all cores).
UNSET = {"OPENBLAS_NUM_THREADS": None, "OMP_NUM_THREADS": None, "MKL_NUM_THREADS": None}
NPCNN_DEFAULTS = dict(UNSET, NPCNN_NUM_THREADS=None, OPENBLAS_THREAD_TIMEOUT=None)
LOAD_VARIANTS = [  # (label, framework, threads, npcnn_threads, env: applied after the BLAS variables = threads)
    ("npcnn default (1 BLAS thread, kernels on all cores)", "npcnn", 1, "env", NPCNN_DEFAULTS),
    ("npcnn NPCNN_NUM_THREADS=1 (one thread for everything)", "npcnn", 1, "env",
     dict(NPCNN_DEFAULTS, NPCNN_NUM_THREADS="1")),
    ("npcnn OPENBLAS_NUM_THREADS=2 (2 BLAS threads)", "npcnn", 2, "env",
     dict(NPCNN_DEFAULTS, OPENBLAS_NUM_THREADS="2")),
    ("npcnn OPENBLAS_NUM_THREADS=2, OPENBLAS_THREAD_TIMEOUT=4", "npcnn", 2, "env",
     dict(NPCNN_DEFAULTS, OPENBLAS_NUM_THREADS="2", OPENBLAS_THREAD_TIMEOUT="4")),
    ("torch 1 thread", "torch", 1, "env", {}),
    ("torch 2 threads", "torch", 2, "env", {}),
]


def suite_load(driver, args):
    b = 8 if args.tiny else args.batch
    warmup, steps = (1, 1) if args.tiny else (1, 2)
    jobs = [dict(framework=fw, work="resnet20", batch=b, warmup=warmup, steps=steps, threads=t, label=label,
                 npcnn_threads=nt, env=env) for label, fw, t, nt, env in LOAD_VARIANTS]
    for condition in ("quiet", "busy-python", "busy-gemm"):
        busy = None
        if condition != "quiet":
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
            busy = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).resolve()), "--busy",
                                     condition.split("-")[1]], env=env)
            time.sleep(1.0)
        try:
            for job in jobs:
                job["condition"] = condition
            rounds_of(driver, jobs, args.rounds)
        finally:
            if busy is not None:
                busy.terminate()
                busy.wait()


SUITES = {"fair": suite_fair, "scaling": suite_scaling, "load": suite_load}


# ----------------------------------------------------------------------------- reports


def table_fair(rows, threads):
    by = {(r["work"], r["label"]): r for r in rows if r["condition"] == "quiet"}
    lines = [f"| work ({threads} threads, float32) | PyTorch | npcnn | npcnn / PyTorch | DeZero | Chainer | "
             "npcnn / DeZero | npcnn / Chainer |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    works = [("lenet5", "LeNet-5 (ReLU, max pool, 28x28) train, img/s"),
             ("resnet20", "ResNet-20 (CIFAR) train, img/s"),
             ("conv3x3", "3x3 conv 64->64 32x32 N=64 fwd+bwd, GFLOP/s")]
    for work, title in works:
        cells = {f: by.get((work, f)) for f in ("torch", "npcnn", "dezero", "chainer", "npcnn-winograd")}

        def ratio(a, b):
            return "-" if cells[a] is None or cells[b] is None else f"{value(cells[a]) / value(cells[b]):.2f}"

        def cell(f):
            return "-" if cells[f] is None else rate(cells[f])

        lines.append(f"| {title} | {cell('torch')} | {cell('npcnn')} | {ratio('npcnn', 'torch')} | {cell('dezero')} "
                     f"| {cell('chainer')} | {ratio('npcnn', 'dezero')} | {ratio('npcnn', 'chainer')} |")
        if cells["npcnn-winograd"] is not None:
            lines.append(f"| ... npcnn, 3x3 stride-1 convs by Winograd | | {cell('npcnn-winograd')} | "
                         f"{ratio('npcnn-winograd', 'torch')} | | | {ratio('npcnn-winograd', 'dezero')} | "
                         f"{ratio('npcnn-winograd', 'chainer')} |")
    for label, title in (("gemm-numpy", "NumPy (OpenBLAS)"), ("gemm-torch", "PyTorch (MKL)")):
        r = by.get(("gemm", label))
        if r is not None:
            lines.append(f"\nfloat32 GEMM {r['batch']}x{r['batch']}x{r['batch']}, {title}: {rate(r)} GFLOP/s")
    npcnn = next((r for r in rows if r["label"] == "npcnn" and r.get("blas_threads") is not None), None)
    if npcnn is not None:
        lines.append(f"\nnpcnn with its defaults: {npcnn['blas_threads']} BLAS thread(s), kernels on "
                     f"{npcnn['workers']} thread(s); the others with {threads} threads")
    lines.append("\nmedian over rounds of each process's median step, (min-max over rounds); "
                 "twin checks: " + ", ".join(f"{r['label']} {r['work']}: {r['check']}" for r in rows
                                             if r.get("check") not in (None, "reference")))
    return "\n".join(lines)


def table_scaling(rows):
    by = {(r["work"], r["batch"], r["label"]): r for r in rows}
    keys = sorted({(r["work"], r["batch"]) for r in rows}, key=lambda k: (int(k[0][6:]), k[1]))
    lines = ["| net | batch | npcnn ms/step | PyTorch ms/step | npcnn / PyTorch speed | npcnn peak RSS MB | "
             "PyTorch peak RSS MB |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for work, batch in keys:
        a, t = by.get((work, batch, "npcnn")), by.get((work, batch, "torch"))

        def ms(r):
            if r is None:
                return "-"
            return f"{1e3 * r['step_s']:,.0f} ({1e3 * r['step_min_s']:,.0f}-{1e3 * r['step_max_s']:,.0f})"

        ratio = "-" if a is None or t is None else f"{t['step_s'] / a['step_s']:.2f}"
        mem = ["-" if r is None else f"{r['peak_rss_mb']:,.0f}" for r in (a, t)]
        lines.append(f"| ResNet-{work[6:]} | {batch} | {ms(a)} | {ms(t)} | {ratio} | {mem[0]} | {mem[1]} |")
    lines.append("\npeak RSS: ru_maxrss of the child process (includes the framework's import: "
                 + ", ".join(f"{r['label']} {r['rss_before_mb']:.0f} MB before the first step"
                             for r in rows if r["work"] == "resnet20" and r["batch"] == min(x['batch'] for x in rows))
                 + ")")
    return "\n".join(lines)


def table_load(rows):
    conditions = [c for c in ("quiet", "busy-python", "busy-gemm") if any(r["condition"] == c for r in rows)]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    by = {(r["condition"], r["label"]): r for r in rows}
    lines = ["| ResNet-20 train, batch %d, ms/step | " % rows[0]["batch"] + " | ".join(conditions) + " |",
             "| --- |" + " --- |" * len(conditions)]
    for label in labels:
        cells = []
        for c in conditions:
            r = by.get((c, label))
            cells.append("-" if r is None else f"{1e3 * r['step_s']:,.0f} ({1e3 * r['step_min_s']:,.0f}-"
                                               f"{1e3 * r['step_max_s']:,.0f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_info():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    except OSError:
        model = platform.processor()
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "cpu": model, "cores": os.cpu_count(), "loadavg": os.getloadavg()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", nargs="+", default=["fair"], choices=list(SUITES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads of PyTorch, DeZero, Chainer and the GEMMs (fair, scaling); npcnn runs with "
                        "its library defaults")
    parser.add_argument("--frameworks", nargs="+", default=["npcnn", "torch", "dezero", "chainer"])
    parser.add_argument("--python-torch", default=sys.executable)
    parser.add_argument("--python-dezero", default=sys.executable)
    parser.add_argument("--python-chainer", default=sys.executable)
    parser.add_argument("--check-tol", type=float, default=2e-3, help="twin outputs, relative to their scale")
    parser.add_argument("--worker-timeout", type=float, default=300.0, help="seconds one process may take")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, 1 round: checks the plumbing only")
    # worker mode (started by the driver)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--busy", choices=["python", "gemm"], help=argparse.SUPPRESS)
    for name in ("--framework", "--work", "--state", "--check-out", "--npcnn-threads"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.busy:
        return busy_main(args.busy)
    if args.worker:
        return worker_main(args)
    if args.tiny:
        args.rounds = 1
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="fair_bench_")
    try:
        for suite in args.suite:
            info = machine_info()
            print(f"suite {suite}: {info}", flush=True)
            driver = Driver(args, tmp)
            SUITES[suite](driver, args)
            rows = summarize(driver.records)
            info["loadavg_after"] = os.getloadavg()
            table = {"fair": lambda: table_fair(rows, args.threads), "scaling": lambda: table_scaling(rows),
                     "load": lambda: table_load(rows)}[suite]()
            name = suite + ("_tiny" if args.tiny else "")
            command = "python " + " ".join([pathlib.Path(sys.argv[0]).as_posix()] + sys.argv[1:])
            skipped = {" ".join(k): v for k, v in driver.skipped.items()}
            (out / f"{name}.json").write_text(json.dumps({"machine": info, "command": command, "rows": rows,
                                                          "records": driver.records, "skipped": skipped}, indent=1))
            md = (f"<!-- {command} -->\n{info['date_utc']} UTC, {info['cpu']}, {info['cores']} cores, load average "
                  f"{info['loadavg'][0]:.2f} before / {info['loadavg_after'][0]:.2f} after\n\n{table}\n")
            if driver.skipped:
                md += "\nskipped: " + "; ".join(f"{' '.join(k)}: {v}" for k, v in driver.skipped.items()) + "\n"
            (out / f"{name}.md").write_text(md)
            print(md, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
