"""Benchmark: general gradient-flow velocity (forward accumulation of P+, Theorem 5.1) vs jax.grad + projection.

Both jit-compiled, same inputs (the reference differentiates the cost through the orthogonal maps; the
generic input_space_cost, which inverts R by a solve, is timed as well), median wall time of `--reps` calls after one warm-up call (compilation
excluded). Writes benchmarks/results/general.json.  Usage: python benchmarks/bench_general.py [--quick]
"""
from __future__ import annotations
import argparse
import json
import os
import platform
import time

import sys
import numpy as np
import jax
sys.path.insert(0, os.path.dirname(__file__))
import jax.numpy as jnp

from _common import machine_info, write_result

from truncflow.network import random_orthogonal
from truncflow.network import input_space_cost
from truncflow.general import general_velocity, general_velocity_autodiff, projected_velocity


def autodiff_generic(Rs, betas, X, labels, Y):
    """jax.grad of truncflow.network.input_space_cost (general invertible W: inverts R by a solve) + projection."""
    gR, gb = jax.grad(input_space_cost, argnums=(0, 1))(Rs, betas, X, labels, Y)
    return projected_velocity(Rs, gR, gb)


def config(seed, L, Q, J, N, dtype):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    Rs = random_orthogonal(k[0], Q, batch=(L,)).astype(dtype)
    betas = (0.6 * jax.random.normal(k[1], (L, Q))).astype(dtype)
    X = jax.random.normal(k[2], (N, Q)).astype(dtype)
    labels = jnp.asarray(np.arange(N) % J, dtype=jnp.int32)
    Y = jax.random.normal(k[3], (J, Q)).astype(dtype)
    return Rs, betas, X, labels, Y


def timed(f, args, reps):
    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small grid")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "general.json"))
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    dtype = jnp.float64
    grid = [(2, 2, 2, 1000), (4, 4, 4, 1000)] if a.quick else \
        [(2, 2, 2, 1000), (2, 2, 2, 10000), (4, 4, 4, 1000), (4, 4, 4, 10000), (8, 8, 4, 1000), (16, 8, 4, 1000)]
    fwd, ad, ad_gen = jax.jit(general_velocity), jax.jit(general_velocity_autodiff), jax.jit(autodiff_generic)
    rows = []
    for (L, Q, J, N) in grid:
        args = config(0, L, Q, J, N, dtype)
        dR, db = fwd(*args)
        dR2, db2 = ad(*args)
        err = float(max(jnp.max(jnp.abs(dR - dR2)), jnp.max(jnp.abs(db - db2))))
        t_f, t_a, t_g = timed(fwd, args, a.reps), timed(ad, args, a.reps), timed(ad_gen, args, a.reps)
        rows.append(dict(L=L, Q=Q, J=J, N=N, forward_s=t_f, autodiff_s=t_a, ratio=t_f / t_a,
                         autodiff_generic_s=t_g, max_abs_diff=err))
        print(f"L={L:2d} Q={Q:2d} J={J} N={N:6d}: forward {1e3 * t_f:9.3f} ms  jax.grad+proj {1e3 * t_a:9.3f} ms  "
              f"ratio {t_f / t_a:6.2f}  (grad of input_space_cost {1e3 * t_g:9.3f} ms)  |diff| {err:.1e}")
    out = dict(benchmark="general_velocity (forward P+ accumulation) vs jax.grad + projection",
               dtype=str(jnp.dtype(dtype)), **machine_info(), reps=a.reps, rows=rows)
    write_result(out, a.out)


if __name__ == "__main__":
    main()
