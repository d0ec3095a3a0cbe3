"""Benchmark: the general gradient-flow velocity of Theorem 5.1 (truncflow.general) against jax.grad + projection.

Contenders, all jit-compiled, float64, the same inputs:
  "closed form"  truncflow.general.general_velocity: Eqs. (5.4)-(5.7) evaluated right to left, one forward sweep
                 and one backward recursion over the layers, about 4 N L Q^2 multiply-adds, over blocks of points;
  "jax.grad"     truncflow.general.general_velocity_autodiff: jax.grad of the cost (2.26) through the orthogonal
                 maps (6.2), projected onto the tangent space of O(Q)^L.
Grid (L, Q, J, N) = (2,2,2,1e4), (4,4,4,1e4), (8,8,4,1e3), (16,8,4,1e3), (16,8,4,1e4), (16,32,4,1e4); and the
ensemble case M = 256, L = 4, Q = 8, J = 4, N = 2048: general_velocity_ensemble against jax.vmap of the jax.grad
reference (jax.vmap of general_velocity is timed as well, for information).

Timing: one warm-up call each (compilation excluded), then --reps rounds in which every contender is called once,
in turn (interleaved, so that a change of load on a shared machine hits all of them alike); median per contender.
Recorded per row: seconds, the ratio jax.grad time / closed-form time (above 1: the closed form is faster), and the
largest relative difference of the velocities; overall: the geometric mean of the ratios and the targets
(never slower: every ratio >= 1; geometric mean >= 2; ensemble >= 3), each met or not met.
Rows also carry forward_s (= seconds["closed form"]), autodiff_s (= seconds["jax.grad"]) and max_abs_diff, the key
names of the previous format of this file, which the Benchmarks chapter reads.

Writes benchmarks/results/general.json.  Usage: python benchmarks/bench_general.py [--quick] [--reps 11]
"""
from __future__ import annotations
import argparse
import os
import sys
import time

import numpy as np
import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_info, write_result

from truncflow.network import random_orthogonal
from truncflow.general import general_velocity, general_velocity_autodiff, general_velocity_ensemble

GRID = [(2, 2, 2, 10000), (4, 4, 4, 10000), (8, 8, 4, 1000), (16, 8, 4, 1000), (16, 8, 4, 10000), (16, 32, 4, 10000)]
ENSEMBLE = dict(M=256, L=4, Q=8, J=4, N=2048)
QUICK_GRID = [(2, 2, 2, 1000), (4, 4, 4, 1000)]
QUICK_ENSEMBLE = dict(M=16, L=2, Q=4, J=2, N=256)
TARGET_GEOMEAN, TARGET_MIN, TARGET_ENSEMBLE = 2.0, 1.0, 3.0


def config(seed, L, Q, J, N, M=None, dtype=jnp.float64):
    """Random rotations (M members if M), biases 0.6 N(0, 1) (truncations active), Gaussian data, J clusters."""
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    batch = (L,) if M is None else (M, L)
    Rs = random_orthogonal(k[0], Q, batch=batch).astype(dtype)
    betas = (0.6 * jax.random.normal(k[1], batch + (Q,))).astype(dtype)
    X = jax.random.normal(k[2], (N, Q)).astype(dtype)
    labels = jnp.asarray(np.arange(N) % J, dtype=jnp.int32)
    Y = jax.random.normal(k[3], (J, Q)).astype(dtype)
    return Rs, betas, X, labels, Y


def timed(fs: dict, args, reps: int) -> dict:
    """Median seconds per contender: warm-up, then reps interleaved rounds."""
    for f in fs.values():
        jax.block_until_ready(f(*args))
    runs = {k: [] for k in fs}
    for _ in range(reps):
        for k, f in fs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(*args))
            runs[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in runs.items()}


def differences(out, ref):
    """(largest relative difference over dR, dbeta (relative to each one's largest entry), largest absolute one)."""
    rel = max(float(jnp.max(jnp.abs(a - r)) / jnp.max(jnp.abs(r))) for a, r in zip(out, ref))
    return rel, max(float(jnp.max(jnp.abs(a - r))) for a, r in zip(out, ref))


