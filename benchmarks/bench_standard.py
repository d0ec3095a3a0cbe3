"""Benchmark: the closed-form velocities of the standard cost (truncflow.standard, Sections 8-9) against jax.grad of
their costs.

Contenders, jit-compiled, float64, CPU, the same inputs:
  collapsed flow (Section 8)   "closed form" collapsed_velocity(B, W, Y) = (-W^T E, -E B^T), E = W B + Y, Eqs.
                               (8.6)-(8.7), against "jax.grad": minus jax.grad of collapsed_cost (8.2) in (B, W);
  clustered flow (Section 9)   "closed form" clustered_velocity(W, X, Y) = -sum_i w_i (W x_i - y_i) x_i^T, Eq. (9.7),
                               against "jax.grad": minus jax.grad of clustered_cost (9.3) in W.
Each is timed as one velocity call and, so that dispatch does not hide the arithmetic at small sizes, as a
jit(fori_loop) of STEPS Euler steps s -> s + h v(s) (the same loop for both contenders). Median of interleaved rounds
after one warm-up call each (benchmarks/_common.py). Ratio jax.grad time / closed-form time: above 1, the closed
form is faster. No target: the issue asks to "say what you find".

Writes benchmarks/results/standard.json.  Usage: python benchmarks/bench_standard.py [--quick] [--reps 11]
"""
import argparse
import os
import sys

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_info, write_result, interleaved_medians
from truncflow.standard import collapsed_velocity, collapsed_cost, clustered_velocity, clustered_cost

STEPS, H = 50, 1e-3
COLLAPSED_Q = [2, 8, 32, 128]
CLUSTERED_QN = [(2, 1000), (8, 10000), (32, 10000), (32, 50000)]
QUICK_COLLAPSED_Q, QUICK_CLUSTERED_QN = [2, 8], [(2, 1000), (8, 1000)]


def _neg_grad(cost, argnums):
    g = jax.grad(cost, argnums=argnums)
    return lambda *a: jax.tree.map(jnp.negative, g(*a))


def collapsed_case(Q, reps, rng):
    B, W, Y = (jnp.asarray(rng.standard_normal((Q, Q)) / np.sqrt(Q)) for _ in range(3))
    vels = {"closed form": collapsed_velocity, "jax.grad": _neg_grad(collapsed_cost, (0, 1))}

    def loop(v):
        step = lambda _, s: jax.tree.map(lambda x, d: x + H * d, s, v(*s, Y))
        return jax.jit(lambda B, W: jax.lax.fori_loop(0, STEPS, step, (B, W)))

    return _measure(vels, {k: jax.jit(v) for k, v in vels.items()}, {k: loop(v) for k, v in vels.items()},
                    (B, W, Y), (B, W), reps, dict(Q=Q))


def clustered_case(Q, N, reps, rng):
    W = jnp.asarray(rng.standard_normal((Q, Q)) / np.sqrt(Q))
    X, Y = jnp.asarray(rng.standard_normal((N, Q))), jnp.asarray(rng.standard_normal((N, Q)))
    vels = {"closed form": clustered_velocity, "jax.grad": _neg_grad(clustered_cost, 0)}

    def loop(v):
        return jax.jit(lambda W: jax.lax.fori_loop(0, STEPS, lambda _, w: w + H * v(w, X, Y), W))

    return _measure(vels, {k: jax.jit(v) for k, v in vels.items()}, {k: loop(v) for k, v in vels.items()},
                    (W, X, Y), (W,), reps, dict(Q=Q, N=N))


def _measure(vels, calls, loops, args, loop_args, reps, size):
    ref = [np.asarray(a) for a in jax.tree.leaves(calls["jax.grad"](*args))]
    got = [np.asarray(a) for a in jax.tree.leaves(calls["closed form"](*args))]
    rel = max(float(np.max(np.abs(g - r)) / np.max(np.abs(r))) for g, r in zip(got, ref))
    one = interleaved_medians({k: (lambda f=f: f(*args)) for k, f in calls.items()}, reps)
    many = interleaved_medians({k: (lambda f=f: f(*loop_args)) for k, f in loops.items()}, reps)
    row = dict(size, max_rel_diff=rel, seconds_call=one, seconds_loop=many,
               ratio_call=one["jax.grad"] / one["closed form"], ratio_loop=many["jax.grad"] / many["closed form"])
    print(f"{size}: one call jax.grad/closed form {row['ratio_call']:.2f}, {STEPS}-step loop "
          f"{row['ratio_loop']:.2f} (closed form {1e6 * many['closed form'] / STEPS:.1f} us/step), "
          f"rel diff {rel:.1e}", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="two small sizes per flow (a check of the script)")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "standard.json"))
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    cq, cqn = (QUICK_COLLAPSED_Q, QUICK_CLUSTERED_QN) if a.quick else (COLLAPSED_Q, CLUSTERED_QN)
    collapsed = [collapsed_case(Q, a.reps, rng) for Q in cq]
    clustered = [clustered_case(Q, N, a.reps, rng) for Q, N in cqn]
    geo = lambda rows, k: float(np.exp(np.mean(np.log([r[k] for r in rows]))))
    summary = {f"{flow}_{k}": geo(rows, f"ratio_{k}") for flow, rows in (("collapsed", collapsed),
                                                                         ("clustered", clustered))
               for k in ("call", "loop")}
    print("geometric means of jax.grad / closed form:", {k: round(v, 2) for k, v in summary.items()})
    out = dict(benchmark="standard cost (Sections 8-9): closed-form velocities vs jax.grad of the costs",
               dtype="float64", **machine_info(), reps=a.reps, quick=a.quick, steps=STEPS,
               timing="median of interleaved rounds after one warm-up call each (compilation excluded); "
                      "'call': one velocity evaluation, 'loop': a jit(fori_loop) of Euler steps",
               contenders={"closed form": "collapsed_velocity (8.6)-(8.7) / clustered_velocity (9.7)",
                           "jax.grad": "minus jax.grad of collapsed_cost (8.2) / clustered_cost (9.3)"},
               note="machine shared with other jobs; ratios measured side by side in one run; no target",
               collapsed=collapsed, clustered=clustered, geomean=summary, complete=True)
    write_result(out, a.out)


if __name__ == "__main__":
    main()
