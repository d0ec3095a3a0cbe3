"""The fused Pallas kernel of the one-cluster velocity (truncflow.fused): equal to the closed form and to jax.grad
(float64, Pallas interpret mode), batched by vmap, and benchmarks/gpu.sh's code path run end to end on the CPU
(--dry-run: every stage at the smallest sizes, its card-named files).

What is checked here is values, not speed, so the functions under test compile without XLA's costly optimisations
(CHEAP; the dry run sets the same in XLA_FLAGS): compilation is most of this file's CPU time."""
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

from truncflow.separated import separated_velocity, separated_velocity_autodiff, separated_velocity_ensemble
from truncflow.fused import separated_velocity_fused, fused_sums

ROOT = Path(__file__).resolve().parents[1]
CHEAP = dict(compiler_options={"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True,
                               "xla_cpu_use_fusion_emitters": False})
fused = jax.jit(partial(separated_velocity_fused, tile=16, interpret=True), **CHEAP)
references = jax.jit(lambda *a: (separated_velocity(*a), separated_velocity_autodiff(*a)), **CHEAP)


def _orthogonal(rng, Q, batch=()):
    """Haar-random orthogonal (..., Q, Q), drawn in NumPy (eager JAX ops would compile once per shape)."""
    q, r = np.linalg.qr(rng.standard_normal(batch + (Q, Q)))
    return q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[..., None, :]


def _case(seed, Q, N, shift=0.0):
    rng = np.random.default_rng(seed)
    R = _orthogonal(rng, Q)
    beta = rng.standard_normal(Q) + shift * R.sum(axis=0)      # shift < 0 pushes R beta down
    return tuple(map(jnp.asarray, (R, beta, 0.7 * rng.standard_normal((N, Q)), rng.standard_normal(Q))))


@given(seed=st.integers(0, 2**31 - 1), shape=st.sampled_from([(1, 37), (3, 1), (16, 37), (20, 37)]),
       shift=st.sampled_from([0.0, -5.0]))
def test_fused_equals_closed_form_and_autodiff(seed, shape, shift):
    """Q = 1, Q padded (3, 20) or not (16), N ragged (37, tile 16) or below one tile (1), mixed and wholly truncated
    clusters: the same velocity to 1e-12 (four shapes: each is a compile)."""
    Q, N = shape
    args = _case(seed, Q, N, shift)
    got = fused(*args)
    for ref in references(*args):
        for u, v in zip(got, ref):
            np.testing.assert_allclose(u, v, atol=1e-12, rtol=0)


def test_sums_are_the_point_sums():
    """G = sum (relu(z) - H b~) z^T, p = sum relu(z), n = sum h(z), computed directly in NumPy."""
    R, beta, X, y = _case(3, 5, 50)
    G, p, n = jax.jit(partial(fused_sums, tile=16, interpret=True), **CHEAP)(R, beta, X, y)
    R, beta, X, y = map(np.asarray, (R, beta, X, y))
    Z, b = (X + beta) @ R.T, R @ (beta + y)
    H = (Z > 0).astype(float)
    np.testing.assert_allclose(G, ((np.maximum(Z, 0) - H * b).T @ Z), atol=1e-12)
    np.testing.assert_allclose(p, np.maximum(Z, 0).sum(0), atol=1e-12)
    np.testing.assert_array_equal(n, H.sum(0))


def test_vmap_gives_the_ensemble_form_and_nests():
    M, Q, N = 5, 4, 30
    rng = np.random.default_rng(7)
    Rs, betas = jnp.asarray(_orthogonal(rng, Q, (2, M))), jnp.asarray(rng.standard_normal((2, M, Q)))
    X, y = jnp.asarray(rng.standard_normal((N, Q))), jnp.asarray(rng.standard_normal(Q))
    one = jax.vmap(partial(separated_velocity_fused, tile=16, interpret=True), in_axes=(0, 0, None, None))
    got = jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)), **CHEAP)(Rs, betas, X, y)          # grid (2, M)
    refs = jax.jit(jax.vmap(separated_velocity_ensemble, in_axes=(0, 0, None, None)))(Rs, betas, X, y)
    for u, v in zip(got, refs):
        np.testing.assert_allclose(u, v, atol=1e-12)


