#!/usr/bin/env bash
# The GPU part of the benchmark suite (issue: accelerated runs). Run on a machine with one NVIDIA GPU and JAX
# with CUDA (and PyTorch with CUDA for the eager-autograd contender); budget: under 5 minutes on an H100/H200.
#   bash benchmarks/gpu.sh             -> benchmarks/results/separated_gpu.json, scaling_gpu.json and gpu_checks.json
#                                         (accuracy per precision, whole sweeps per velocity), log in gpu.log
#   bash benchmarks/gpu.sh --dry-run   -> the same code path on whatever JAX has (CPU), tiny sizes, Pallas kernel in
#                                         interpret mode; results in $RESULTS (default: a fresh temporary folder)
# truncflow needs no installation: the repository root goes on PYTHONPATH (on the lent GPU machines JAX, NumPy,
# matplotlib, tqdm and PyTorch are already there, nothing can be downloaded).
# Checks that compare with autodiff or closed forms need float64 or jax.default_matmul_precision("highest")
# (TF32 is the default for float32 products on NVIDIA GPUs); the timing runs use the default precision, and the
# fused kernel's velocity is compared with the array form at "highest" before it is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ "${1:-}" == "--dry-run" ]]; then
    RESULTS=${RESULTS:-$(mktemp -d)}
    SEP=(--Q 16 --N 100 --M 4 --steps 3 --reps 1 --fused on --fused-tiles 32,64)
    SCALE=(--tiny --reps 1 --fused on --fused-tile 32)
    CHECKS=(--dry-run)
    LIMIT_SEP=300 LIMIT_SCALE=300 LIMIT_CHECKS=300
else
    RESULTS=${RESULTS:-benchmarks/results}
    $PY -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', f'no GPU visible to JAX: {d}'"
    SEP=(--Q 16 --N 4096 --M 2048 --steps 100 --reps 5 --fused on --fused-tiles 128,256,512)
    SCALE=(--gpu-grid --reps 3 --fused on)
    CHECKS=()
    LIMIT_SEP=170 LIMIT_SCALE=110 LIMIT_CHECKS=150    # all three write their JSON as they go: a cut run keeps its rows
fi
mkdir -p "$RESULTS"
{
$PY - <<'EOF'
import jax, numpy, truncflow
try:
    import torch; t = f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
except ImportError:
    t = "torch: not installed (contender (c) skipped)"
print(f"jax {jax.__version__} on {jax.devices()}; numpy {numpy.__version__}; truncflow {truncflow.__version__}; {t}")
EOF
$PY - <<'EOF' || echo "fused kernel preflight FAILED (the benchmark records the error per tile and goes on)"
import time, jax, jax.numpy as jnp
from truncflow.fused import fused_sums, _interpret
from truncflow.network import random_orthogonal
R, X = random_orthogonal(jax.random.PRNGKey(0), 16).astype(jnp.float32), jnp.ones((300, 16), jnp.float32)
t0 = time.perf_counter()
G, p, n = jax.block_until_ready(jax.jit(fused_sums)(R, jnp.zeros(16, jnp.float32), X, jnp.zeros(16, jnp.float32)))
print(f"fused kernel preflight: compiled and ran in {time.perf_counter() - t0:.1f} s "
      f"({'interpret mode' if _interpret(None) else 'Triton'}); sum n = {float(n.sum()):g}")
EOF
timeout $LIMIT_SEP $PY benchmarks/bench_separated.py "${SEP[@]}" --out "$RESULTS/separated_gpu.json" \
    || echo "separated benchmark stopped (exit $?): time limit $LIMIT_SEP s or error; its JSON has what finished"
timeout $LIMIT_SCALE $PY benchmarks/bench_scaling.py "${SCALE[@]}" --out "$RESULTS/scaling_gpu.json" \
    || echo "scaling grid stopped (exit $?): time limit $LIMIT_SCALE s or error; its JSON has the sizes that finished"
timeout $LIMIT_CHECKS $PY benchmarks/gpu_checks.py ${CHECKS[@]+"${CHECKS[@]}"} --out "$RESULTS/gpu_checks.json" \
    || echo "accuracy and sweep checks stopped (exit $?): time limit $LIMIT_CHECKS s or error; its JSON has what finished"
} 2>&1 | tee "$RESULTS/gpu.log"
echo "results in $RESULTS"
