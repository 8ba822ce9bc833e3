"""Convolution benchmark: im2col, Winograd, FFT and direct against NumPy's own GEMM speed.

For each layer shape and algorithm it measures, in float32:

* forward and forward+backward time (median of --repeats rounds after one warm-up; the
  candidates are timed round-robin so that a shared machine's load hits all alike);
* effective GFLOP/s: 2*N*O*(C/groups)*kh*kw*Ho*Wo flops for the forward, three times that for
  forward+backward (the forward, weight-gradient and input-gradient products);
* the ratio to NumPy's float32 GEMM throughput on the very matrix shapes im2col multiplies
  (O x K times K x N*Ho*Wo, and the two backward products), measured in the same run, so the
  ratio says how much of the BLAS speed the kernel keeps after im2col, col2im and transposes;
* peak memory allocated by one forward and by one backward call (tracemalloc).

PyTorch is not timed here: in one process its thread pool and NumPy's OpenBLAS fight over the
cores and both slow down (PyTorch measured inside this script ran at a third of its own speed).
``benchmarks/fair_bench.py`` times every framework in its own process.

Not a test: timings on a shared machine are noisy; compare ratios measured in one run.

    python benchmarks/conv_bench.py                 # all shapes
    python benchmarks/conv_bench.py --shapes vgg3x3 --repeats 7
    python benchmarks/conv_bench.py --algos im2col winograd --shapes vgg3x3 resnet20_s1 resnet20_s2 resnet20_s3
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/conv_bench.py --timer cpu   # one core
"""

import argparse
import pathlib
import statistics
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from npcnn.functional import conv as F  # noqa: E402

# name: (N, C, H, W, O, k, stride, padding)
SHAPES = {
    "tiny": (2, 3, 8, 8, 4, 3, 1, 1),
    "lenet_conv1": (64, 1, 32, 32, 6, 5, 1, 0),
    "lenet_conv2": (64, 6, 14, 14, 16, 5, 1, 0),
    "vgg3x3": (64, 64, 32, 32, 64, 3, 1, 1),
    # the 3x3 convolutions of ResNet-20's three stages at batch 128
    "resnet20_stem": (128, 3, 32, 32, 16, 3, 1, 1),
    "resnet20_s1": (128, 16, 32, 32, 16, 3, 1, 1),
    "resnet20_s2": (128, 32, 16, 16, 32, 3, 1, 1),
    "resnet20_s3": (128, 64, 8, 8, 64, 3, 1, 1),
    "vgg3x3_c128": (32, 128, 16, 16, 128, 3, 1, 1),
    "vgg3x3_c256": (32, 256, 8, 8, 256, 3, 1, 1),
    "alexnet_conv1": (16, 3, 227, 227, 96, 11, 4, 0),
    "resnet_stem": (16, 3, 224, 224, 64, 7, 2, 3),
    "bottleneck1x1": (16, 256, 56, 56, 64, 1, 1, 0),
    # large kernels at stride 1, where the FFT's cost no longer grows with the kernel area
    "k7_stride1": (16, 32, 64, 64, 32, 7, 1, 3),
    "k11_stride1": (16, 32, 64, 64, 32, 11, 1, 5),
}


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = [time.perf_counter]


def seconds(fn):
    start = _clock[0]()
    fn()
    return _clock[0]() - start


def peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def conv_kernels(algo):
    """(forward(x, w, b, stride, padding), backward(dout, cache)) of an algorithm, or None."""
    if algo == "im2col":
        return F.conv2d_forward, F.conv2d_backward
    if algo == "winograd":
        from npcnn.functional import winograd as Wg

        def forward(x, w, b, stride, padding):
            if not Wg.winograd_applicable(w.shape, stride):
                raise NotImplementedError
            return Wg.winograd_conv2d_forward(x, w, b, padding)

        return forward, Wg.winograd_conv2d_backward
    if algo == "direct":
        def forward(x, w, b, stride, padding):
            return F.conv2d_naive(x, w, b, stride, padding), (x, w, stride, padding)

        def backward(dout, cache):
            x, w, stride, padding = cache
            return F.conv2d_naive_backward(dout, x, w, stride, padding)

        return forward, backward
    try:
        from npcnn.functional import conv_fft
    except ImportError:
        return None
    return conv_fft.conv2d_fft_forward, conv_fft.conv2d_fft_backward


def gemm_timers(O, K, cols, rng):
    """Timers of the three float32 GEMMs of im2col: W @ cols (forward) and forward plus
    dout @ cols^T and W^T @ dout (forward+backward)."""
    w = rng.standard_normal((O, K), dtype=np.float32)
    c = rng.standard_normal((K, cols), dtype=np.float32)
    d = rng.standard_normal((O, cols), dtype=np.float32)
    return (lambda: seconds(lambda: w @ c),
            lambda: seconds(lambda: w @ c) + seconds(lambda: d @ c.T) + seconds(lambda: w.T @ d))


