"""Adaptive runs finish: status of the adaptive integrator (truncflow.integrate / truncflow.general) on the sweeps'
synthetic families, and its cost against fixed-step RKMK2 in the same run (ratios, not absolute times).

    .venv/bin/python benchmarks/bench_adaptive.py [--quick]   ->  benchmarks/results/adaptive.json

Cases: the separated flow at the sweep defaults' shape (Q = 2, N = 16, t_end = 20), the case of issue 11
(Q = 4, N = 64, t_end = 20: 4 of 16 stopped at max_steps before the engine rework), the general flow (J = L = 2,
Q = 2, N = 16 per cluster, t_end = 20). Members run one after another (lax.map, truncflow.solution.ENSEMBLE_NOTE).

Work-precision study (--study, or in the full run): the separated flow on the default sweep data (Q = 2, N = 16,
t_end = 20, STUDY_M members), per member the error of the collapse time s_1 and of the final cost (relative to C(0)) against a fine
reference (adaptive at rtol 1e-12, atol 1e-14), for fixed-step RKMK2 and RKMK4 at several h (each member's s_1 from
the linear interpolation of the margins in the step that crosses, as the sweeps do) and for the adaptive integrator
at rtol 1e-4 ... 1e-10 (atol = rtol / 100). Every family is timed the way the sweeps run it (fixed step: vmap;
adaptive: lax.map, and vmap for comparison), compiled function reused. For each accuracy level: the cheapest run of
each family whose largest error over the members is at most that level, and the time ratio adaptive / fixed step.
Where the adaptive time goes: per member, accepted and rejected trial steps (a rejection is an error-control
rejection or a trial of the event search), located events, sliding starts and corners crossed by time stepping
(truncflow.solution.FlowSolution; a case reports its corners where its runner returns n_corners).
The general flow is left out of the study: its adaptive runs cost several hundred times fixed-step RKMK2 (see
its case: adaptive_over_rkmk2)."""
import argparse
import json
import time

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax

jax.config.update("jax_enable_x64", True)
from truncflow.runs import run_one, run_general
from truncflow.synthetic import synthetic_member, synthetic_general_member, member_key
from truncflow.solution import STATUS_MEANING
from truncflow.integrate import integrate_core
from truncflow.separated import separated_velocity, separated_cost
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
               events_mean=float(np.mean(ad["n_events"])) if "n_events" in ad else None,
               corners=int(np.sum(ad["n_corners"])) if "n_corners" in ad else None)
    print(name, res, flush=True)
    return res


STUDY_M, STUDY_T, STUDY_H0 = 16, 20.0, 0.02
FIXED_H = {"rkmk2": [0.1, 0.05, 0.02, 0.01, 0.005, 0.0025], "rkmk4": [0.1, 0.05, 0.02, 0.01, 0.005]}
RTOLS = [1e-4, 1e-6, 1e-8, 1e-10]
LEVELS = [1e-2, 1e-3, 1e-4, 1e-6, 1e-8]


def _run_timed(g, *args, reps=3):
    """Compile g, then the median of reps runs (seconds) and the outputs as NumPy."""
    out = jax.tree.map(np.asarray, jax.block_until_ready(g(*args)))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(g(*args))
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts))


def _errors(out, ref):
    """Largest error over the members: |s1 - s1_ref| (inf where one of them never collapses and the other does)
    and |C(t_end) - C_ref(t_end)| / C_ref(0), the final cost's error relative to the member's initial cost (a
    member that collapses ends near C = 0, where an error relative to C_ref(t_end) means nothing)."""
    s, r = out["s1"], ref["s1"]
    both = np.isfinite(s) & np.isfinite(r)
    e_s1 = np.where(both, np.abs(s - r), np.where(np.isfinite(s) == np.isfinite(r), 0.0, np.inf))
    e_c = np.abs(out["cost"][:, -1] - ref["cost"][:, -1]) / np.abs(ref["cost"][:, 0])
    return dict(s1_max_error=float(e_s1.max()), s1_median_error=float(np.median(e_s1)),
                cost_max_rel_error=float(e_c.max()), cost_median_rel_error=float(np.median(e_c)))


