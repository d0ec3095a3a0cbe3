"""Benchmark: the general gradient-flow velocity of Theorem 5.1 (truncflow.general) against jax.grad + projection.

Contenders, all jit-compiled, float64, the same inputs:
  "closed form"  truncflow.general.general_velocity: Eqs. (5.4)-(5.7) evaluated right to left, one forward sweep
                 and one backward recursion over the layers, about 4 N L Q^2 multiply-adds, over blocks of points;
  "jax.grad"     truncflow.general.general_velocity_autodiff: jax.grad of the cost (2.26) through the orthogonal
                 maps (6.2), projected onto the tangent space of O(Q)^L.
Grid (L, Q, J, N) = (2,2,2,1e4), (4,4,4,1e4), (8,8,4,1e3), (16,8,4,1e3), (16,8,4,1e4), (16,32,4,1e4); and the
ensemble case M = 256, L = 4, Q = 8, J = 4, N = 2048, three contenders on the same M members:
  "ensemble"           truncflow.general.general_velocity_ensemble (the products over the points shared);
  "vmap(closed form)"  jax.vmap(general_velocity, in_axes=(0, 0, None, None, None)), the path users write;
  "vmap(jax.grad)"     jax.vmap of the jax.grad reference.
--gpu (benchmarks/gpu.sh): the single case L = 16, Q = 32, J = 4, N = 1e5 and the same ensemble, float32 at matmul
precision "highest" (the agreement with autodiff needs it: TF32 products are the GPU default); --tiny: the same code
path at the smallest sizes (gpu.sh --dry-run). --dtype / --precision override either.

Timing: one warm-up call each (compilation excluded), then --reps rounds in which every contender is called once,
in turn (interleaved, so that a change of load on a shared machine hits all of them alike); median per contender.
Recorded per row: seconds, the ratio jax.grad time / closed-form time (above 1: the closed form is faster), and the
largest relative difference of the velocities; overall: the geometric mean of the ratios and the targets
(never slower: every ratio >= 1; geometric mean >= 2; ensemble >= 3, and the vmap path >= 3 too, as it should
take the ensemble's path), each met or not met; with --gpu one row: jax.grad / closed form >= 2.

Writes benchmarks/results/general.json.  Usage: python benchmarks/bench_general.py [--quick | --gpu | --tiny]
[--reps 11] [--dtype float32|float64] [--precision default|highest] [--out FILE]
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
from _common import machine_info, write_result, haar_orthogonal, interleaved_medians

from truncflow.general import general_velocity, general_velocity_autodiff, general_velocity_ensemble

GRID = [(2, 2, 2, 10000), (4, 4, 4, 10000), (8, 8, 4, 1000), (16, 8, 4, 1000), (16, 8, 4, 10000), (16, 32, 4, 10000)]
ENSEMBLE = dict(M=256, L=4, Q=8, J=4, N=2048)
QUICK_GRID = [(2, 2, 2, 1000), (4, 4, 4, 1000)]
QUICK_ENSEMBLE = dict(M=16, L=2, Q=4, J=2, N=256)
GPU_GRID, GPU_ENSEMBLE = [(16, 32, 4, 100000)], ENSEMBLE
TINY_GRID, TINY_ENSEMBLE = [(2, 4, 2, 64)], dict(M=4, L=2, Q=4, J=2, N=64)
TARGET_GEOMEAN, TARGET_MIN, TARGET_ENSEMBLE = 2.0, 1.0, 3.0


def config(seed, L, Q, J, N, M=None, dtype=jnp.float64):
    """Random rotations (M members if M), biases 0.6 N(0, 1) (truncations active), Gaussian data, J clusters;
    drawn in NumPy (no compilation)."""
    rng = np.random.default_rng(seed)
    batch = (L,) if M is None else (M, L)
    cast = lambda a: jnp.asarray(a, dtype)
    return (cast(haar_orthogonal(rng, Q, batch)), cast(0.6 * rng.standard_normal(batch + (Q,))),
            cast(rng.standard_normal((N, Q))), jnp.asarray(np.arange(N) % J, jnp.int32),
            cast(rng.standard_normal((J, Q))))


def timed(fs: dict, args, reps: int) -> dict:
    """Median seconds per contender: warm-up, then reps interleaved rounds (benchmarks/_common.py)."""
    return interleaved_medians({k: (lambda f=f: f(*args)) for k, f in fs.items()}, reps)


def differences(out, ref):
    """(largest relative difference over dR, dbeta (relative to each one's largest entry), largest absolute one)."""
    out, ref = [np.asarray(a, np.float64) for a in out], [np.asarray(r, np.float64) for r in ref]   # NumPy: no compiles
    rel = max(float(np.max(np.abs(a - r)) / np.max(np.abs(r))) for a, r in zip(out, ref))
    return rel, max(float(np.max(np.abs(a - r))) for a, r in zip(out, ref))


def target(name, op, value, measured):
    return dict(ratio=name, op=op, value=value, measured=measured, met=bool(measured >= value))


def ensemble_case(ens, dtype, reps):
    """The ensemble: general_velocity_ensemble, vmap of general_velocity (the path users write), vmap of jax.grad."""
    args = config(0, ens["L"], ens["Q"], ens["J"], ens["N"], M=ens["M"], dtype=dtype)
    vmapped = lambda f: jax.jit(jax.vmap(f, in_axes=(0, 0, None, None, None)))
    efs = {"ensemble": jax.jit(general_velocity_ensemble), "vmap(closed form)": vmapped(general_velocity),
           "vmap(jax.grad)": vmapped(general_velocity_autodiff)}
    ref = efs["vmap(jax.grad)"](*args)
    rel = {k: differences(efs[k](*args), ref)[0] for k in ("ensemble", "vmap(closed form)")}
    s = timed(efs, args, reps)
    e_ratio, v_ratio = s["vmap(jax.grad)"] / s["ensemble"], s["vmap(jax.grad)"] / s["vmap(closed form)"]
    print(f"ensemble M={ens['M']} L={ens['L']} Q={ens['Q']} N={ens['N']}: "
          + "  ".join(f"{k} {1e3 * v:.2f} ms" for k, v in s.items())
          + f"  vmap(jax.grad)/ensemble {e_ratio:.2f}  vmap(jax.grad)/vmap(closed form) {v_ratio:.2f}  "
          f"rel diff {max(rel.values()):.1e}", flush=True)
    return dict(ens, seconds=s, ratio_grad_over_ensemble=e_ratio, ratio_grad_over_vmap_closed_form=v_ratio,
                ratio_vmap_closed_form_over_ensemble=s["vmap(closed form)"] / s["ensemble"],
                max_rel_diff=max(rel.values()), max_rel_diff_each=rel,
                contenders={"ensemble": "general_velocity_ensemble",
                            "vmap(closed form)": "jax.vmap(general_velocity, in_axes=(0, 0, None, None, None))",
                            "vmap(jax.grad)": "jax.vmap(general_velocity_autodiff, in_axes=(0, 0, None, None, None))"})


def main():
    ap = argparse.ArgumentParser()
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small grid and ensemble (a check of the script)")
    mode.add_argument("--gpu", action="store_true", help="L=16 Q=32 N=1e5 and the ensemble, float32 'highest'")
    mode.add_argument("--tiny", action="store_true", help="smallest sizes (benchmarks/gpu.sh --dry-run)")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--dtype", choices=["float32", "float64"], default=None)
    ap.add_argument("--precision", choices=["default", "highest"], default=None, help="jax matmul precision")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "general.json"))
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    grid, ens = ((QUICK_GRID, QUICK_ENSEMBLE) if a.quick else (GPU_GRID, GPU_ENSEMBLE) if a.gpu
                 else (TINY_GRID, TINY_ENSEMBLE) if a.tiny else (GRID, ENSEMBLE))
    dtype = a.dtype or ("float32" if a.gpu or a.tiny else "float64")
    precision = a.precision or ("highest" if dtype == "float32" else "default")
    out = dict(benchmark="general_velocity (Theorem 5.1, one forward sweep and one backward recursion) "
                         "vs jax.grad + projection",
               dtype=dtype, matmul_precision=precision, **machine_info(), reps=a.reps, quick=a.quick,
               mode="gpu" if a.gpu else "tiny" if a.tiny else "quick" if a.quick else "full",
               timing="median of interleaved rounds after one warm-up call each (compilation excluded)",
               note="machine shared with other jobs; ratios measured side by side in one run",
               rows=[], complete=False)
    with jax.default_matmul_precision(None if precision == "default" else precision):
        for (L, Q, J, N) in grid:
            out["rows"].append(grid_row(L, Q, J, N, jnp.dtype(dtype), a.reps))
            write_result(out, a.out, quiet=True)        # after every case: a run cut by a time limit keeps it
        rows = out["rows"]
        geomean = float(np.exp(np.mean(np.log([r["ratio_grad_over_closed_form"] for r in rows]))))
        print(f"geometric mean of jax.grad/closed form: {geomean:.2f}", flush=True)
        out["geomean_ratio"] = geomean
        ensemble = out["ensemble"] = ensemble_case(ens, jnp.dtype(dtype), a.reps)
    if len(rows) > 1:
        targets = [target("min over the grid of jax.grad / closed form (never slower)", ">=", TARGET_MIN,
                          min(r["ratio_grad_over_closed_form"] for r in rows)),
                   target("geometric mean over the grid of jax.grad / closed form", ">=", TARGET_GEOMEAN, geomean)]
    else:
        L, Q, J, N = grid[0]
        targets = [target(f"jax.grad / closed form at L={L} Q={Q} J={J} N={N}", ">=", TARGET_GEOMEAN, geomean)]
    targets += [target("ensemble: vmap(jax.grad) / ensemble", ">=", TARGET_ENSEMBLE,
                       ensemble["ratio_grad_over_ensemble"]),
                target("the vmap path: vmap(jax.grad) / vmap(closed form)", ">=", TARGET_ENSEMBLE,
                       ensemble["ratio_grad_over_vmap_closed_form"])]
    for t in targets:
        print(f"target {t['ratio']} {t['op']} {t['value']:g}: {t['measured']:.2f} {'met' if t['met'] else 'NOT met'}")
    out.update(targets=targets, complete=True)
    write_result(out, a.out)


def grid_row(L, Q, J, N, dtype, reps):
    """One case of the grid: closed form against jax.grad, agreement and medians."""
    fs = {"closed form": jax.jit(general_velocity), "jax.grad": jax.jit(general_velocity_autodiff)}
    args = config(0, L, Q, J, N, dtype=dtype)
    rel, err = differences(fs["closed form"](*args), fs["jax.grad"](*args))
    s = timed(fs, args, reps)
    ratio = s["jax.grad"] / s["closed form"]
    print(f"L={L:2d} Q={Q:2d} J={J} N={N:6d}: closed form {1e3 * s['closed form']:9.3f} ms  "
          f"jax.grad {1e3 * s['jax.grad']:9.3f} ms  jax.grad/closed form {ratio:6.2f}  rel diff {rel:.1e}", flush=True)
    return dict(L=L, Q=Q, J=J, N=N, seconds=s, ratio_grad_over_closed_form=ratio, max_rel_diff=rel,
                max_abs_diff=err)


if __name__ == "__main__":
    main()
