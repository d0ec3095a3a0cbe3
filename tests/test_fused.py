"""The fused Pallas kernel of the one-cluster velocity (truncflow.fused): equal to the closed form and to jax.grad
(float64, Pallas interpret mode), batched by vmap, lowered to one Triton call for CUDA, and benchmarks/gpu.sh's
code path run end to end on the CPU (--dry-run)."""
import json
import math
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.network import random_orthogonal
from truncflow.separated import separated_velocity, separated_velocity_autodiff, separated_velocity_ensemble
from truncflow.fused import separated_velocity_fused, fused_sums, lower_for_cuda

ROOT = Path(__file__).resolve().parents[1]
fused = jax.jit(partial(separated_velocity_fused, tile=16, interpret=True))
references = jax.jit(lambda *a: (separated_velocity(*a), separated_velocity_autodiff(*a)))


def _case(seed, Q, N, shift=0.0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    R = random_orthogonal(k[0], Q)
    beta = jax.random.normal(k[1], (Q,)) + shift * R.sum(axis=0)      # shift < 0 pushes R beta down
    return R, beta, 0.7 * jax.random.normal(k[2], (N, Q)), jax.random.normal(k[3], (Q,))


@given(seed=st.integers(0, 2**31 - 1), Q=st.sampled_from([1, 3, 16, 20]), N=st.sampled_from([1, 37]),
       shift=st.sampled_from([0.0, -5.0]))
def test_fused_equals_closed_form_and_autodiff(seed, Q, N, shift):
    """Padded Q, ragged N (tile 16), mixed and wholly truncated clusters: the same velocity to 1e-12."""
    args = _case(seed, Q, N, shift)
    got = fused(*args)
    for ref in references(*args):
        for u, v in zip(got, ref):
            np.testing.assert_allclose(u, v, atol=1e-12, rtol=0)


def test_sums_are_the_point_sums():
    """G = sum (relu(z) - H b~) z^T, p = sum relu(z), n = sum h(z), computed directly in NumPy."""
    R, beta, X, y = _case(3, 5, 50)
    G, p, n = fused_sums(R, beta, X, y, tile=16, interpret=True)
    Z = np.asarray((X + beta) @ R.T)
    b = np.asarray(R @ (beta + y))
    H = (Z > 0).astype(float)
    np.testing.assert_allclose(G, ((np.maximum(Z, 0) - H * b).T @ Z), atol=1e-12)
    np.testing.assert_allclose(p, np.maximum(Z, 0).sum(0), atol=1e-12)
    np.testing.assert_array_equal(n, H.sum(0))


def test_vmap_gives_the_ensemble_form_and_nests():
    M, Q, N = 5, 4, 30
    k = jax.random.split(jax.random.PRNGKey(7), 4)
    Rs = random_orthogonal(k[0], Q, batch=(2, M))
    betas = jax.random.normal(k[1], (2, M, Q))
    X, y = jax.random.normal(k[2], (N, Q)), jax.random.normal(k[3], (Q,))
    one = jax.vmap(partial(separated_velocity_fused, tile=16, interpret=True), in_axes=(0, 0, None, None))
    got = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))(Rs, betas, X, y)          # grid (2, M)
    for g in range(2):
        ref = separated_velocity_ensemble(Rs[g], betas[g], X, y)
        for u, v in zip((got[0][g], got[1][g]), ref):
            np.testing.assert_allclose(u, v, atol=1e-12)


def test_gpu_script_dry_run(tmp_path):
    """benchmarks/gpu.sh --dry-run: every contender of the GPU part, the fused kernel in interpret mode, both JSONs."""
    env = dict(os.environ, PYTHON=sys.executable, RESULTS=str(tmp_path), JAX_ENABLE_X64="0")
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sep = json.loads((tmp_path / "separated_gpu.json").read_text())
    assert {"a_closed_form", "b_jax_grad_projection", "d_floor_product_only", "f_fused_pallas_tile32",
            "f_fused_pallas_tile64"} <= set(sep["seconds"])
    assert sep["complete"] is True and not sep["errors"]
    assert sep["fused"]["interpret"] is True and sep["fused"]["best_tile"] in (32, 64)
    for t in sep["fused"]["tiles"].values():
        assert t["max_rel_diff_velocity"] < 1e-4          # float32 at 'highest' precision
    assert {t["ratio"] for t in sep["targets"]} >= {"b_over_a", "a_over_d", "b_over_f", "f_over_d"}
    assert all(math.isfinite(t["measured"]) and isinstance(t["met"], bool) for t in sep["targets"])
    scaling = json.loads((tmp_path / "scaling_gpu.json").read_text())
    assert scaling["complete"] is True
    assert all(set(row["us_per_member_step"]) == {"closed_form", "jax_grad", "floor", "fused"} for row in scaling["rows"])
    assert (tmp_path / "gpu.log").read_text().count("wrote") == 3
    checks = json.loads((tmp_path / "gpu_checks.json").read_text())
    assert checks["complete"] is True and not checks["errors"]
    acc = checks["accuracy"]["max_rel_error"]
    assert len(acc) == 6 and acc["fused_float64_default"] < 1e-12 and acc["fused_float32_highest"] < 1e-5
    runs = checks["sweeps"]["runs"]
    assert len(runs) == 6 and all(r["seconds"] > 0 for r in runs.values())
    assert checks["sweeps"]["agreement_float64"]["max_abs_diff"]["R_final"] < 1e-12
    assert checks["auto_velocity"] == {"Q=4": "closed_form", "Q=16": "closed_form"}     # on the CPU
