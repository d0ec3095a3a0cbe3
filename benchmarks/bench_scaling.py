"""Benchmark: how the time of one flow step scales with N (points), M (ensemble size) and Q (dimension).

For each size, in one run on the same inputs: the closed-form loop (separated_velocity_ensemble), the
jax.grad loop and the floor (the batched product (X + beta) R^T alone), as in bench_separated.py, each a
jit(fori_loop) of STEPS steps, and with --fused on (default on a GPU) the Pallas kernel of truncflow.fused.
Reports microseconds per member-step. Writes benchmarks/results/scaling.json.
Usage: python benchmarks/bench_scaling.py [--quick] [--reps 3] [--gpu-grid | --tiny] [--fused auto|on|off] [--out F]
(--gpu-grid: sizes around Q = 16, N = 4096, M = 512, for benchmarks/gpu.sh)
"""
from __future__ import annotations
import argparse
import json
import os
import platform
import sys
import time

import functools

import numpy as np
import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_info, write_result, haar_orthogonal

from truncflow.separated import separated_velocity_autodiff, separated_velocity_ensemble
from truncflow.fused import separated_velocity_fused

STEPS, H = 20, 0.05


def make_loops(M, fused_tile=None):
    def step(R, b, dR, db):
        R = R + H * dR
        return 1.5 * R - 0.5 * R @ (jnp.swapaxes(R, -1, -2) @ R), b + H * db

    vel_b = jax.vmap(separated_velocity_autodiff, in_axes=(0, 0, None, None))

    @jax.jit
    def closed(Rs, bs, X, y):
        return jax.lax.fori_loop(0, STEPS, lambda _, c: step(*c, *separated_velocity_ensemble(*c, X, y)), (Rs, bs))

    @jax.jit
    def autodiff(Rs, bs, X, y):
        return jax.lax.fori_loop(0, STEPS, lambda _, c: step(*c, *vel_b(*c, X, y)), (Rs, bs))

    @jax.jit
    def floor(Rs, bs, X, y):
        def body(_, c):
            R, b = c
            Z = jnp.einsum("nq,mpq->mnp", X, R) + jnp.einsum("mq,mpq->mp", b, R)[:, None, :]
            return R, b - H * jnp.mean(Z, axis=1)
        return jax.lax.fori_loop(0, STEPS, body, (Rs, bs))
    loops = dict(closed_form=closed, jax_grad=autodiff, floor=floor)
    if fused_tile:
        vel_f = jax.vmap(functools.partial(separated_velocity_fused, tile=fused_tile), in_axes=(0, 0, None, None))

        @jax.jit
        def fused(Rs, bs, X, y):
            return jax.lax.fori_loop(0, STEPS, lambda _, c: step(*c, *vel_f(*c, X, y)), (Rs, bs))
        loops["fused"] = fused
    return loops


def inputs(Q, N, M, seed=0):
    """Drawn in NumPy (no compilation), float32."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return (f32(haar_orthogonal(rng, Q, (M,))), f32(0.5 * rng.standard_normal((M, Q))),
            f32(rng.standard_normal((N, Q))), f32(rng.standard_normal(Q)))


def measure(Q, N, M, reps, fused_tile=None):
    args = inputs(Q, N, M)
    out = {}
    for name, f in make_loops(M, fused_tile).items():
        try:
            jax.block_until_ready(f(*args))
        except Exception as e:                   # the fused kernel failing to compile must not stop the grid
            print(f"{name} at Q={Q} N={N} M={M}: FAILED {type(e).__name__}: {str(e)[:300]}", flush=True)
            out[name] = float("nan")
            continue
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter(); jax.block_until_ready(f(*args)); ts.append(time.perf_counter() - t0)
        out[name] = float(np.median(ts)) / STEPS / M * 1e6       # microseconds per member-step
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "scaling.json"))
    ap.add_argument("--gpu-grid", action="store_true", help="sizes around Q = 16, N = 4096, M = 512")
    ap.add_argument("--tiny", action="store_true", help="one small size, for a dry run of the script")
    ap.add_argument("--fused", choices=["auto", "on", "off"], default="auto", help="include the Pallas kernel")
    ap.add_argument("--fused-tile", type=int, default=256)
    a = ap.parse_args()
    fused = a.fused == "on" or (a.fused == "auto" and jax.default_backend() == "gpu")
    if a.tiny:
        base = dict(Q=4, N=32, M=2)
        grids = {"N": [32]}
    elif a.gpu_grid:
        base = dict(Q=16, N=4096, M=512)
        grids = {"Q": [4, 8, 16, 32], "N": [1024, 16384], "M": [128, 2048]}   # the base size once (in Q)
    else:
        base = dict(Q=8, N=512, M=64)
        grids = {"N": [128, 512, 2048] if a.quick else [128, 512, 2048, 8192],
                 "M": [16, 64, 256] if a.quick else [16, 64, 256, 1024],
                 "Q": [2, 8, 16] if a.quick else [2, 4, 8, 16, 32]}
    rows = []
    out = dict(benchmark="scaling of one flow step with N, M and Q (float32, microseconds per member-step)",
               steps=STEPS, dtype="float32", **machine_info(), reps=a.reps, base=base, rows=rows, complete=False,
               note="machine shared with other jobs; medians of repeated runs")
    for axis, values in grids.items():
        for v in values:
            size = dict(base, **{axis: v})
            r = measure(size["Q"], size["N"], size["M"], a.reps, a.fused_tile if fused else None)
            rows.append(dict(axis=axis, **size, us_per_member_step=r))
            print(f"{axis}={v:5d}  " + "  ".join(f"{k} {x:8.3f} us" for k, x in r.items()), flush=True)
            write_result(out, a.out, quiet=True)     # after every size: a run stopped by a time limit keeps its rows
    out["complete"] = True
    write_result(out, a.out)

if __name__ == "__main__":
    main()
