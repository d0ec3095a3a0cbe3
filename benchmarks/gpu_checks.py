"""What the GPU part of the benchmarks needs besides speed ratios: accuracy of each velocity at each precision, and
whole sweeps (truncflow.sweep.run_sweep) with the closed form against the fused kernel.

(1) Accuracy: the velocity (Omega, beta_dot) of Eqs. (3.36)-(3.37) for M members, in float32 at the default matmul
    precision (TF32 on NVIDIA GPUs) and at "highest", and in float64, for the closed form (truncflow.separated) and
    the fused Pallas kernel (truncflow.fused), each against the closed form in float64; max |error| / max |ref|.
    This says whether "highest" reaches the kernel's dot and whether the kernel compiles in float64.
(2) Sweeps: the same sweep config run with velocity 'closed_form' and 'fused', in float32 (matmul precision 'highest',
    the sweeps' default, and 'default', i.e. TF32 on NVIDIA GPUs) and in float64; the wall time
    of a second run (compiled function reused, fresh output folder), and how far the results of the two velocities
    are apart.
    python benchmarks/gpu_checks.py --out benchmarks/results/gpu_checks.json            (on the GPU machine)
    python benchmarks/gpu_checks.py --dry-run --out DIR/gpu_checks.json                 (CPU, tiny, interpret mode)
The dry run takes every code path at the smallest sizes: the accuracy cases float32 at "highest" and float64 (on
a CPU "default" is the same), and the sweeps of one case (float64, where the two velocities must agree to
rounding) with each velocity, each run twice.
(3) What [flow] velocity = 'auto' resolves to here (truncflow.config.resolve_velocity, as run_sweep resolves it).
The JSON is rewritten after every item (a run cut by its time limit keeps what finished); failures are recorded
under `errors` and the rest goes on."""
import argparse
import shutil
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_result  # noqa: E402
from truncflow.sweep import run_sweep, load_sweep  # noqa: E402
from truncflow.config import validate_config, resolve_velocity  # noqa: E402
from truncflow.synthetic import synthetic_member  # noqa: E402
from truncflow.separated import separated_velocity_ensemble  # noqa: E402
from truncflow.fused import separated_velocity_fused  # noqa: E402


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _members(Q, N, M, seed=0):
    """M members of the sweeps' synthetic data (one shared X, y~ taken from member 0), float64; one compiled
    function (eager ops would each compile)."""
    ps = jax.vmap(lambda i: synthetic_member(jax.random.PRNGKey(seed + i), Q=Q, N=N, radius=0.5,
                                             centre_distance=2.0, target_distance=1.5, beta_scale=0.3, h=0.02,
                                             dtype=jnp.float64))(jnp.arange(M))
    return ps["R0"], ps["beta0"], ps["X"][0], ps["y_tilde"][0]


def _rel(got, ref):
    got, ref = [np.asarray(g, np.float64) for g in got], [np.asarray(r) for r in ref]      # NumPy: no compiles
    return max(float(np.max(np.abs(g - r)) / max(float(np.max(np.abs(r))), 1e-300)) for g, r in zip(got, ref))


def accuracy(Q, N, M, tile, out, save, float32_precisions=("default", "highest")):
    Rs, betas, X, y = _members(Q, N, M)
    ref = jax.jit(separated_velocity_ensemble)(Rs, betas, X, y)
    fused = jax.jit(jax.vmap(partial(separated_velocity_fused, tile=tile), in_axes=(0, 0, None, None)))
    closed = jax.jit(separated_velocity_ensemble)
    res = out.setdefault("accuracy", {"Q": Q, "N": N, "M": M, "tile": tile, "reference": "closed form, float64",
                                      "max_rel_error": {}})
    for dt in ("float32", "float64"):
        args = [jnp.asarray(np.asarray(a).astype(dt)) for a in (Rs, betas, X, y)]
        for prec in (float32_precisions if dt == "float32" else ("default",)):
            for name, f in (("closed_form", closed), ("fused", fused)):
                key = f"{name}_{dt}_{prec}"
                try:
                    with jax.default_matmul_precision(None if prec == "default" else prec):
                        res["max_rel_error"][key] = _rel(jax.block_until_ready(f(*args)), ref)
                    print(f"accuracy {key:28s} {res['max_rel_error'][key]:.2e}")
                except Exception as e:                       # e.g. a kernel that does not compile in float64
                    out["errors"][f"accuracy_{key}"] = f"{type(e).__name__}: {e}"[:2000]
                    print(f"accuracy {key:28s} FAILED: {type(e).__name__}: {str(e)[:300]}")
                save()


