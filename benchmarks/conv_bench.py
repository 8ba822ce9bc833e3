"""Convolution benchmark: im2col (and FFT, direct) against NumPy GEMM and PyTorch.

For each layer shape and algorithm it measures, in float32:

* forward and forward+backward time (median of --repeats runs after one warm-up);
* effective GFLOP/s: 2*N*O*(C/groups)*kh*kw*Ho*Wo flops for the forward, three times that for
  forward+backward (the forward, weight-gradient and input-gradient products);
* the ratio to NumPy's float32 GEMM throughput on the very matrix shapes im2col multiplies
  (O x K times K x N*Ho*Wo, and the two backward products), measured in the same run, so the
  ratio says how much of the BLAS speed the kernel keeps after im2col, col2im and transposes;
* the ratio to PyTorch's CPU convolution (torch.nn.functional.conv2d, same thread count) when
  torch is installed: > 1 means npcnn is faster;
* peak memory allocated by one forward and by one backward call (tracemalloc).

Not a test: timings on a shared machine are noisy; compare ratios measured in one run.

    python benchmarks/conv_bench.py                 # all shapes
    python benchmarks/conv_bench.py --shapes vgg3x3 --repeats 7
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
    "alexnet_conv1": (16, 3, 227, 227, 96, 11, 4, 0),
    "resnet_stem": (16, 3, 224, 224, 64, 7, 2, 3),
    "bottleneck1x1": (16, 256, 56, 56, 64, 1, 1, 0),
}


def median_time(fn, repeats):
    fn()  # warm-up: first-touch page faults, BLAS thread start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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


def gemm_seconds(O, K, cols, repeats, rng):
    """Median times of the three float32 GEMMs of im2col: W @ cols, dout @ cols^T, W^T @ dout."""
    w = rng.standard_normal((O, K), dtype=np.float32)
    c = rng.standard_normal((K, cols), dtype=np.float32)
    d = rng.standard_normal((O, cols), dtype=np.float32)
    forward = median_time(lambda: w @ c, repeats)
    backward = median_time(lambda: d @ c.T, repeats) + median_time(lambda: w.T @ d, repeats)
    return forward, forward + backward


def torch_seconds(x, w, b, stride, padding, repeats):
    try:
        import torch
    except ImportError:
        return None
    tx, tw, tb = (torch.tensor(a) for a in (x, w, b))
    forward = median_time(lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, padding), repeats)
    tx.requires_grad_(True)
    tw.requires_grad_(True)
    tb.requires_grad_(True)

    def both():
        out = torch.nn.functional.conv2d(tx, tw, tb, stride, padding)
        out.backward(torch.ones_like(out))
        tx.grad = tw.grad = tb.grad = None

    return forward, median_time(both, repeats)


def bench_shape(name, algos, repeats, rng):
    N, C, H, W, O, k, stride, padding = SHAPES[name]
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((O, C, k, k), dtype=np.float32) * (1.0 / (C * k * k)) ** 0.5
    b = rng.standard_normal(O, dtype=np.float32)
    pads = ((padding, padding), (padding, padding))
    g = F.conv_geometry(x.shape, w.shape, (stride, stride), pads)
    flops = 2.0 * N * O * C * k * k * g.Ho * g.Wo
    gemm = gemm_seconds(O, C * k * k, N * g.Ho * g.Wo, repeats, rng)
    ref = torch_seconds(x, w, b, stride, padding, repeats)
    rows = []
    for algo in algos:
        kernels = conv_kernels(algo)
        if kernels is None or (algo == "direct" and name != "tiny"):
            continue
        forward, backward = kernels
        out, cache = forward(x, w, b, (stride, stride), pads)
        dout = rng.standard_normal(out.shape, dtype=np.float32)
        t_fwd = median_time(lambda: forward(x, w, b, (stride, stride), pads), repeats)
        t_both = median_time(lambda: backward(dout, forward(x, w, b, (stride, stride), pads)[1]), repeats)
        rows.append(dict(
            shape=name, algo=algo, fwd_ms=1e3 * t_fwd, both_ms=1e3 * t_both,
            fwd_gflops=flops / t_fwd / 1e9, both_gflops=3 * flops / t_both / 1e9,
            fwd_vs_gemm=gemm[0] / t_fwd, both_vs_gemm=gemm[1] / t_both,
            fwd_vs_torch=(ref[0] / t_fwd) if ref else None, both_vs_torch=(ref[1] / t_both) if ref else None,
            fwd_peak_mb=peak_bytes(lambda: forward(x, w, b, (stride, stride), pads)) / 2 ** 20,
            bwd_peak_mb=peak_bytes(lambda: backward(dout, cache)) / 2 ** 20,
        ))
    return rows, gemm, ref, flops


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--algos", nargs="*", default=["im2col", "fft", "direct"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}; times are medians of {args.repeats}; "
          "x GEMM = NumPy float32 GEMM time for the same matrix shapes / kernel time; "
          "x torch = torch time / kernel time (> 1: npcnn faster)")
    header = (f"{'shape':<14} {'algo':<7} {'fwd ms':>8} {'f+b ms':>8} {'fwd GF/s':>9} {'f+b GF/s':>9} "
              f"{'fwd xGEMM':>9} {'f+b xGEMM':>9} {'fwd xtorch':>10} {'f+b xtorch':>10} "
              f"{'fwd MB':>8} {'bwd MB':>8}")
    print(header)
    print("-" * len(header))
    for name in args.shapes:
        rows, gemm, ref, flops = bench_shape(name, args.algos, args.repeats, rng)
        for r in rows:
            print(f"{r['shape']:<14} {r['algo']:<7} {r['fwd_ms']:8.1f} {r['both_ms']:8.1f} "
                  f"{r['fwd_gflops']:9.1f} {r['both_gflops']:9.1f} {r['fwd_vs_gemm']:9.2f} "
                  f"{r['both_vs_gemm']:9.2f} {fmt(r['fwd_vs_torch'], '10.2f')} {fmt(r['both_vs_torch'], '10.2f')} "
                  f"{r['fwd_peak_mb']:8.1f} {r['bwd_peak_mb']:8.1f}")
        gemm_gf = (flops / gemm[0] / 1e9, 3 * flops / gemm[1] / 1e9)
        torch_ms = "-" if ref is None else f"{1e3 * ref[0]:.1f} / {1e3 * ref[1]:.1f} ms"
        print(f"{'':<14} GEMM {gemm_gf[0]:.1f} / {gemm_gf[1]:.1f} GF/s (fwd / f+b); torch {torch_ms}")


if __name__ == "__main__":
    main()
