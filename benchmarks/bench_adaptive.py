"""Adaptive runs finish: status of the adaptive integrator (truncflow.integrate / truncflow.general) on the sweeps'
synthetic families, and its cost against fixed-step RKMK2 in the same run (ratios, not absolute times).

    .venv/bin/python benchmarks/bench_adaptive.py [--quick]   ->  benchmarks/results/adaptive.json

Cases: the separated flow at the sweep defaults' shape (Q = 2, N = 16, t_end = 20), the case of issue 11
(Q = 4, N = 64, t_end = 20: 4 of 16 stopped at max_steps before the engine rework), the general flow (J = L = 2,
Q = 2, N = 16 per cluster, t_end = 20). Members run one after another (lax.map, truncflow.integrate.ENSEMBLE_NOTE)."""
import argparse
import time

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax

jax.config.update("jax_enable_x64", True)
from truncflow.runs import synthetic_member, synthetic_general_member, member_key, run_one, run_general
from truncflow.integrate import STATUS_MEANING
from _common import machine_info, write_result

FAM = dict(radius=0.5, centre_distance=2.0, target_distance=1.5, beta_scale=0.3)


def timed(f, M):
    g = jax.jit(lambda idx: lax.map(f, idx))
    t0 = time.perf_counter()
    c = g.lower(jnp.arange(M)).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.tree.map(np.asarray, jax.block_until_ready(c(jnp.arange(M))))
    return out, t_compile, time.perf_counter() - t0


def case(name, M, member, run, t_end=20.0, h=0.02, every=10):
    n = int(round(t_end / h))
    ad, tc, tr = timed(lambda i: run(member(i, h), n_steps=n, save_every=every, method="adaptive"), M)
    fx, tcf, trf = timed(lambda i: run(member(i, h), n_steps=n, save_every=every, method="rkmk2"), M)
    counts = np.bincount(ad["status"], minlength=len(STATUS_MEANING))
    res = dict(members=M, t_end=t_end, finished=int(counts[0]), finished_fraction=float(counts[0] / M),
               status_counts={STATUS_MEANING[s]: int(c) for s, c in enumerate(counts)},
               adaptive_run_s=tr, adaptive_compile_s=tc, rkmk2_run_s=trf, adaptive_over_rkmk2=tr / trf,
               events_mean=float(np.mean(ad["n_events"])) if "n_events" in ad else None)
    print(name, res, flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer members")
    a = ap.parse_args()
    k = 4 if a.quick else 1
    sep = lambda Q, N: (lambda i, h: synthetic_member(member_key(0, i), Q=Q, N=N, h=h, **FAM))
    gen = lambda i, h: synthetic_general_member(member_key(0, i), Q=2, N=16, J=2, L=2, h=h, **FAM)
    out = dict(machine=machine_info(), cases={
        "separated Q=2 N=16": case("separated Q=2 N=16", 128 // k, sep(2, 16), run_one),
        "separated Q=4 N=64": case("separated Q=4 N=64", 16 // k, sep(4, 64), run_one),
        "general J=L=2 Q=2 N=16": case("general J=L=2 Q=2 N=16", 32 // k, gen, run_general)})
    write_result(out, "benchmarks/results/adaptive.json")


if __name__ == "__main__":
    main()
