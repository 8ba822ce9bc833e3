#!/bin/sh
# The speed figures of the README, in one go (about 20 minutes on 2 cores). Run on a quiet
# machine: check `uptime` (load average < 0.5) first; every suite records the load before and
# after. Results: runs/bench/{fair,load,scaling}.{json,md}, conv_bench*.txt, train_profile*.txt.
# (The README's run is in benchmarks/results/2026-12-01/.) npcnn runs with its defaults (NPCNN_NUM_THREADS unset: one BLAS
# thread, kernels on all cores; Conv2d algo "auto"); NPCNN_NUM_THREADS=keep: NumPy's own BLAS
# threads (one per core), the kernels following them.
#   DEZERO_PY, CHAINER_PY: interpreters with DeZero / Chainer 7.8.1 (see fair_bench.py's docstring).
set -e
cd "$(dirname "$0")/.."
DEZERO_PY=${DEZERO_PY:-python}
CHAINER_PY=${CHAINER_PY:-python}
mkdir -p runs/bench
quiet() { uptime; ps aux --sort=-%cpu | head -4 | cut -c1-120; }
quiet
python benchmarks/fair_bench.py --suite fair --rounds 3 --python-dezero "$DEZERO_PY" --python-chainer "$CHAINER_PY"
quiet
python benchmarks/fair_bench.py --suite load --rounds 2
quiet
python benchmarks/conv_bench.py --algos im2col winograd --repeats 5 \
    --shapes vgg3x3 resnet20_stem resnet20_s1 resnet20_s2 resnet20_s3 vgg3x3_c128 vgg3x3_c256 | tee runs/bench/conv_bench.txt
NPCNN_NUM_THREADS=keep python benchmarks/conv_bench.py --algos im2col winograd --repeats 5 \
    --shapes vgg3x3 resnet20_stem resnet20_s1 resnet20_s2 resnet20_s3 vgg3x3_c128 vgg3x3_c256 | tee runs/bench/conv_bench_keep.txt
quiet
python benchmarks/fair_bench.py --suite scaling --rounds 1
quiet
python benchmarks/train_bench.py --nets lenet5-relu resnet20 --profile | tee runs/bench/train_profile.txt
python benchmarks/train_bench.py --nets resnet20 --profile --algo winograd | tee runs/bench/train_profile_winograd.txt
quiet
