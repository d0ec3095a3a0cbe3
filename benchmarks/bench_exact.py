"""Benchmark: exact solution of the fixed-R bias flow (Section 4.3, Eqs. (4.42)-(4.50)) against numerical integration.

Times (after compilation) the jitted exact solver `truncflow.orbits.exact_bias_core` and two integrators reaching the
same accuracy: scipy's solve_ivp restarted at every face crossing (rtol 1e-13), and truncflow's RKMK4 integrator with
event location (`integrate_separated` with Omega frozen, Q = 1, rtol 1e-13). Writes benchmarks/results/exact.json and
prints a table. Usage: python benchmarks/bench_exact.py [--quick]
"""
import json, pathlib, sys, time, platform
import numpy as np
import jax
import jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
from scipy.integrate import solve_ivp
from truncflow.orbits import exact_bias_core
from truncflow.integrate import integrate_separated, fixed_R_velocity


def piecewise_ivp(x, y, b0, T, s_eval):
    """solve_ivp on Eq. (4.42), stopped at each face crossing and restarted on the face; returns b(s_eval)."""
    N = len(x); s, b = 0.0, float(b0); out = np.full(len(s_eval), np.nan)
    def rhs(t, u, n): return [n / N * (y - u[0])]
    while s < T:
        n = np.sum(x <= b) if y >= b else np.sum(x < b)
        ahead = x[x > b] if y > b else x[x < b]
        ahead = ahead[ahead < y] if y > b else ahead[ahead > y]
        if n == 0:
            out[s_eval >= s] = b; break
        evs = [lambda t, u, *a, c=c: u[0] - c for c in np.unique(ahead)]
        for e in evs: e.terminal = True
        sol = solve_ivp(rhs, (s, T), [b], args=(n,), events=evs or None, rtol=1e-13, atol=1e-15, dense_output=True)
        hit = [te[0] for te in (sol.t_events or []) if len(te)]
        s_new = min(hit) if hit else T
        m = (s_eval >= s) & (s_eval <= s_new)
        if m.any():
            out[m] = sol.sol(s_eval[m])[0]
        b = float(ahead[np.argmin(np.abs(ahead - sol.sol(s_new)[0]))]) if hit else float(sol.y[0, -1])
        s = s_new
    return out


def best_of(f, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return min(ts)


def main(quick=False):
    rng = np.random.default_rng(0)
    T, S = 30.0, 100
    s_eval = np.linspace(0, T, S)
    rows = []
    for N in ((10, 100) if quick else (10, 100, 1000)):
        x = rng.normal(size=N); y, b0 = 1.5, -1.0
        xj, yj, bj, sj = jnp.asarray(x), jnp.asarray(y), jnp.asarray(b0), jnp.asarray(s_eval)
        f = jax.jit(exact_bias_core)
        ex = np.asarray(f(xj, yj, bj, sj).block_until_ready())
        t_exact = best_of(lambda: f(xj, yj, bj, sj).block_until_ready(), 50)
        t_ivp = best_of(lambda: piecewise_ivp(x, y, b0, T, s_eval), 1 if N > 100 else 3)
        err_ivp = float(np.max(np.abs(piecewise_ivp(x, y, b0, T, s_eval) - ex)))
        X = x[:, None]; R = np.eye(1)
        run = lambda: integrate_separated(R, np.array([-b0]), X, np.array([y]), (0.0, T), save_at=s_eval,
                                          rtol=1e-13, atol=1e-15, velocity=fixed_R_velocity, max_events=2 * N)
        sol = run(); jax.block_until_ready(sol)
        t_int = best_of(lambda: jax.block_until_ready(run()), 1 if N > 100 else 3)
        err_int = float(np.max(np.abs(-np.asarray(sol.betas)[:, 0] - ex)))
        rows.append(dict(N=N, events=int(np.sum((x > b0) & (x < y))), exact_s=t_exact, solve_ivp_s=t_ivp,
                         solve_ivp_err=err_ivp, integrator_s=t_int, integrator_err=err_int,
                         speedup_vs_solve_ivp=t_ivp / t_exact, speedup_vs_integrator=t_int / t_exact))
    res = dict(benchmark="exact Section 4.3 bias flow vs numerical integration", T=T, n_times=S,
               jax=jax.__version__, platform=platform.platform(), device=str(jax.devices()[0]), rows=rows)
    out = pathlib.Path(__file__).parent / "results" / "exact.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"{'N':>6} {'events':>7} {'exact':>10} {'solve_ivp':>10} {'err':>8} {'RKMK4':>10} {'err':>8} {'x ivp':>8} {'x RKMK4':>8}")
    for r in rows:
        print(f"{r['N']:>6} {r['events']:>7} {r['exact_s']*1e6:>8.0f}us {r['solve_ivp_s']*1e3:>8.1f}ms {r['solve_ivp_err']:>8.1e} "
              f"{r['integrator_s']*1e3:>8.1f}ms {r['integrator_err']:>8.1e} {r['speedup_vs_solve_ivp']:>8.0f} {r['speedup_vs_integrator']:>8.0f}")
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
