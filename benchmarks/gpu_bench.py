"""GPU throughput on the CuPy backend: training steps and convolutions, against the GPU's own
float32 matrix-multiply speed and, when a CUDA PyTorch is installed, against PyTorch on the GPU.

* training step (forward, loss, backward, SGD with momentum) of LeNet-5 (1x32x32) and ResNet-20
  (3x32x32), batch 128: images/s and seconds per epoch;
* Conv2d 3x3 64->64 on 64x32x32 (pad 1) and the 7x7 ResNet stem, forward and forward+backward,
  for im2col and FFT: time, GFLOP/s and the ratio to the float32 GEMM of the same matrix shapes.

GPU work is asynchronous: every timing synchronizes the device before reading the clock (CUDA
events measure the same), and the first calls, which compile CuPy's kernels, are warm-up.

    NPCNN_BACKEND=cupy python benchmarks/gpu_bench.py            # on a machine with CuPy and a GPU
    NPCNN_BACKEND=cupy python benchmarks/gpu_bench.py --quick    # fewer steps

Not yet run on a GPU: no figures from it are in the README. On the fake CuPy of tests/fake_cupy
(``PYTHONPATH=tests/fake_cupy``) it runs end to end, which checks the plumbing only -- the fake
computes on the CPU, so its numbers mean nothing.
"""

import argparse
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import npcnn  # noqa: E402
from npcnn import backend, models, nn  # noqa: E402
from npcnn.functional import conv as F  # noqa: E402
from npcnn.functional import conv_fft  # noqa: E402

NETS = {"lenet5": ((1, 32, 32), 60000), "resnet20": ((3, 32, 32), 50000)}
CONVS = {"3x3 64->64, 64x32x32": (64, 64, 32, 32, 64, 3, 1, 1),  # N, C, H, W, O, k, stride, padding
         "7x7 stem 3->64, 32x224x224": (32, 3, 224, 224, 64, 7, 2, 3)}


def synchronize():
    backend.xp().cuda.get_current_stream().synchronize()


def seconds(fn, repeats):
    """Median wall time of ``fn`` over ``repeats`` synchronized calls."""
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def training_step(name, batch_size, warmup, repeats):
    shape, epoch_images = NETS[name]
    npcnn.manual_seed(0)
    model = models.lenet5() if name == "lenet5" else models.resnet20()
    optimizer = npcnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((batch_size,) + shape).astype(np.float32))
    y = backend.asarray(rng.integers(0, 10, batch_size))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        npcnn.train.train_step(model, loss_fn, optimizer, (x, y))

    seconds(step, warmup)
    step_s = seconds(step, repeats)
    return {"img_s": batch_size / step_s, "epoch_s": epoch_images * step_s / batch_size}


def gemm_seconds(xp, O, K, cols, repeats):
    """Forward GEMM W @ cols and the three GEMMs of forward+backward, float32, on the device."""
    rng = xp.random.default_rng(0)
    w = rng.standard_normal((O, K), dtype=np.float32)
    c = rng.standard_normal((K, cols), dtype=np.float32)
    d = rng.standard_normal((O, cols), dtype=np.float32)
    forward = seconds(lambda: w @ c, repeats)
    return forward, forward + seconds(lambda: d @ c.T, repeats) + seconds(lambda: w.T @ d, repeats)


def conv(name, warmup, repeats):
    N, C, H, W, O, k, stride, padding = CONVS[name]
    xp = backend.xp()
    rng = np.random.default_rng(0)
    x = backend.asarray(rng.standard_normal((N, C, H, W)).astype(np.float32))
    w = backend.asarray((rng.standard_normal((O, C, k, k)) * 0.1).astype(np.float32))
    b = backend.asarray(np.zeros(O, np.float32))
    pads = ((padding, padding), (padding, padding))
    ho, wo = (H + 2 * padding - k) // stride + 1, (W + 2 * padding - k) // stride + 1
    flops = 2.0 * N * O * C * k * k * ho * wo  # multiply-adds of the forward pass, times 2
    gemm_f, gemm_fb = gemm_seconds(xp, O, C * k * k, N * ho * wo, repeats)
    rows = {}
    for algo, forward, backward in (("im2col", F.conv2d_forward, F.conv2d_backward),
                                    ("fft", conv_fft.conv2d_fft_forward, conv_fft.conv2d_fft_backward)):
        if algo == "fft" and stride != 1:
            continue  # the FFT pays for every output position and keeps a stride's subset

        def fwd():
            return forward(x, w, b, (stride, stride), pads)

        def both():
            out, cache = forward(x, w, b, (stride, stride), pads)
            backward(xp.ones_like(out), cache)

        seconds(both, warmup)
        f, fb = seconds(fwd, repeats), seconds(both, repeats)
        rows[algo] = {"forward_ms": 1e3 * f, "fb_ms": 1e3 * fb, "gflops_fb": 3 * flops / fb / 1e9,
                      "vs_gemm_fb": gemm_fb / fb, "vs_gemm_f": gemm_f / f}
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed repeats, batch 16")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    if backend.get_backend() != "cupy":
        raise SystemExit("gpu_bench.py measures the CuPy backend: run it with NPCNN_BACKEND=cupy")
    warmup, repeats = (1, 3) if args.quick else (3, 10)
    batch = 16 if args.quick else args.batch_size
    results = {"train": {}, "conv": {}}
    for name in NETS:
        results["train"][name] = r = training_step(name, batch, warmup, repeats)
        print(f"{name:9s} batch {batch}: {r['img_s']:9,.0f} img/s  {r['epoch_s']:7.1f} s/epoch")
    for name in CONVS if not args.quick else list(CONVS)[:1]:
        results["conv"][name] = rows = conv(name, warmup, repeats)
        for algo, r in rows.items():
            print(f"{name:28s} {algo:6s} forward {r['forward_ms']:8.2f} ms  f+b {r['fb_ms']:8.2f} ms  "
                  f"{r['gflops_fb']:8.1f} GFLOP/s  {r['vs_gemm_fb']:.2f}x GEMM (f+b)")
    return results


if __name__ == "__main__":
    main()