def study(M):
    """The work-precision study of the separated flow (module docstring)."""
    member = lambda i, h: synthetic_member(member_key(0, i), Q=2, N=16, h=h, **FAM)
    idx = jnp.arange(M)
    n0 = int(round(STUDY_T / STUDY_H0))
    adaptive = lambda i, rtol: run_one(member(i, STUDY_H0), n_steps=n0, save_every=n0, method="adaptive",
                                       rtol=rtol, atol=rtol * 1e-2, max_steps=100_000)
    ad_map = jax.jit(lambda idx, r: lax.map(lambda i: adaptive(i, r), idx))
    ad_vmap = jax.jit(lambda idx, r: jax.vmap(lambda i: adaptive(i, r))(idx))
    ref, t_ref = _run_timed(ad_map, idx, 1e-12, reps=1)
    runs = []
    for method, hs in FIXED_H.items():
        for h in hs:
            n = int(round(STUDY_T / h))
            g = jax.jit(jax.vmap(lambda i: run_one(member(i, h), n_steps=n, save_every=n, method=method)))
            out, t = _run_timed(g, idx)
            runs.append(dict(family=f"{method.upper()} fixed step", h=h, seconds=t, **_errors(out, ref)))
            print(runs[-1], flush=True)
    stats = jax.jit(jax.vmap(lambda i, r: _counters(member(i, STUDY_H0), r), in_axes=(0, None)))
    for r in RTOLS:
        out, t = _run_timed(ad_map, idx, r)
        _, t_v = _run_timed(ad_vmap, idx, r, reps=1)
        c = jax.tree.map(np.asarray, stats(idx, r))
        runs.append(dict(family="adaptive", rtol=r, seconds=t, seconds_vmap=t_v, **_errors(out, ref),
                         finished=int(np.sum(out["status"] == 0)),
                         per_member={k: dict(mean=float(np.mean(v)), max=int(np.max(v))) for k, v in c.items()}))
        print(runs[-1], flush=True)
    return dict(members=M, t_end=STUDY_T, Q=2, N=16, reference="adaptive, rtol 1e-12, atol 1e-14",
                reference_seconds=t_ref, runs=runs, equal_accuracy=_equal_accuracy(runs),
                timing="fixed step: vmap over the members (as sweeps run it); adaptive: lax.map (as sweeps run "
                       "it), seconds_vmap: the same under vmap; median of 3 runs, compiled function reused")


def _counters(p, rtol):
    """Accepted and rejected trial steps, located events and sliding starts of one adaptive run (the same call as
    truncflow.runs' adaptive path, which does not return these counters)."""
    dt = p["beta0"].dtype
    sol = integrate_core(p["R0"], p["beta0"], p["X"], p["y_tilde"], jnp.zeros((), dt), jnp.asarray(STUDY_T, dt),
                         jnp.asarray([0.0, STUDY_T], dt), jnp.asarray(rtol, dt), jnp.asarray(rtol * 1e-2, dt),
                         jnp.asarray(STUDY_H0, dt), jnp.asarray(1e-12, dt), velocity=separated_velocity,
                         cost=separated_cost, max_steps=100_000, max_events=256)
    return dict(accepted_steps=sol.n_steps, rejected_steps=sol.n_rejected, events=sol.n_events,
                sliding_starts=jnp.sum((sol.event_kind == 1) & (sol.event_dir != 0)),
                corners=sol.n_corners)


def _equal_accuracy(runs):
    """Per error measure and level: the fastest run of each family that reaches it, and adaptive / best fixed."""
    res = []
    for err in ("s1_max_error", "cost_max_rel_error"):
        for lev in LEVELS:
            best = {}
            for r in runs:
                if r[err] <= lev and (r["family"] not in best or r["seconds"] < best[r["family"]]["seconds"]):
                    best[r["family"]] = r
            fixed = [b for f, b in best.items() if f != "adaptive"]
            row = dict(error=err, level=lev, fastest={f: dict(seconds=b["seconds"], setting=b.get("h", b.get("rtol")))
                                                       for f, b in best.items()})
            if fixed and "adaptive" in best:
                f = min(fixed, key=lambda b: b["seconds"])
                row.update(fixed_best=f["family"], adaptive_over_fixed=best["adaptive"]["seconds"] / f["seconds"])
            res.append(row)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer members in the cases (not in the study)")
    ap.add_argument("--study", action="store_true", help="only the work-precision study (into the existing JSON)")
    ap.add_argument("--cases", help="only the cases whose names contain one of these comma-separated words "
                                    "(into the existing JSON, no study), e.g. --cases general")
    a = ap.parse_args()
    k = 4 if a.quick else 1
    path = "benchmarks/results/adaptive.json"
    sep = lambda Q, N: (lambda i, h: synthetic_member(member_key(0, i), Q=Q, N=N, h=h, **FAM))
    gen = lambda i, h: synthetic_general_member(member_key(0, i), Q=2, N=16, J=2, L=2, h=h, **FAM)
    cases = {"separated Q=2 N=16": (128 // k, sep(2, 16), run_one),
             "separated Q=4 N=64": (16 // k, sep(4, 64), run_one),
             "general J=L=2 Q=2 N=16": (32 // k, gen, run_general)}
    if a.study or a.cases:
        with open(path) as f:
            out = json.load(f)
    else:
        out = dict(machine=machine_info(), quick=a.quick, cases={})
    if not a.study:
        words = a.cases.split(",") if a.cases else list(cases)
        for name, (M, member, run) in cases.items():
            if any(w in name for w in words):
                out["cases"][name] = case(name, M, member, run)
    if not a.cases:
        out["work_precision"] = study(STUDY_M)
    for row in out["work_precision"]["equal_accuracy"]:
        print(row, flush=True)
    write_result(out, path)


if __name__ == "__main__":
    main()