def bench_shape(name, algos, repeats, rng):
    """Times are taken round-robin (GEMM, each algorithm, then again), so that the load
    of a shared machine hits all of them alike; ratios are medians of per-round ratios."""
    N, C, H, W, O, k, stride, padding = SHAPES[name]
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C, k, k), dtype=np.float32) * (1.0 / (C * k * k)) ** 0.5
    b = rng.standard_normal(O, dtype=np.float32)
    pads = ((padding, padding), (padding, padding))
    g = F.conv_geometry(x.shape, w.shape, (stride, stride), pads)
    flops = 2.0 * N * O * C * k * k * g.Ho * g.Wo
    timers = {"gemm": gemm_timers(O, C * k * k, N * g.Ho * g.Wo, rng)}
    peaks = {}
    for algo in algos:
        kernels = conv_kernels(algo)
        if kernels is None or (algo == "direct" and name != "tiny"):
            continue
        forward, backward = kernels
        try:
            out, cache = forward(x, w, b, (stride, stride), pads)
        except NotImplementedError:  # e.g. Winograd on a 5x5 or strided convolution
            continue
        dout = rng.standard_normal(out.shape, dtype=np.float32)
        timers[algo] = (
            lambda f=forward: seconds(lambda: f(x, w, b, (stride, stride), pads)),
            lambda f=forward, bw=backward, d=dout: seconds(lambda: bw(d, f(x, w, b, (stride, stride), pads)[1])),
        )
        peaks[algo] = (peak_bytes(lambda: forward(x, w, b, (stride, stride), pads)) / 2 ** 20,
                       peak_bytes(lambda: backward(dout, cache)) / 2 ** 20)
    for fwd, both in timers.values():  # warm-up: page faults, BLAS threads
        fwd(), both()
    times = {key: ([], []) for key in timers}
    for _ in range(repeats):
        for key, (fwd, both) in timers.items():
            times[key][0].append(fwd())
            times[key][1].append(both())
    med = {key: (statistics.median(f), statistics.median(fb)) for key, (f, fb) in times.items()}

    def ratio(a, b, i):  # median over rounds of time[a] / time[b]
        return statistics.median(ta / tb for ta, tb in zip(times[a][i], times[b][i]))

    rows = []
    for algo in peaks:
        rows.append(dict(
            shape=name, algo=algo, fwd_ms=1e3 * med[algo][0], both_ms=1e3 * med[algo][1],
            fwd_gflops=flops / med[algo][0] / 1e9, both_gflops=3 * flops / med[algo][1] / 1e9,
            fwd_vs_gemm=ratio("gemm", algo, 0), both_vs_gemm=ratio("gemm", algo, 1),
            fwd_peak_mb=peaks[algo][0], bwd_peak_mb=peaks[algo][1],
        ))
    return rows, med["gemm"], flops


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--algos", nargs="*", default=["im2col", "winograd", "fft", "direct"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timer", choices=list(CLOCK), default="wall",
                        help="cpu: process CPU time, steadier on a loaded machine when run single-threaded")
    args = parser.parse_args()
    _clock[0] = CLOCK[args.timer]
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}; {args.timer} time; medians of {args.repeats} rounds; "
          "ratios medians of per-round ratios; "
          "x GEMM = NumPy float32 GEMM time for the same matrix shapes / kernel time")
    header = (f"{'shape':<14} {'algo':<7} {'fwd ms':>8} {'f+b ms':>8} {'fwd GF/s':>9} {'f+b GF/s':>9} "
              f"{'fwd xGEMM':>9} {'f+b xGEMM':>9} {'fwd MB':>8} {'bwd MB':>8}")
    print(header)
    print("-" * len(header))
    for name in args.shapes:
        rows, gemm, flops = bench_shape(name, args.algos, args.repeats, rng)
        for r in rows:
            print(f"{r['shape']:<14} {r['algo']:<7} {r['fwd_ms']:8.1f} {r['both_ms']:8.1f} "
                  f"{r['fwd_gflops']:9.1f} {r['both_gflops']:9.1f} {r['fwd_vs_gemm']:9.2f} "
                  f"{r['both_vs_gemm']:9.2f} {r['fwd_peak_mb']:8.1f} {r['bwd_peak_mb']:8.1f}")
        gemm_gf = (flops / gemm[0] / 1e9, 3 * flops / gemm[1] / 1e9)
        print(f"{'':<14} GEMM {gemm_gf[0]:.1f} / {gemm_gf[1]:.1f} GF/s (fwd / f+b)")


if __name__ == "__main__":
    main()
