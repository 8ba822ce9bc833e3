"""FFT convolution against a plain im2col (sliding windows + one GEMM), forward and forward+backward.

    python benchmarks/fft_vs_im2col.py [--dtype float32] [--repeat 5]

The im2col here is a minimal stand-in (groups=1, stride 1) so this file runs on its own; it prints
median wall times (ms) and the flop estimates of npcnn.functional.conv_fft.fft_cost / im2col_cost.
Timings on a shared machine are noisy: compare ratios, not absolute numbers.
"""

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from npcnn.functional.conv import im2col_cost  # noqa: E402
from npcnn.functional.conv_fft import conv2d_fft_backward, conv2d_fft_forward, fft_cost  # noqa: E402


def im2col_forward(x, w, pad):
    """Stride 1, groups 1: columns (N*Ho*Wo, C*kh*kw) @ W^T."""
    n_out, c, kh, kw = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xpad, (kh, kw), axis=(2, 3))  # N, C, Ho, Wo, kh, kw
    n, _, ho, wo = windows.shape[:4]
    cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    out = (cols @ w.reshape(n_out, -1).T).reshape(n, ho, wo, n_out).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out), (cols, w, xpad.shape, pad)


def im2col_backward(dout, cache):
    cols, w, padded_shape, pad = cache
    n_out, c, kh, kw = w.shape
    n, _, ho, wo = dout.shape
    rows = dout.transpose(0, 2, 3, 1).reshape(-1, n_out)
    dw = (rows.T @ cols).reshape(w.shape)
    dcols = (rows @ w.reshape(n_out, -1)).reshape(n, ho, wo, c, kh, kw)
    dxpad = np.zeros(padded_shape, dtype=dout.dtype)
    for u in range(kh):
        for v in range(kw):
            dxpad[:, :, u:u + ho, v:v + wo] += dcols[:, :, :, :, u, v].transpose(0, 3, 1, 2)
    dx = dxpad[:, :, pad:padded_shape[2] - pad, pad:padded_shape[3] - pad]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def median_ms(fn, repeat):
    fn()  # warm-up (plans, allocations)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    cases = [  # (N, C, H, O, k)
        (16, 16, 32, 32, 3), (16, 16, 32, 32, 5), (16, 16, 32, 32, 7), (16, 16, 32, 32, 11),
        (8, 32, 64, 32, 7), (8, 32, 64, 32, 11), (8, 3, 128, 16, 11),
    ]
    print(f"{'case':<30}{'fwd im2col':>11}{'fwd fft':>9}{'f+b im2col':>11}{'f+b fft':>9}{'flops im2col/fft':>18}")
    for n, c, h, o, k in cases:
        x = rng.standard_normal((n, c, h, h)).astype(args.dtype)
        w = rng.standard_normal((o, c, k, k)).astype(args.dtype)
        b = rng.standard_normal(o).astype(args.dtype)
        pad = k // 2
        padding = ((pad, pad), (pad, pad))
        out, _ = conv2d_fft_forward(x, w, b, padding=padding)
        dout = rng.standard_normal(out.shape).astype(args.dtype)
        ref, _ = im2col_forward(x, w, pad)
        assert np.allclose(ref + b.reshape(1, -1, 1, 1), out, rtol=1e-3, atol=1e-3 * float(np.abs(ref).max()))

        def fft_fb():
            return conv2d_fft_backward(dout, conv2d_fft_forward(x, w, b, padding=padding)[1])

        def im2col_fb():
            return im2col_backward(dout, im2col_forward(x, w, pad)[1])

        times = [median_ms(lambda: im2col_forward(x, w, pad), args.repeat),
                 median_ms(lambda: conv2d_fft_forward(x, w, b, padding=padding), args.repeat),
                 median_ms(im2col_fb, args.repeat), median_ms(fft_fb, args.repeat)]
        ratio = im2col_cost(x.shape, w.shape, padding=padding) / fft_cost(x.shape, w.shape, padding=padding)
        label = f"N{n} C{c} {h}x{h} O{o} k{k}x{k}"
        print(f"{label:<30}" + "".join(f"{t:>{wd}.1f}" for t, wd in zip(times, (11, 9, 11, 9))) + f"{ratio:>18.2f}")


if __name__ == "__main__":
    main()