def test_gpu_script_dry_run(tmp_path):
    """benchmarks/gpu.sh --dry-run: every stage (separated, scaling, general, checks) and every contender at the
    smallest sizes, the fused kernel in interpret mode, the card-named JSON files and log."""
    env = dict(os.environ, PYTHON=sys.executable, RESULTS=str(tmp_path), JAX_ENABLE_X64="0")
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert {p.name for p in tmp_path.iterdir()} == {f"{n}_cpu.json" for n in ("separated_gpu", "scaling_gpu",
                                                    "general_gpu", "gpu_checks")} | {"gpu_cpu.log"}
    log = (tmp_path / "gpu_cpu.log").read_text()
    assert log.count("wrote") == 4 and "stopped" not in log and "FAILED" not in log, log[-3000:]
    sep = json.loads((tmp_path / "separated_gpu_cpu.json").read_text())
    assert {"a_closed_form", "a2_closed_form_plain_vmap", "a3_closed_form_vmapped", "b_jax_grad_projection",
            "d_floor_product_only", "e_integrator_rkmk4_step", "f_fused_pallas_tile16"} <= set(sep["seconds"])
    assert sep["complete"] is True and not sep["errors"]
    assert sep["fused"]["interpret"] is True and sep["fused"]["best_tile"] == 16
    assert sep["fused"]["tiles"]["16"]["max_rel_diff_velocity"] < 1e-4          # float32 at 'highest' precision
    assert sep["max_abs_diff_a_vs_b"] < 1e-4 and sep["max_abs_diff_a_vs_a3"] < 1e-6
    assert {t["ratio"] for t in sep["targets"]} >= {"b_over_a", "a_over_d", "b_over_f", "f_over_d", "a3_over_d"}
    assert all(math.isfinite(t["measured"]) and isinstance(t["met"], bool) for t in sep["targets"])
    scaling = json.loads((tmp_path / "scaling_gpu_cpu.json").read_text())
    assert scaling["complete"] is True and scaling["rows"]
    assert all(set(row["us_per_member_step"]) == {"closed_form", "jax_grad", "floor", "fused"} for row in scaling["rows"])
    gen = json.loads((tmp_path / "general_gpu_cpu.json").read_text())
    assert gen["complete"] and gen["dtype"] == "float32" and gen["matmul_precision"] == "highest"
    assert len(gen["rows"]) == 1 and gen["rows"][0]["max_rel_diff"] < 1e-4              # float32 against jax.grad
    ens = gen["ensemble"]
    assert set(ens["seconds"]) == {"ensemble", "vmap(closed form)", "vmap(jax.grad)"} and ens["max_rel_diff"] < 1e-4
    assert len(gen["targets"]) == 3 and all(math.isfinite(t["measured"]) for t in gen["targets"])
    checks = json.loads((tmp_path / "gpu_checks_cpu.json").read_text())
    assert checks["complete"] is True and not checks["errors"]
    acc = checks["accuracy"]["max_rel_error"]
    assert set(acc) == {f"{v}_{p}" for v in ("closed_form", "fused") for p in ("float32_highest", "float64_default")}
    assert acc["fused_float64_default"] < 1e-12 and acc["fused_float32_highest"] < 1e-5
    runs = checks["sweeps"]["runs"]
    assert set(runs) == {"closed_form_float64", "fused_float64"} and all(r["seconds"] > 0 for r in runs.values())
    assert checks["sweeps"]["agreement_float64"]["max_abs_diff"]["R_final"] < 1e-12
    assert checks["auto_velocity"] == {"Q=4": "closed_form", "Q=16": "closed_form"}     # on the CPU
