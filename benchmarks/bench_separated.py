"""Benchmark: 100 steps of the one-cluster gradient flow for an ensemble of initial conditions.

Same inputs for every contender (Q=8, N=512 points, M=256 initial conditions, float32, CPU), same update
(an Euler step on the group with a polar retraction: R <- R + h dR, then one Newton-Schulz iteration
R <- R (3 - R^T R)/2, which restores orthogonality to O(h^4); beta <- beta + h dbeta), only the velocity differs:

  (a) the closed form, truncflow.separated.separated_velocity_ensemble (= vmap of separated_velocity, written
      as two plain products over the points for the whole ensemble), jit(fori_loop);
  (a3) "closed form, vmapped": jax.vmap(separated_velocity, in_axes=(0, 0, None, None)), what a user writes; its
      batching rule (jax.custom_batching.custom_vmap) sends it to the ensemble form. Targets: >= 2.5x faster than (b),
      <= 1.5x the floor (d);
  (a2) for comparison, the plain vmap of the single-member function without that rule (separated_velocity.__wrapped__:
      M small products per product over the points), what vmap(separated_velocity) ran before the rule;
  (b) the same loop with the velocity from jax.grad of the cost + projection (separated_velocity_autodiff);
  (c) PyTorch eager autograd with batched bmm, written as a user would (skipped if torch is absent);
  (d) the floor: a jit(fori_loop) doing only the batched product (X + beta) R^T (plus a mean, to carry a dependency).
  (e) separately, not a contender: truncflow's integrator step (RKMK4, truncflow.solvers.rkmk_step) on the same inputs;
  (f) with --fused on (default on a GPU): the closed form as one Pallas kernel (truncflow.fused.separated_velocity_fused,
      vmapped over the ensemble), for each tile size of --fused-tiles; the fastest tile is the one in the ratios.
      Off a GPU it runs in Pallas' interpret mode (a check of the code path, not a timing anyone should quote).

Median wall time of --reps runs of the whole 100-step loop after one warm-up run (compilation excluded); the JAX
contenders (a), (a2), (a3), (b), (d) in interleaved rounds (each round runs every one once, in turn).
Writes benchmarks/results/separated.json.  Usage: python benchmarks/bench_separated.py [--reps 7]
[--Q 16 --N 4096 --M 2048 --out ...] (the GPU workload of benchmarks/gpu.sh; torch then runs on CUDA when available)
[--fused auto|on|off] [--fused-tiles 128,256,512].
"""
from __future__ import annotations
import argparse
import json
import os
import platform
import functools
import sys
import time

import numpy as np
import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine_info, write_result, haar_orthogonal, interleaved_runs

from truncflow.separated import separated_velocity, separated_velocity_autodiff, separated_velocity_ensemble
from truncflow.solvers import rkmk_step, RKMK4
from truncflow.events import velocity_field


def integrator_step(R, b, X, y):
    """The integrator's RKMK4 step (truncflow.solvers) of the closed-form flow."""
    return rkmk_step(velocity_field(separated_velocity, X, y), RKMK4, R, b, H)[:2]
from truncflow.fused import separated_velocity_fused

Q, N, M, STEPS, H = 8, 512, 256, 100, 0.05


def inputs(seed=0):
    """The same inputs for every contender, drawn in NumPy (no compilation), float32."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    return (f32(haar_orthogonal(rng, Q, (M,))), f32(0.5 * rng.standard_normal((M, Q))),
            f32(rng.standard_normal((N, Q))), f32(rng.standard_normal(Q)))


def group_step(R, beta, dR, dbeta):
    """The common update: Euler step R + h dR, retracted to O(Q) by one Newton-Schulz step; beta + h dbeta."""
    R = R + H * dR
    R = 1.5 * R - 0.5 * R @ (jnp.swapaxes(R, -1, -2) @ R)
    return R, beta + H * dbeta


def make_loop(velocity, batched=False):
    vel = velocity if batched else jax.vmap(velocity, in_axes=(0, 0, None, None))

    @jax.jit
    def run(Rs, betas, X, y):
        def body(_, c):
            R, b = c
            dR, db = vel(R, b, X, y)
            return group_step(R, b, dR, db)
        return jax.lax.fori_loop(0, STEPS, body, (Rs, betas))
    return run


@jax.jit
def floor_loop(Rs, betas, X, y):
    def body(_, c):
        R, b = c
        Z = jnp.einsum("nq,mpq->mnp", X, R) + jnp.einsum("mq,mpq->mp", b, R)[:, None, :]   # (X + beta) R^T
        return R, b - H * jnp.mean(Z, axis=1)
    return jax.lax.fori_loop(0, STEPS, body, (Rs, betas))


@jax.jit
def integrator_loop(Rs, betas, X, y):
    """(e) truncflow's integrator step: one RKMK4 step (4 velocity evaluations, exponentials, dexp^-1) per member."""
    step = jax.vmap(lambda R, b: integrator_step(R, b, X, y))
    return jax.lax.fori_loop(0, STEPS, lambda _, c: step(*c), (Rs, betas))


