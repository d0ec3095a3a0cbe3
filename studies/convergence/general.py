"""Convergence study of the general flow (Theorem 5.1) for the runs chapter (nbs/32_runs.ipynb).

Members 0-7 of the sweeps' synthetic family below (truncflow.synthetic.synthetic_general_member,
seed 0), s in [0, 10]: run_general(method="adaptive") (initial step 0.02), and fixed-step RKMK2 runs
with h = 0.02, 0.01, 0.005. Writes studies/results/convergence_general.json: per member the adaptive
run's status, number of face events, time of the last event, final cost and largest cost increase
between saves, and |final cost of RKMK2 - adaptive| per step size. The chapter reruns two of the
members and checks that it gets the same numbers. Run from the repository root, with the flags of
make test:

    XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true" \
        .venv/bin/python studies/convergence/general.py
"""
import json
import os
import time

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax

jax.config.update("jax_enable_x64", True)
from truncflow.runs import run_general  # noqa: E402
from truncflow.synthetic import synthetic_general_member, member_key  # noqa: E402

FAMILY = dict(
    Q=2, N=16, J=2, L=2, radius=0.5, centre_distance=2.0, target_distance=1.5, beta_scale=0.3
)
T_END, MEMBERS, H_ADAPTIVE, H_FIXED = 10.0, 8, 0.02, (0.02, 0.01, 0.005)
OUT = os.path.join(os.path.dirname(__file__), "..", "results", "convergence_general.json")


def general_summary(h, method, members):
    """run_general for the members `members` of FAMILY, one after another in one compiled call."""
    f = lambda i: run_general(
        synthetic_general_member(member_key(0, i), **FAMILY, h=h),
        n_steps=int(round(T_END / h)),
        save_every=int(round(1.0 / h)),
        method=method,
    )
    return jax.tree.map(np.asarray, jax.jit(lambda idx: lax.map(f, idx))(jnp.asarray(members)))


def main():
    t0 = time.process_time()
    members = list(range(MEMBERS))
    ad = general_summary(H_ADAPTIVE, "adaptive", members)
    dev = [
        np.abs(general_summary(h, "rkmk2", members)["cost"][:, -1] - ad["cost"][:, -1]).tolist()
        for h in H_FIXED
    ]
    out = dict(
        family=FAMILY,
        t_end=T_END,
        seed=0,
        members=members,
        h_adaptive=H_ADAPTIVE,
        h_fixed=list(H_FIXED),
        status=ad["status"].tolist(),
        n_events=ad["n_events"].tolist(),
        t_last_event=ad["t_last_event"].tolist(),
        final_cost=ad["cost"][:, -1].tolist(),
        max_cost_increase=np.max(np.diff(ad["cost"], axis=1), axis=1).tolist(),
        cost_deviation=dev,
        cpu_seconds=time.process_time() - t0,
        jax=jax.__version__,
        xla_flags=os.environ.get("XLA_FLAGS", ""),
    )
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print(json.dumps({k: out[k] for k in ("status", "n_events", "cost_deviation", "cpu_seconds")}))


if __name__ == "__main__":
    main()