SWEEP_CASES = (("float32", "highest"), ("float32", "default"), ("float64", "highest"))


def sweep(Q, N, M, t_end, chunk, out, save, cases=SWEEP_CASES):
    base = {"data": {"Q": Q, "N": N}, "time": {"t_end": t_end},
            "integrator": {"method": "rkmk2", "step": 0.02, "save_every": 50 if t_end >= 1 else 5},
            "ensemble": {"size": M, "seed": 0, "chunk_size": chunk}}
    res = out.setdefault("sweeps", {"Q": Q, "N": N, "M": M, "t_end": t_end, "step": 0.02, "method": "rkmk2",
                                    "chunk_size": chunk, "runs": {}})
    for dt, prec in cases:
        results = {}
        case = f"{dt}_{prec}" if dt == "float32" else dt
        for vel in ("closed_form", "fused"):
            cfg = {**base, "flow": {"velocity": vel},
                   "integrator": {**base["integrator"], "dtype": dt, "precision": prec}}
            key = f"{vel}_{case}"
            tmp = tempfile.mkdtemp(prefix="tf_sweep_")
            try:
                t0 = time.perf_counter()
                run_sweep(cfg, f"{tmp}/first", progress=False)
                first = time.perf_counter() - t0
                t0 = time.perf_counter()
                run_sweep(cfg, f"{tmp}/second", progress=False)     # compiled chunk function reused
                second = time.perf_counter() - t0
                results[vel], _ = load_sweep(f"{tmp}/second")
                n_steps = round(t_end / 0.02)
                res["runs"][key] = dict(seconds_first_run=first, seconds=second,
                                        us_per_member_step=second / (M * n_steps) * 1e6)
                print(f"sweep {key:20s} first run {first:7.2f} s (with compile), second {second:7.2f} s")
            except Exception as e:
                out["errors"][f"sweep_{key}"] = f"{type(e).__name__}: {e}"[:2000]
                print(f"sweep {key:20s} FAILED: {type(e).__name__}: {str(e)[:300]}")
                traceback.print_exc(limit=3)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            save()
        if len(results) == 2:
            a, b = results["closed_form"], results["fused"]
            diff = {k: float(np.nanmax(np.abs(a[k] - b[k]))) for k in ("R_final", "beta_final", "cost")}
            same_s1 = np.isnan(a["s1"]) == np.isnan(b["s1"])
            s1 = np.abs(a["s1"] - b["s1"])[~np.isnan(a["s1"]) & ~np.isnan(b["s1"])]
            res[f"agreement_{case}"] = dict(max_abs_diff=diff, s1_defined_in_both=bool(same_s1.all()),
                                          s1_max_abs_diff=float(s1.max()) if s1.size else None,
                                          fraction_full_at_end=[float(a["full_at_end"].mean()),
                                                                float(b["full_at_end"].mean())])
            r = res["runs"]
            res[f"closed_over_fused_{case}"] = r[f"closed_form_{case}"]["seconds"] / r[f"fused_{case}"]["seconds"]
            print(f"sweep {case}: closed/fused = {res[f'closed_over_fused_{case}']:.2f}; "
                  f"agreement {res[f'agreement_{case}']}")
            save()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, for the CPU (kernel in interpret mode)")
    a = p.parse_args(argv)
    out = dict(benchmark="gpu_checks", **machine_info(), complete=False, errors={},
               note="accuracy of each velocity at each precision, and whole sweeps with each velocity")
    save = lambda: write_result(out, a.out, quiet=True)
    if a.dry_run:
        accuracy(4, 40, 2, 16, out, save, float32_precisions=("highest",))
        sweep(4, 16, 2, 0.1, 2, out, save, cases=(("float64", "highest"),))
    else:
        accuracy(16, 4096, 64, 256, out, save)
        sweep(16, 4096, 2048, 10.0, 1024, out, save)
    try:                                            # what [flow] velocity = 'auto' (the default) picks here
        for Q in (4, 16):
            cfg = validate_config({"data": {"Q": Q, "N": 32}, "time": {"t_end": 0.1}, "ensemble": {"size": 2}})
            out.setdefault("auto_velocity", {})[f"Q={Q}"] = resolve_velocity(cfg, jax.default_backend())
        print(f"velocity 'auto' resolves to {out['auto_velocity']}")
    except Exception as e:
        out["errors"]["auto_velocity"] = f"{type(e).__name__}: {e}"[:2000]
    out["complete"] = True
    write_result(out, a.out)


if __name__ == "__main__":
    main()