def timed(f, reps):
    jax.block_until_ready(f())
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), [float(t) for t in ts]


def torch_contender(Rs, betas, X, y, reps, require_cuda=False):
    try:
        import torch
    except ImportError:
        print("(c) PyTorch: SKIPPED - torch is not installed (pip install torch to include it)")
        return None
    if require_cuda and not torch.cuda.is_available():   # JAX on a GPU against torch on the CPU is no comparison
        raise RuntimeError(f"JAX runs on the GPU but torch {torch.__version__} sees no CUDA device: (c) skipped")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    R0 = torch.tensor(np.asarray(Rs), device=dev); b0 = torch.tensor(np.asarray(betas), device=dev)
    Xt = torch.tensor(np.asarray(X), device=dev); yt = torch.tensor(np.asarray(y), device=dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def run():
        R, b = R0.clone(), b0.clone()
        for _ in range(STEPS):
            R.requires_grad_(True); b.requires_grad_(True)
            Z = torch.bmm(Xt.expand(M, N, Q) + b[:, None, :], R.transpose(1, 2))      # (M, N, Q)
            tau = torch.bmm(torch.relu(Z), R) - b[:, None, :]
            cost = 0.5 * ((tau - yt) ** 2).sum(-1).mean(-1).sum()                       # sum over the ensemble
            gR, gb = torch.autograd.grad(cost, (R, b))
            with torch.no_grad():
                B = gR @ R.transpose(1, 2)
                Om = -0.5 * (B - B.transpose(1, 2))
                R = R + H * (Om @ R)
                R = 1.5 * R - 0.5 * R @ (R.transpose(1, 2) @ R)
                b = b - H * gb
        sync()
        return R.detach().cpu(), b.detach().cpu()

    run()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); out = run(); ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), [float(t) for t in ts], out, torch.__version__, torch.get_num_threads()


def max_rel_diff(u, v):
    """max |u - v| / max |v| over a pair of velocity outputs."""
    u, v = [np.asarray(a, np.float64) for a in u], [np.asarray(b, np.float64) for b in v]
    return float(max(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30) for a, b in zip(u, v)))