def target(name, op, value, measured):
    return dict(ratio=name, op=op, value=value, measured=measured, met=bool(measured >= value))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small grid and ensemble (a check of the script)")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "general.json"))
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    grid, ens = (QUICK_GRID, QUICK_ENSEMBLE) if a.quick else (GRID, ENSEMBLE)
    fs = {"closed form": general_velocity, "jax.grad": general_velocity_autodiff}
    rows = []
    for (L, Q, J, N) in grid:
        args = config(0, L, Q, J, N)
        rel, err = differences(general_velocity(*args), general_velocity_autodiff(*args))
        s = timed(fs, args, a.reps)
        ratio = s["jax.grad"] / s["closed form"]
        rows.append(dict(L=L, Q=Q, J=J, N=N, seconds=s, ratio_grad_over_closed_form=ratio, max_rel_diff=rel,
                         forward_s=s["closed form"], autodiff_s=s["jax.grad"], max_abs_diff=err))
        print(f"L={L:2d} Q={Q:2d} J={J} N={N:6d}: closed form {1e3 * s['closed form']:9.3f} ms  "
              f"jax.grad {1e3 * s['jax.grad']:9.3f} ms  jax.grad/closed form {ratio:6.2f}  rel diff {rel:.1e}", flush=True)
    geomean = float(np.exp(np.mean(np.log([r["ratio_grad_over_closed_form"] for r in rows]))))
    print(f"geometric mean of jax.grad/closed form: {geomean:.2f}", flush=True)

    args = config(0, ens["L"], ens["Q"], ens["J"], ens["N"], M=ens["M"])
    vmapped = lambda f: jax.jit(jax.vmap(f, in_axes=(0, 0, None, None, None)))
    efs = {"closed form": general_velocity_ensemble, "jax.grad": vmapped(general_velocity_autodiff),
           "closed form, vmap": vmapped(general_velocity)}
    rel, _ = differences(efs["closed form"](*args), efs["jax.grad"](*args))
    s = timed(efs, args, a.reps)
    e_ratio = s["jax.grad"] / s["closed form"]
    ensemble = dict(ens, seconds=s, ratio_grad_over_closed_form=e_ratio,
                    ratio_vmap_closed_form_over_closed_form=s["closed form, vmap"] / s["closed form"],
                    max_rel_diff=rel,
                    contenders=dict(closed_form="general_velocity_ensemble",
                                    jax_grad="jax.vmap(general_velocity_autodiff)",
                                    closed_form_vmap="jax.vmap(general_velocity), for information"))
    print(f"ensemble M={ens['M']} L={ens['L']} Q={ens['Q']} N={ens['N']}: closed form {1e3 * s['closed form']:.1f} ms  "
          f"vmap(jax.grad) {1e3 * s['jax.grad']:.1f} ms  vmap(closed form) {1e3 * s['closed form, vmap']:.1f} ms  "
          f"ratio {e_ratio:.2f}  rel diff {rel:.1e}", flush=True)

    targets = [target("min over the grid of jax.grad / closed form (never slower)", ">=", TARGET_MIN,
                      min(r["ratio_grad_over_closed_form"] for r in rows)),
               target("geometric mean over the grid of jax.grad / closed form", ">=", TARGET_GEOMEAN, geomean),
               target("ensemble: vmap(jax.grad) / general_velocity_ensemble", ">=", TARGET_ENSEMBLE, e_ratio)]
    for t in targets:
        print(f"target {t['ratio']} {t['op']} {t['value']:g}: {t['measured']:.2f} {'met' if t['met'] else 'NOT met'}")
    out = dict(benchmark="general_velocity (Theorem 5.1, one forward sweep and one backward recursion) "
                         "vs jax.grad + projection",
               dtype="float64", **machine_info(), reps=a.reps, quick=a.quick,
               timing="median of interleaved rounds after one warm-up call each (compilation excluded)",
               note="machine shared with other jobs; ratios measured side by side in one run",
               rows=rows, geomean_ratio=geomean, ensemble=ensemble, targets=targets)
    write_result(out, a.out)


if __name__ == "__main__":
    main()
