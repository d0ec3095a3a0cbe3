"""Tests for truncflow.integrate: RKMK4 on O(Q) x R^Q with step control and face-crossing events."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st
from scipy.linalg import expm as scipy_expm

from truncflow.integrate import fixed_step, fixed_step_final, integrate_separated, fixed_R_velocity
from truncflow.lie import expm
from truncflow.orbits import exact_fixed_R_bias, fixed_R_events
from truncflow.network import random_orthogonal
from truncflow.separated import separated_velocity

_expm = jax.jit(expm)


@given(st.integers(0, 10_000), st.floats(1e-4, 20.0), st.integers(2, 5))
def test_expm_of_skew_matrices(seed, scale, Q):
    A = np.random.default_rng(seed).normal(size=(Q, Q)) * scale
    A = A - A.T
    E = np.asarray(_expm(jnp.asarray(A)))
    assert np.max(np.abs(E - scipy_expm(A))) < 1e-13 * max(1.0, scale)
    assert np.max(np.abs(E.T @ E - np.eye(Q))) < 1e-13 * max(1.0, scale)


def _problem(seed, Q=3, N=20):
    r = np.random.default_rng(seed)
    R = random_orthogonal(jax.random.PRNGKey(seed), Q)
    return R, jnp.asarray(0.3 * r.normal(size=Q)), jnp.asarray(r.normal(size=(N, Q))), jnp.asarray(r.normal(size=Q))


def test_orthogonality_1e5_steps():
    R, b, X, y = _problem(1)
    f = jax.jit(fixed_step_final, static_argnames=("vel", "method"))
    R1, _ = f(separated_velocity, R, b, X, y, 1e-3, 100_000)
    assert np.max(np.abs(np.asarray(R1).T @ np.asarray(R1) - np.eye(3))) < 1e-11
    Re, _ = f(separated_velocity, R, b, X, y, 1e-3, 100_000, "euler")
    assert np.max(np.abs(np.asarray(Re).T @ np.asarray(Re) - np.eye(3))) > 1e-6


def test_save_at_hits_times():
    R, b, X, y = _problem(2, Q=2, N=12)
    sol = integrate_separated(R, b, X, y, (0.0, 2.0), save_at=[0.0, 0.3, 1.7, 2.0])
    assert np.array_equal(np.asarray(sol.ts), [0.0, 0.3, 1.7, 2.0]) and np.all(np.isfinite(sol.betas))


@pytest.mark.parametrize("kw,name", [
    (dict(R0=2 * np.eye(2)), "R0"),
    (dict(beta0=np.zeros(3)), "beta0"),
    (dict(beta0=np.array([np.nan, 0.0])), "beta0"),
    (dict(X=np.ones((0, 2))), "X"),
    (dict(X=np.ones((3, 3))), "X"),
    (dict(y_tilde=np.array([np.inf, 0.0])), "y_tilde"),
    (dict(t_span=(1.0, 1.0)), "t_span"),
    (dict(t_span=(0.0, np.inf)), "t_span"),
    (dict(rtol=-1.0), "rtol"),
    (dict(atol=-1.0), "atol"),
    (dict(h0=-0.1), "h0"),
    (dict(max_steps=0), "max_steps"),
    (dict(save_at=[0.5, 0.2]), "save_at"),
    (dict(velocity=3), "velocity"),
])
def test_bad_input(kw, name):
    args = dict(R0=np.eye(2), beta0=np.zeros(2), X=np.ones((3, 2)), y_tilde=np.zeros(2), t_span=(0.0, 1.0))
    args.update(kw)
    extra = {k: args.pop(k) for k in list(args) if k not in ("R0", "beta0", "X", "y_tilde", "t_span")}
    with pytest.raises(ValueError, match=name):
        integrate_separated(args["R0"], args["beta0"], args["X"], args["y_tilde"], args["t_span"], **extra)


# Regression: sliding faces (Filippov sliding modes). Before the fix these runs exhausted max_steps with ~80-90k
# rejected trial steps and NaN saved states; case 5 recorded 4,324 events on one face.
# (member, time sliding starts, point, coordinate, time sliding ends or None)
_SLIDE_CASES = [(0, 2.4869, 2, 1, None), (3, 1.3906, 3, 0, 1.6613), (5, 1.1324, 3, 0, 1.3445)]
_REF = {}


def _slide_member(i):
    from truncflow.runs import synthetic_member, member_key
    return synthetic_member(member_key(0, i), Q=2, N=6, radius=0.5, centre_distance=2.0, target_distance=1.5,
                            beta_scale=0.3, h=0.05)


def _run(p, **kw):
    return integrate_separated(p["R0"], p["beta0"], p["X"], p["y_tilde"], (0.0, 3.0), n_save=13,
                               rtol=1e-8, atol=1e-10, h0=0.05, **kw)


def _fine_reference(m, p, h=1e-4):
    if m not in _REF:
        f = jax.jit(fixed_step, static_argnames=("vel", "n_steps"))
        _REF[m] = tuple(np.asarray(a) for a in f(separated_velocity, p["R0"], p["beta0"], p["X"], p["y_tilde"],
                                                  h, int(round(3.0 / h))))
    return _REF[m]


@pytest.mark.parametrize("case", _SLIDE_CASES)
def test_sliding_face_followed(case):
    from truncflow.separated import separated_cost
    m, t_in, i, r, t_out = case
    p = _slide_member(m)
    sol = _run(p)
    assert bool(sol.success) and int(sol.status) == 0
    assert int(sol.n_steps) + int(sol.n_rejected) < 5_000            # was ~100,000
    assert np.all(np.isfinite(sol.Rs)) and np.all(np.isfinite(sol.costs))
    assert np.all(np.diff(np.asarray(sol.costs)) <= 1e-12)           # Eq. (3.24), also while sliding
    n = int(sol.n_events)
    ev = np.c_[np.asarray(sol.event_ts[:n]), sol.event_point[:n], sol.event_coord[:n], sol.event_kind[:n]]
    enter = ev[ev[:, 3] == 1]
    assert len(enter) >= 1 and tuple(enter[0, 1:3]) == (i, r) and abs(enter[0, 0] - t_in) < 1e-3
    if t_out is not None:
        leave = ev[ev[:, 3] == 2]
        assert tuple(leave[0, 1:3]) == (i, r) and abs(leave[0, 0] - t_out) < 1e-3
    # agreement with a fine fixed-step reference (it chatters about the face: O(h) error, h = 1e-4)
    h = 1e-4
    Rs, bs = _fine_reference(m, p, h)
    idx = np.rint(np.asarray(sol.ts) / h).astype(int)
    assert np.max(np.abs(bs[idx] - np.asarray(sol.betas))) < 2e-5
    assert np.max(np.abs(Rs[idx] - np.asarray(sol.Rs))) < 2e-5
    cref = np.asarray(jax.vmap(separated_cost, (0, 0, None, None))(Rs[idx], bs[idx], p["X"], p["y_tilde"]))
    assert np.max(np.abs(cref - np.asarray(sol.costs))) < 2e-5


@pytest.mark.parametrize("case", _SLIDE_CASES)
def test_sliding_disabled_stops_cleanly(case):
    from truncflow.integrate import face_rates, STATUS_MEANING
    m, t_in, i, r, _ = case
    p = _slide_member(m)
    with pytest.warns(RuntimeWarning, match=rf"point {i}, coordinate {r}"):
        sol = _run(p, max_sliding=0)
    assert not bool(sol.success) and int(sol.status) == 2 and 2 in STATUS_MEANING
    assert abs(float(sol.t_final) - t_in) < 1e-3 and (int(sol.stop_point), int(sol.stop_coord)) == (i, r)
    assert np.all(np.isfinite(sol.Rs)) and np.all(np.isfinite(sol.betas)) and np.all(np.isfinite(sol.costs))
    after = np.asarray(sol.ts) > float(sol.t_final)
    assert after.any() and np.all(np.asarray(sol.Rs)[after] == np.asarray(sol.Rs)[-1])
    up, dn = face_rates(separated_velocity, sol.Rs[-1], sol.betas[-1], p["X"], p["y_tilde"], i, r)
    assert up < 0 < dn                                               # both sides push into the face
    Rs, bs = _fine_reference(m, p)
    k = np.nonzero(~after)[0]
    idx = np.rint(np.asarray(sol.ts)[k] / 1e-4).astype(int)
    assert np.max(np.abs(bs[idx] - np.asarray(sol.betas)[k])) < 2e-5


def test_max_sliding_checked():
    with pytest.raises(ValueError, match="max_sliding"):
        integrate_separated(np.eye(2), np.zeros(2), np.ones((3, 2)), np.zeros(2), (0.0, 1.0), max_sliding=-1)