def summarize_ratios(out, on_gpu):
    """Ratios and targets from whatever contenders finished (called after each one, so a partial file is usable)."""
    sec = {k: v["seconds"] for k, v in out["seconds"].items()}
    ratios, targets = {}, []
    torch_target = 8.0 if on_gpu else 5.0
    fused = out.get("fused", {})
    t_f = sec.get(f"f_fused_pallas_tile{fused['best_tile']}") if "best_tile" in fused else None
    for name, num, den, op, value in [("b_over_a", "b_jax_grad_projection", "a_closed_form", ">=", 2.5),
                                      ("a_over_d", "a_closed_form", "d_floor_product_only", "<=", 3.0),
                                      ("c_over_a", "c_torch_eager_autograd", "a_closed_form", ">=", torch_target),
                                      ("b_over_a3", "b_jax_grad_projection", "a3_closed_form_vmapped", ">=", 2.5),
                                      ("a3_over_d", "a3_closed_form_vmapped", "d_floor_product_only", "<=", 1.5)]:
        if num in sec and den in sec:
            ratios[name] = sec[num] / sec[den]
            targets.append(dict(ratio=name, op=op, value=value))
    if t_f is not None:
        for name, num, op, value in [("b_over_f", "b_jax_grad_projection", ">=", 2.5),
                                     ("f_over_d", None, "<=", 3.0),
                                     ("c_over_f", "c_torch_eager_autograd", ">=", torch_target)]:
            if name == "f_over_d" and "d_floor_product_only" in sec:
                ratios[name] = t_f / sec["d_floor_product_only"]
            elif num in sec:
                ratios[name] = sec[num] / t_f
            else:
                continue
            targets.append(dict(ratio=name, op=op, value=value))
        if "a_closed_form" in sec:
            ratios["a_over_f"] = sec["a_closed_form"] / t_f
    for name, num, den in [("a3_over_a", "a3_closed_form_vmapped", "a_closed_form"),     # not targets: the rule's effect
                           ("a2_over_a3", "a2_closed_form_plain_vmap", "a3_closed_form_vmapped"),
                           ("b_over_a2", "b_jax_grad_projection", "a2_closed_form_plain_vmap"),
                           ("a2_over_d", "a2_closed_form_plain_vmap", "d_floor_product_only")]:
        if num in sec and den in sec:
            ratios[name] = sec[num] / sec[den]
    for t in targets:
        r = ratios[t["ratio"]]
        t["measured"] = r
        t["met"] = bool(r >= t["value"] if t["op"] == ">=" else r <= t["value"])
    out.update(ratios=ratios, targets=targets)
    if "e_integrator_rkmk4_step" in sec and "a_closed_form" in sec:
        out["integrator_step"] = {"e_over_a": sec["e_integrator_rkmk4_step"] / sec["a_closed_form"],
                                  "note": "the integrator's full RKMK4 step, timed separately (not a target)"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "separated.json"))
    ap.add_argument("--Q", type=int, default=Q)
    ap.add_argument("--N", type=int, default=N)
    ap.add_argument("--M", type=int, default=M)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--fused", choices=["auto", "on", "off"], default="auto",
                    help="time the Pallas kernel (f); auto: only on a GPU")
    ap.add_argument("--fused-tiles", default="128,256,512", help="comma-separated tile sizes for (f)")
    ap.add_argument("--no-integrator", action="store_true", help="skip (e), the RKMK4 step")
    a = ap.parse_args()
    globals().update(Q=a.Q, N=a.N, M=a.M, STEPS=a.steps)   # the loops read these at trace time
    on_gpu = jax.default_backend() == "gpu"
    fused = a.fused == "on" or (a.fused == "auto" and on_gpu)
    tiles = [int(t) for t in a.fused_tiles.split(",")] if fused else []
    args = inputs()
    loop_a, loop_b = make_loop(separated_velocity_ensemble, batched=True), make_loop(separated_velocity_autodiff)
    loop_a_vmap = make_loop(separated_velocity)                   # (a3): with its batching rule
    loop_a_plain = make_loop(separated_velocity.__wrapped__)      # (a2): the plain single-member function

    rows = {}
    out = dict(benchmark=f"one-cluster flow, {STEPS} Euler steps on O(Q) (Newton-Schulz retraction), ensemble",
               Q=Q, N=N, M=M, steps=STEPS, h=H, dtype="float32", **machine_info(), reps=a.reps, seconds=rows,
               complete=False, errors={}, note="machine shared with other jobs; medians of repeated runs")

    def record(name, f):
        """Time one contender; record it (or its error) and rewrite the JSON, so nothing finished is ever lost."""
        try:
            t, ts = timed(f, a.reps)
        except Exception as e:                       # one failing contender must not cost the others
            out["errors"][name] = f"{type(e).__name__}: {e}"[:2000]
            print(f"{name}: FAILED {out['errors'][name][:300]}", flush=True)
            return None
        rows[name] = dict(seconds=t, runs=ts)
        summarize_ratios(out, on_gpu)
        write_result(out, a.out, quiet=True)
        print(f"{name:32s} {t:10.4f} s  {1e3 * t / STEPS:9.3f} ms/step", flush=True)
        return t

    (Ra, ba), (Rb, bb), (Ra3, ba3) = [jax.tree.map(np.asarray, f(*args)) for f in (loop_a, loop_b, loop_a_vmap)]
    out["max_abs_diff_a_vs_b"] = float(max(np.max(np.abs(Ra - Rb)), np.max(np.abs(ba - bb))))   # NumPy: no compiles
    out["orthogonality_error_a"] = float(np.max(np.abs(np.swapaxes(Ra, 1, 2) @ Ra - np.eye(Q))))
    out["max_abs_diff_a_vs_a3"] = float(max(np.max(np.abs(Ra - Ra3)), np.max(np.abs(ba - ba3))))
    jax_contenders = {"a_closed_form": loop_a, "d_floor_product_only": floor_loop,
                      "a3_closed_form_vmapped": loop_a_vmap, "b_jax_grad_projection": loop_b,
                      "a2_closed_form_plain_vmap": loop_a_plain}
    try:                                             # interleaved rounds: a change of load hits all alike
        runs = interleaved_runs({k: (lambda f=f: f(*args)) for k, f in jax_contenders.items()}, a.reps)
    except Exception as e:                           # then one at a time, so that one failure costs only itself
        print(f"interleaved timing failed ({type(e).__name__}: {str(e)[:200]}); timing one at a time", flush=True)
        for k, f in jax_contenders.items():
            record(k, lambda f=f: f(*args))
    else:
        for k, ts in runs.items():
            rows[k] = dict(seconds=float(np.median(ts)), runs=ts)
            print(f"{k:32s} {rows[k]['seconds']:10.4f} s  {1e3 * rows[k]['seconds'] / STEPS:9.3f} ms/step", flush=True)
        summarize_ratios(out, on_gpu)
        write_result(out, a.out, quiet=True)
    try:                                             # (c): PyTorch eager, the third target
        tc = torch_contender(*args, a.reps, require_cuda=on_gpu)
    except Exception as e:
        tc = None
        out["errors"]["c_torch_eager_autograd"] = f"{type(e).__name__}: {e}"[:2000]
        print("(c) PyTorch: FAILED", out["errors"]["c_torch_eager_autograd"][:300], flush=True)
    if tc is None and "c_torch_eager_autograd" not in out["errors"]:
        out["skipped"] = {"c_torch_eager_autograd": "torch is not installed"}
    if tc is not None:
        t_c, ts_c, (Rc, bc), tv, nth = tc
        rows["c_torch_eager_autograd"] = dict(seconds=t_c, runs=ts_c)
        out.update(torch=tv, torch_threads=nth,
                   max_abs_diff_a_vs_c=float(max(np.abs(np.asarray(Ra) - Rc.numpy()).max(),
                                                 np.abs(np.asarray(ba) - bc.numpy()).max())))
        summarize_ratios(out, on_gpu)
        write_result(out, a.out, quiet=True)
        print(f"{'c_torch_eager_autograd':32s} {t_c:10.4f} s", flush=True)

    fused_rows, fused_errors = {}, {}
    for tile in tiles:                          # (f): the Pallas kernel, one velocity check then the timed loop
        vel_f = functools.partial(separated_velocity_fused, tile=tile)
        try:
            with jax.default_matmul_precision("highest"):
                check = max_rel_diff(jax.jit(jax.vmap(vel_f, in_axes=(0, 0, None, None)))(*args),
                                     jax.jit(separated_velocity_ensemble)(*args))
            if not check < 2e-2:                # a wrong kernel is off by O(1); TF32 products stay far below this
                raise ValueError(f"velocity differs from the array form by {check:.2e} (relative): not timed")
            loop_f = make_loop(vel_f)
            t_f, ts_f = timed(lambda: loop_f(*args), a.reps)
        except Exception as e:                  # a kernel that does not compile (or is wrong) is recorded, not fatal
            fused_errors[tile] = f"{type(e).__name__}: {e}"[:2000]
            print(f"(f) tile {tile}: FAILED {fused_errors[tile][:300]}", flush=True)
        else:
            fused_rows[tile] = dict(seconds=t_f, runs=ts_f, max_rel_diff_velocity=check)
            rows[f"f_fused_pallas_tile{tile}"] = dict(seconds=t_f, runs=ts_f)
            print(f"(f) tile {tile}: {t_f:.4f} s, velocity vs (a) max rel diff {check:.1e}", flush=True)
        f_info = dict(interpret=not on_gpu, tiles={str(t): r for t, r in fused_rows.items()},
                      note="(f) = separated_velocity_fused (Pallas kernel, truncflow.fused), vmapped; "
                           + ("compiled for the GPU" if on_gpu else "interpret mode: NOT a meaningful timing"))
        if fused_rows:
            f_info["best_tile"] = min(fused_rows, key=lambda t: fused_rows[t]["seconds"])
        if fused_errors:
            f_info["errors"] = {str(t): e for t, e in fused_errors.items()}
        out["fused"] = f_info
        summarize_ratios(out, on_gpu)
        write_result(out, a.out, quiet=True)
    if not a.no_integrator:                     # (e): not a target, so last
        record("e_integrator_rkmk4_step", lambda: integrator_loop(*args))

    out["complete"] = True
    summarize_ratios(out, on_gpu)
    t_a = rows.get("a_closed_form", {}).get("seconds", float("nan"))
    print(f"Q={Q} N={N} M={M} steps={STEPS} float32 {jax.default_backend()} (median of {a.reps} runs of the loop)")
    print(f"{'contender':32s} {'seconds':>10s} {'ms/step':>9s} {'vs (a)':>8s}")
    for name, r in rows.items():
        print(f"{name:32s} {r['seconds']:10.4f} {1e3 * r['seconds'] / STEPS:9.3f} {r['seconds'] / t_a:8.2f}")
    for t in out["targets"]:
        print(f"{t['ratio']:10s} {t['measured']:8.2f}  target {t['op']} {t['value']:g}: {'met' if t['met'] else 'NOT met'}")
    print(f"(a) vs (b) final states max |diff| = {out['max_abs_diff_a_vs_b']:.1e};  "
          f"max |R^T R - 1| after {STEPS} steps = {out['orthogonality_error_a']:.1e};  "
          f"(a) vs (a3) max |diff| = {out['max_abs_diff_a_vs_a3']:.1e}")
    write_result(out, a.out)

if __name__ == "__main__":
    main()
