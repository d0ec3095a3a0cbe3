"""Tests of the ensemble machinery (runs, sharding, config, sweep, stats): steppers, vmapped ensembles, chunking, sweeps on disk (resume after SIGKILL)."""
import functools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.runs import separated_stepper, run_one
from truncflow.synthetic import synthetic_member, member_key
from truncflow.sharding import bytes_per_member, choose_chunk_size, chunk_bounds, run_ensemble
from truncflow.config import ConfigError, validate_config, resolve_velocity
from truncflow.sweep import load_sweep, run_sweep
from truncflow.store import atomic_write, read_manifest
from truncflow.plan import sweep_member_fn
from truncflow.stats import fit_decay_rates, staircase_rates, summarize
from truncflow.separated import separated_velocity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the tiny sweep shared by the subprocess tests here and in test_cli.py (same config = same compiled code,
# reused through the persistent compilation cache)
TINY = {"data": {"Q": 2, "N": 6, "radius": 0.5, "centre_distance": 2.0, "target_distance": 2.0,
                 "beta_scale": 0.2},
        "integrator": {"method": "rkmk2", "step": 0.05, "save_every": 5},
        "time": {"t_end": 3.0}, "ensemble": {"size": 40, "seed": 3, "chunk_size": 4}}


# in-process sweeps (here and in test_cli.py): one config, so one compile of its chunk function in this process
# (truncflow.plan caches it per config), and the same compiled chunk of 4 as TINY's (persistent cache)
SMALL = dict(TINY, ensemble={"size": 12, "seed": 3, "chunk_size": 4})


@pytest.fixture(scope="session")
def jax_cache():
    """The persistent compilation cache of this process (tests/conftest.py), shared with the subprocesses."""
    return jax.config.jax_compilation_cache_dir


# XLA without its costly optimisation passes, as in make test (values equal to rounding): compiling is most of a
# subprocess's CPU time. Set, not inherited, so that every subprocess compiles the same programs the same way.
CHEAP_XLA_FLAGS = ("--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
                   " --xla_cpu_use_fusion_emitters=false")


def subprocess_env(cache):
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["XLA_FLAGS"] = CHEAP_XLA_FLAGS
    return env


# argv: OUT PAUSE CONFIG [MORE_OUT ...]: the sweep into OUT (PAUSE s after each chunk), then the same sweep into
# each MORE_OUT without pauses (a reference from the same process: no second JAX start-up)
SWEEP_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import jax
    jax.config.update("jax_enable_x64", True)
    from truncflow.sweep import run_sweep
    out, pause, config = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
    run_sweep(config, out, progress=False, on_chunk=lambda k, a: time.sleep(pause))
    for more in sys.argv[4:]:
        run_sweep(config, more, progress=False)
""")


def test_sweep_killed_with_sigkill_resumes_bitwise(tmp_path, jax_cache):
    env = subprocess_env(jax_cache)
    cfg = json.dumps(TINY)
    ref, killed = str(tmp_path / "ref"), str(tmp_path / "killed")
    run = lambda out, pause, *more: [sys.executable, "-c", SWEEP_SCRIPT, out, str(pause), cfg, *more]
    proc = subprocess.Popen(run(killed, 0.4), env=env)
    deadline = time.time() + 240
    while time.time() < deadline:                    # kill it once a few chunks are on disk
        man = read_manifest(killed) if os.path.exists(os.path.join(killed, "manifest.json")) else None
        if man and len(man["chunks"]) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    man = read_manifest(killed)
    n_done = len(man["chunks"])
    assert 2 <= n_done < man["n_chunks"] and not man["complete"]
    with pytest.raises(ValueError, match="chunks are missing"):
        load_sweep(killed)
    # the same command again, then (same process) an uninterrupted sweep as the reference
    subprocess.run(run(killed, 0, ref), env=env, check=True, timeout=300)
    a, man_a = load_sweep(ref)
    b, man_b = load_sweep(killed)
    assert man_b["complete"] and man_b["n_chunks"] == man_a["n_chunks"] == 10
    assert set(a) == set(b) and a["s1"].shape == (40,)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=True), k
    assert not [f for f in os.listdir(killed) if f.endswith(".tmp")]


@functools.lru_cache(maxsize=None)
def _final(method, Q=2):
    @jax.jit
    def go(R, beta, X, y, h, n):
        step = separated_stepper(method, separated_velocity, X, y)
        return jax.lax.fori_loop(0, n, lambda i, c: step(*c, h), (R, beta))
    return go


def test_stepper_orders_on_a_smooth_stretch():
    th = 0.3
    R = jnp.asarray([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    rng = np.random.default_rng(1)
    X = jnp.asarray(np.r_[rng.normal([-1.0, 1.2], 0.1, (4, 2)), rng.normal([1.0, 1.2], 0.1, (4, 2))])
    beta, y = jnp.asarray([0.05, -0.02]), jnp.asarray([0.1, 0.2])
    T = 0.5
    Rr, br = _final("rkmk4")(R, beta, X, y, T / 400, 400)
    for method, order in [("lie_euler", 1), ("rkmk2", 2), ("rkmk4", 4)]:
        go = _final(method)
        errs = []
        for n in (10, 20):
            R1, b1 = go(R, beta, X, y, T / n, n)
            errs.append(float(jnp.max(jnp.abs(R1 - Rr)) + jnp.max(jnp.abs(b1 - br))))
            assert float(jnp.max(jnp.abs(R1.T @ R1 - jnp.eye(2)))) < 1e-13
        ratio = errs[0] / errs[1]
        assert 2 ** order * 0.7 < ratio < 2 ** order * 1.4, (method, errs)


def test_exp_euler_is_exact_for_the_bias_at_fixed_R():
    # R frozen and the cluster fully truncated: beta + y~ = e^{-s} (beta0 + y~), Eq. (4.37)
    R = jnp.eye(2)
    X = jnp.asarray([[-3.0, -3.0], [-3.5, -2.5]])
    beta0, y = jnp.asarray([0.5, 0.2]), jnp.asarray([0.3, -0.4])
    p = dict(R0=R, beta0=beta0, X=X, y_tilde=y, h=jnp.asarray(0.1), rotate=jnp.asarray(0.0))
    o = jax.jit(lambda p: run_one(p, n_steps=20, save_every=5, method="exp_euler"))(p)
    np.testing.assert_allclose(o["gap"], np.exp(-o["t"]) * float(jnp.linalg.norm(beta0 + y)), rtol=1e-13)
    assert float(o["s1"]) == 0.0 and bool(o["full_at_end"])


def test_adaptive_members_agree_with_fixed_step_and_report_status():
    """method='adaptive' (RKMK4, error control, located events) is the limit of fixed-step RKMK4 runs of the same
    members: fixed steps cross the sector faces unlocated (an O(h) error per crossing), so halving h about halves
    their distance to the adaptive solution."""
    params = jax.jit(jax.vmap(lambda i: synthetic_member(member_key(11, i), Q=2, N=6, radius=0.5, centre_distance=2.0,
                                                       target_distance=2.0, beta_scale=0.2, h=0.01,
                                                       dtype=jnp.float64)))(jnp.arange(6))   # one compile
    adapt = jax.jit(lambda P: jax.lax.map(lambda p: run_one(p, n_steps=300, save_every=30, method="adaptive",
                                                             rtol=1e-10, atol=1e-12), P))(params)   # ENSEMBLE_NOTE
    assert np.all(np.asarray(adapt["status"]) == 0) and np.allclose(adapt["t_final"], 3.0, rtol=0, atol=1e-12)
    errs, steps = [], ((0.01, 300), (0.005, 600))
    fixed_runs = jax.jit(lambda P: [jax.vmap(lambda p: run_one(p, n_steps=n, save_every=n // 10, method="rkmk4"))(
        dict(P, h=jnp.full(6, h))) for h, n in steps])(params)        # both step counts in one compiled call
    for fixed in fixed_runs:
        np.testing.assert_allclose(adapt["t"], fixed["t"], rtol=0, atol=1e-12)
        errs.append(float(np.max(np.abs(np.asarray(adapt["btilde"]) - np.asarray(fixed["btilde"])))))
    assert errs[1] < 2e-3 and 0.35 < errs[1] / errs[0] < 0.65, errs
    S = summarize(jax.tree.map(np.asarray, adapt), N=6)
    assert S["stopped_early"] == 0 and S["members"] == 6


def test_run_one_refuses_bad_static_arguments():
    p = synthetic_member(member_key(0, 0), Q=2, N=4, radius=0.5, centre_distance=2.0, target_distance=1.0,
                         beta_scale=0.2, h=0.05, dtype=jnp.float64)
    for kw, msg in [(dict(flow="seperated"), "flow: expected one of"), (dict(method="rk45"), "method: expected one of"),
                    (dict(velocity="grad"), "velocity: expected one of"), (dict(save_every=0), "save_every: expected"),
                    (dict(n_steps=7, save_every=5), "n_steps: expected a multiple")]:
        with pytest.raises(ValueError, match=msg):
            run_one(p, **dict(dict(n_steps=10), **kw))


@given(st.integers(1, 500), st.integers(1, 64))
def test_chunk_bounds_partition_the_ensemble(M, c):
    b = chunk_bounds(M, c)
    assert b[0][0] == 0 and b[-1][1] == M
    assert all(hi - lo == c for lo, hi in b[:-1]) and 0 < b[-1][1] - b[-1][0] <= c
    assert all(b[i][1] == b[i + 1][0] for i in range(len(b) - 1))


@given(st.integers(1, 10_000), st.sampled_from([1, 2, 4, 8]), st.floats(1e2, 1e7), st.floats(1e3, 1e9))
def test_choose_chunk_size(M, nd, member, budget):
    c = choose_chunk_size(M, nd, member, budget)
    assert c % nd == 0 and c >= nd
    assert c // nd <= -(-M // nd)
    assert c // nd == 1 or (c // nd) * member <= budget


@given(st.floats(0.05, 3.0), st.floats(0.0, 5.0))
def test_fit_decay_rates_recovers_exponentials(rate, s1):
    t = np.linspace(0, 10, 101)[None]
    gap = np.where(t >= s1, 2.0 * np.exp(-rate * (t - s1)), 2.0)
    n_full = np.where(t >= s1, 5, 3)
    r = fit_decay_rates(t, gap, n_full, 5, np.array([s1]))
    if np.sum(t >= s1) >= 3:
        assert abs(r[0] - rate) < 1e-9 * max(1, rate)
    assert np.isnan(fit_decay_rates(t, gap, n_full, 5, np.array([np.nan]))[0])


def test_fit_decay_rates_stops_when_the_cluster_leaves_the_negative_sector():
    t = np.linspace(0, 10, 101)[None]
    gap = np.exp(-t) * np.where(t > 5, 1e3, 1.0)          # a jump after s = 5 must not enter the fit
    n_full = np.where(t > 5, 4, 5)
    assert abs(fit_decay_rates(t, gap, n_full, 5, np.array([0.0]))[0] - 1) < 1e-12


def test_staircase_rates_on_synthetic_steps():
    t = np.linspace(0, 4, 41)[None]
    n = np.where(t < 2, 2, 3)[..., None]                    # count 2 then 3 of N = 4
    b = np.where(t < 2, np.exp(-0.5 * t), np.exp(-1.0) * np.exp(-0.75 * (t - 2)))[..., None]
    pred, fit = staircase_rates(t, b, n, 4)
    assert pred.size == 39 and np.allclose(fit, pred, atol=1e-12)


@pytest.mark.parametrize("config, message", [
    ({"data": {"Q": 0}}, "[data] Q: must be between 1 and 32, got 0"),
    ({"data": {"Q": 2.0}}, "[data] Q: expected an integer (between 1 and 32), got 2.0"),
    ({"data": {"radius": -1}}, "[data] radius: must be > 0, got -1.0"),
    ({"data": {"radius": True}}, "[data] radius: expected a finite number (> 0), got True"),
    ({"flow": {"kind": "deep"}}, "[flow] kind: must be one of 'separated', 'fixed_R', 'general', 'training', got 'deep'"),
    ({"flow": {"kind": "general"}, "integrator": {"method": "rkmk4"}},
     "[integrator] method: flow 'general' needs one of 'rkmk2', 'lie_euler', 'adaptive', got 'rkmk4'"),
    ({"integrator": {"methd": "rkmk2"}}, "[integrator] methd: unknown key; allowed keys in [integrator]: method,"),
    ({"ensembel": {}}, "config: unknown section [ensembel]; allowed sections: data, flow, training, integrator, time, ensemble"),
    ({"time": 3}, "[time]: expected a table of keys, got 3"),
    ({"flow": {"kind": "general", "velocity": "fused"}},
     "[flow] velocity: flow 'general' uses 'closed_form' or 'auto' (truncflow.general.general_velocity), got 'fused'"),
    ({"integrator": {"precision": "tf32"}}, "[integrator] precision: must be one of 'highest', 'default', got 'tf32'"),
])
def test_validate_config_names_key_and_allowed_values(config, message):
    with pytest.raises(ConfigError) as e:
        validate_config(config)
    assert str(e.value).startswith(message)


def test_validate_config_fills_defaults():
    cfg = validate_config({"data": {"Q": 3}})
    assert cfg["data"]["Q"] == 3 and cfg["data"]["N"] == 16 and cfg["integrator"]["method"] == "rkmk2"
    assert isinstance(cfg["data"]["radius"], float)


def test_auto_velocity_rule():
    """'auto': the fused kernel only on GPUs and only from Q = 8 (below, its padding to 16 costs more); general
    flows always use their closed form."""
    for Q, platform, want in [(16, "gpu", "fused"), (8, "gpu", "fused"), (7, "gpu", "closed_form"),
                              (32, "cpu", "closed_form"), (16, "tpu", "closed_form")]:
        assert resolve_velocity(validate_config({"data": {"Q": Q}}), platform) == want
    assert resolve_velocity(validate_config({"data": {"Q": 16}, "flow": {"velocity": "autodiff"}}), "gpu") == "autodiff"
    assert resolve_velocity(validate_config({"data": {"Q": 16}, "flow": {"kind": "general"}}), "gpu") == "closed_form"


def test_resumed_sweep_keeps_the_velocity_it_started_with(tmp_path):
    """A sweep records its resolved velocity; resuming on a machine that would resolve 'auto' differently keeps the
    recorded one (here: a manifest that says 'fused', resumed on the CPU, warns and runs the kernel in interpret
    mode), and the chunks agree with the closed form's to rounding."""
    cfg = SMALL                                      # its closed-form chunk is compiled once for the file
    out = str(tmp_path / "s")
    man = run_sweep(cfg, out, progress=False)
    assert man["velocity"] == "closed_form"
    ref, _ = load_sweep(out)
    man["velocity"] = "fused"
    os.remove(os.path.join(out, man["chunks"]["1"]["file"]))
    del man["chunks"]["1"]
    man["complete"] = False
    atomic_write(os.path.join(out, "manifest.json"), lambda fh: fh.write(json.dumps(man).encode()))
    seen = []
    with pytest.warns(UserWarning, match="started with the fused kernel"):
        man2 = run_sweep(cfg, out, progress=False, on_chunk=lambda k, a: seen.append(k))
    assert seen == [1] and man2["velocity"] == "fused"
    res, _ = load_sweep(out)
    for k in ("R_final", "beta_final", "cost"):
        np.testing.assert_allclose(res[k], ref[k], atol=1e-12, rtol=0)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    p = tmp_path / "x.bin"
    atomic_write(str(p), lambda fh: fh.write(b"old"))
    def bad(fh):
        fh.write(b"partial")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        atomic_write(str(p), bad)
    assert p.read_bytes() == b"old" and os.listdir(tmp_path) == ["x.bin"]


def test_sweep_in_process_resume_and_errors(tmp_path):
    cfg = SMALL
    out = str(tmp_path / "s")
    seen = []
    man = run_sweep(cfg, out, progress=False, on_chunk=lambda k, a: seen.append(k))
    assert seen == [0, 1, 2] and man["complete"] and man["n_chunks"] == 3
    res, man = load_sweep(out)
    assert np.array_equal(res["index"], np.arange(12))
    os.remove(os.path.join(out, man["chunks"]["1"]["file"]))
    seen.clear()
    run_sweep(cfg, out, progress=False, on_chunk=lambda k, a: seen.append(k))
    assert seen == [1]
    res2, _ = load_sweep(out)
    assert all(np.array_equal(res[k], res2[k], equal_nan=True) for k in res)
    with pytest.raises(FileExistsError, match="already holds a sweep"):
        run_sweep(cfg, out, resume=False)
    with pytest.raises(ValueError, match=r"config: differs from the sweep in .*\[ensemble\] seed was 3"):
        run_sweep(dict(cfg, ensemble={"size": 12, "seed": 4, "chunk_size": 4}), out)
    with pytest.raises(ValueError, match="no manifest.json"):
        load_sweep(str(tmp_path))
    S = summarize(res, N=6)
    assert S["members"] == 12 and 0 <= S["frac_full"] <= 1
    with pytest.raises(ValueError, match="params"):
        run_ensemble(sweep_member_fn(validate_config(cfg)), {"a": jnp.zeros(3), "b": jnp.zeros(4)})


def test_memory_estimates_agree_roughly():
    def member(i):                                  # a cheap stand-in with known output size
        x = jnp.linspace(0.0, 1.0, 1000) * i
        return {"a": jnp.cumsum(jnp.sin(x)), "b": jnp.outer(x[:50], x[:50])}
    est = bytes_per_member(member)
    xla = bytes_per_member(member, compiled=True)
    out = (1000 + 2500) * np.dtype(jax.numpy.result_type(float)).itemsize
    assert est >= out and xla >= out and 0.1 < est / xla < 10
    assert choose_chunk_size(1000, 1, est, est * 50) == 50


def test_general_sweep_and_report(tmp_path, capsys):
    """flow.kind = 'general' (Section 5): cost at s = 0 equals general_cost, never increases beyond integration
    error, R_l stay orthogonal; `truncflow report` summarises it and draws cost.png."""
    from truncflow.cli import main
    from truncflow.synthetic import synthetic_general_member
    from truncflow.general import general_cost
    cfg = {"flow": {"kind": "general"}, "data": {"Q": 2, "N": 4, "clusters": 2, "radius": 0.4},
           "integrator": {"step": 0.02, "save_every": 5}, "time": {"t_end": 2.0},
           "ensemble": {"size": 5, "chunk_size": 3, "seed": 1}}
    out = str(tmp_path / "g")
    run_sweep(cfg, out, progress=False)
    res, man = load_sweep(out)
    assert res["cost"].shape == (5, 21) and res["n_full"].shape == (5, 21, 2) and res["Rs_final"].shape == (5, 2, 2, 2)
    c = validate_config(cfg)["data"]

    def cost0(m):                                    # members 0 and 4 in one compiled call (eager: op by op)
        p = synthetic_general_member(member_key(1, m), Q=2, N=4, J=2, L=2, radius=0.4,
                                     centre_distance=c["centre_distance"], target_distance=c["target_distance"],
                                     beta_scale=c["beta_scale"], h=0.02)
        return general_cost(p["Rs0"], p["betas0"], p["X"], p["labels"], p["Y_tilde"])
    for m, c0 in zip((0, 4), jax.jit(jax.vmap(cost0))(jnp.asarray([0, 4]))):
        assert abs(res["cost"][m, 0] - float(c0)) < 1e-12
    assert np.max(np.diff(res["cost"], axis=1)) < 1e-5 * res["cost"].max()
    assert res["orth_err"].max() < 1e-12
    assert main(["report", out]) == 0
    text = capsys.readouterr().out
    assert "flow 'general'" in text and "largest cost increase" in text
    assert os.path.getsize(os.path.join(out, "cost.png")) > 1000


def test_run_ensemble_chooses_its_chunk_size_and_checks_its_input():
    """Without chunk_size the size comes from the memory budget (this path used to crash in eval_shape)."""
    params = jax.jit(jax.vmap(lambda i: synthetic_member(member_key(2, i), Q=2, N=4, radius=0.5, centre_distance=2.0,
                                                       target_distance=1.0, beta_scale=0.2, h=0.05,
                                                       dtype=jnp.float64)))(jnp.arange(5))   # one compile
    flow = functools.partial(run_one, n_steps=4, save_every=2)
    auto = run_ensemble(flow, params, memory_budget_mb=1.0)
    fixed = run_ensemble(flow, params, chunk_size=2)
    assert all(np.array_equal(auto[k], fixed[k], equal_nan=True) for k in auto)
    bad = [({}, {}, "params: expected arrays with a leading ensemble axis"),
           (dict(params, h=params["h"].at[1].set(jnp.nan)), {}, r"params\['h'\]: contains 1 non-finite"),
           (dict(params, h=-params["h"]), {}, r"params\['h'\]: step sizes must be > 0"),
           (dict(params, R0=2 * params["R0"]), {}, r"params\['R0'\]"),
           (dict(params, X=params["X"][:3]), {}, r"params\['X'\]: every array needs the same leading"),
           (params, dict(chunk_size=-4), "chunk_size"), (params, dict(chunk_size=2.5), "chunk_size"),
           (params, dict(memory_budget_mb=0.0), "memory_budget_mb")]
    for p, kw, msg in bad:
        with pytest.raises(ValueError, match=msg):
            run_ensemble(flow, p, **kw)


def test_config_refuses_runaway_step_counts(tmp_path):
    with pytest.raises(ConfigError, match=r"\[integrator\] step: .* steps per flow"):
        validate_config({"integrator": {"step": 1e-12}})
    with pytest.raises(ConfigError, match=r"\[integrator\] save_every: .* saved times"):
        validate_config({"integrator": {"step": 1e-4, "save_every": 1}, "time": {"t_end": 100.0}})
    with pytest.raises(ValueError, match="memory_estimate"):
        run_sweep(TINY, str(tmp_path / "s"), memory_estimate="compile", progress=False)
