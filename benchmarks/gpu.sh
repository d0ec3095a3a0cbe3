#!/usr/bin/env bash
# The GPU part of the benchmark suite (issue: accelerated runs). Run on a machine with one NVIDIA GPU and JAX
# with CUDA (and PyTorch with CUDA for the eager-autograd contender); budget: under 5 minutes on an H100/H200.
#   bash benchmarks/gpu.sh            -> benchmarks/results/separated_gpu.json (+ scaling_gpu.json)
# Checks that compare with autodiff or closed forms need float64 or jax.default_matmul_precision("highest")
# (TF32 is the default for float32 products on NVIDIA GPUs); this timing run uses the default precision.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', f'no GPU visible to JAX: {d}'; print('device:', d)"
timeout 240 $PY benchmarks/bench_separated.py --Q 16 --N 4096 --M 2048 --steps 100 --reps 5 \
    --out benchmarks/results/separated_gpu.json
timeout 120 $PY benchmarks/bench_scaling.py --reps 3 --out benchmarks/results/scaling_gpu.json || echo "scaling grid skipped (time)"
