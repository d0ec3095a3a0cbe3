#!/usr/bin/env bash
# The GPU part of the benchmark suite (issue: accelerated runs). Run on a machine with one NVIDIA GPU and JAX
# with CUDA (and PyTorch with CUDA for the eager-autograd contender); budget: under 5 minutes on an H100/H200.
#   bash benchmarks/gpu.sh             -> benchmarks/results/{separated,scaling,general}_gpu_<card>.json and
#                                         gpu_checks_<card>.json (accuracy per precision, whole sweeps per velocity),
#                                         log in gpu_<card>.log; <card> from JAX's device kind ("NVIDIA H200" -> h200)
#   bash benchmarks/gpu.sh --dry-run   -> every code path on whatever JAX has (CPU) at the smallest sizes, Pallas
#                                         kernel in interpret mode; results in $RESULTS (default: a fresh temporary
#                                         folder), card "cpu"; CARD=name overrides the card in either mode
# truncflow needs no installation: the repository root goes on PYTHONPATH (on the lent GPU machines JAX, NumPy,
# matplotlib, tqdm and PyTorch are already there, nothing can be downloaded).
# Checks that compare with autodiff or closed forms need float64 or jax.default_matmul_precision("highest")
# (TF32 is the default for float32 products on NVIDIA GPUs); the timing runs of the separated flow use the default
# precision, the fused kernel's velocity is compared with the array form at "highest" before it is timed, and the
# general flow (closed form against jax.grad at L = 16, Q = 32, N = 1e5; the ensemble M = 256, L = 4, Q = 8,
# N = 2048 against vmap(jax.grad)) runs float32 at "highest".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ "${1:-}" == "--dry-run" ]]; then
    RESULTS=${RESULTS:-$(mktemp -d)}
    SEP=(--Q 4 --N 24 --M 2 --steps 2 --reps 1 --fused on --fused-tiles 16)
    SCALE=(--tiny --reps 1 --fused on --fused-tile 8)
    GEN=(--tiny --reps 1)
    CHECKS=(--dry-run)
    LIMIT_SEP=300 LIMIT_SCALE=300 LIMIT_GEN=300 LIMIT_CHECKS=300
    CARD=${CARD:-cpu}
    # what is checked here is that every path runs, not its speed: XLA compiles without its costly optimisations
    # and with the older CPU loop emitters (compilation is most of a dry run's CPU time; this saves about half of it)
    export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true --xla_cpu_use_fusion_emitters=false"
else
    RESULTS=${RESULTS:-benchmarks/results}
    # the card's name ("NVIDIA H200" -> h200) names the result files
    CARD=${CARD:-$($PY -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', f'no GPU visible to JAX: {d}'
k = d.device_kind.lower().replace('nvidia', '').split(); print(k[0] if k else 'gpu')")}
    SEP=(--Q 16 --N 4096 --M 2048 --steps 100 --reps 5 --fused on --fused-tiles 128,256,512)
    SCALE=(--gpu-grid --reps 3 --fused on)
    GEN=(--gpu --reps 7)
    CHECKS=()
    # the limits add up to 290 s (the log gives each stage's seconds); every script writes its JSON as it
    # goes, so a run cut by its limit keeps what finished
    LIMIT_SEP=100 LIMIT_SCALE=55 LIMIT_GEN=50 LIMIT_CHECKS=85
fi
mkdir -p "$RESULTS"
{
$PY - <<'EOF' || echo "fused kernel preflight FAILED (the benchmark records the error per tile and goes on)"
import time, jax, jax.numpy as jnp, numpy, truncflow
try:
    import torch; t = f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
except ImportError:
    t = "torch: not installed (contender (c) skipped)"
print(f"jax {jax.__version__} on {jax.devices()} ({jax.devices()[0].device_kind}); numpy {numpy.__version__}; "
      f"truncflow {truncflow.__version__}; {t}")
from truncflow.fused import fused_sums, _interpret
R = jnp.asarray(numpy.linalg.qr(numpy.random.default_rng(0).standard_normal((16, 16)))[0], jnp.float32)
X = jnp.ones((300, 16), jnp.float32)
t0 = time.perf_counter()
G, p, n = jax.block_until_ready(jax.jit(fused_sums)(R, jnp.zeros(16, jnp.float32), X, jnp.zeros(16, jnp.float32)))
print(f"fused kernel preflight: compiled and ran in {time.perf_counter() - t0:.1f} s "
      f"({'interpret mode' if _interpret(None) else 'Triton'}); sum n = {float(n.sum()):g}")
EOF
T=$SECONDS; timeout $LIMIT_SEP $PY benchmarks/bench_separated.py "${SEP[@]}" --out "$RESULTS/separated_gpu_$CARD.json" \
    || echo "separated benchmark stopped (exit $?): time limit $LIMIT_SEP s or error; its JSON has what finished"
echo "gpu.sh: separated stage $((SECONDS - T)) s"
T=$SECONDS; timeout $LIMIT_SCALE $PY benchmarks/bench_scaling.py "${SCALE[@]}" --out "$RESULTS/scaling_gpu_$CARD.json" \
    || echo "scaling grid stopped (exit $?): time limit $LIMIT_SCALE s or error; its JSON has the sizes that finished"
echo "gpu.sh: scaling stage $((SECONDS - T)) s"
T=$SECONDS; timeout $LIMIT_GEN $PY benchmarks/bench_general.py "${GEN[@]}" --out "$RESULTS/general_gpu_$CARD.json" \
    || echo "general-flow benchmark stopped (exit $?): time limit $LIMIT_GEN s or error; its JSON has the cases that finished"
echo "gpu.sh: general stage $((SECONDS - T)) s"
T=$SECONDS; timeout $LIMIT_CHECKS $PY benchmarks/gpu_checks.py ${CHECKS[@]+"${CHECKS[@]}"} --out "$RESULTS/gpu_checks_$CARD.json" \
    || echo "accuracy and sweep checks stopped (exit $?): time limit $LIMIT_CHECKS s or error; its JSON has what finished"
echo "gpu.sh: checks stage $((SECONDS - T)) s; card $CARD, $SECONDS s in all"
} 2>&1 | tee "$RESULTS/gpu_$CARD.log"
echo "results in $RESULTS"
