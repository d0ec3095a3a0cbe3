"""Tests for truncflow.integrate: the exponential of skew matrices over random inputs, input checks, and the
adaptive integrator on sliding faces (Filippov) against fine fixed steps, which no notebook runs."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st
from scipy.linalg import expm as scipy_expm

from truncflow.integrate import fixed_step, integrate_separated
from truncflow.lie import expm
from truncflow.separated import separated_velocity

_expm = jax.jit(expm)


# nbs/02_lie checks the exponential on a grid of sizes and norms; here random skew matrices of two fixed sizes
# (each size is one compile) and random norms.
@given(st.integers(0, 10_000), st.floats(1e-4, 20.0), st.sampled_from([2, 5]))
def test_expm_of_skew_matrices(seed, scale, Q):
    A = np.random.default_rng(seed).normal(size=(Q, Q)) * scale
    A = A - A.T
    E = np.asarray(_expm(jnp.asarray(A)))
    assert np.max(np.abs(E - scipy_expm(A))) < 1e-13 * max(1.0, scale)
    assert np.max(np.abs(E.T @ E - np.eye(Q))) < 1e-13 * max(1.0, scale)


# Bad input that nbs/17_integrate does not already refuse (it checks a non-orthogonal R0, the shape of beta0, an
# empty X, a non-finite y_tilde, an empty t_span, a negative rtol and a negative h0)
@pytest.mark.parametrize("kw,name", [
    (dict(beta0=np.array([np.nan, 0.0])), "beta0"),
    (dict(X=np.ones((3, 3))), "X"),
    (dict(t_span=(0.0, np.inf)), "t_span"),
    (dict(atol=-1.0), "atol"),
    (dict(max_steps=0), "max_steps"),
    (dict(max_sliding=-1), "max_sliding"),
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
# Uneven save times (on the reference's grid of 1e-4): the runs also show that save_at is hit exactly.
_SAVE_AT = np.array([0.0, 0.1, 0.3, 0.35, 0.7, 1.0, 1.2, 1.5, 1.7, 2.0, 2.4, 2.9, 3.0])


def _slide_member(i):
    from truncflow.synthetic import synthetic_member, member_key
    return synthetic_member(member_key(0, i), Q=2, N=6, radius=0.5, centre_distance=2.0, target_distance=1.5,
                            beta_scale=0.3, h=0.05)


def _run(p, **kw):
    return integrate_separated(p["R0"], p["beta0"], p["X"], p["y_tilde"], (0.0, 3.0), save_at=_SAVE_AT,
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
    assert np.array_equal(np.asarray(sol.ts), _SAVE_AT)
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
    from truncflow.integrate import face_rates
    from truncflow.solution import STATUS_MEANING
    m, t_in, i, r, _ = case
    p = _slide_member(m)
    with pytest.warns(RuntimeWarning, match=rf"point {i}, coordinate {r}"):
        sol = _run(p, max_sliding=0, h_corner=0.0)                  # no corner crossing: stop
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


@pytest.mark.parametrize("case", _SLIDE_CASES)
def test_sliding_disabled_crossed_by_time_stepping(case):
    """With sliding off, the chattering face is crossed by event-free time stepping (the default
    h_corner): the run finishes, says so (n_corners, event kinds 3 and 4), and stays within
    O(h_corner) of the fine fixed-step reference, which chatters about the face the same way."""
    m, t_in, i, r, _ = case
    p = _slide_member(m)
    sol = _run(p, max_sliding=0)
    assert bool(sol.success) and int(sol.status) == 0 and int(sol.n_corners) >= 1
    n = int(sol.n_events)
    kinds = np.asarray(sol.event_kind[:n])
    start = np.asarray(sol.event_ts[:n])[kinds == 3]
    assert np.sum(kinds == 3) == int(sol.n_corners) and abs(start[0] - t_in) < 1e-3
    assert 0 < float(sol.corner_time) <= 3.0
    Rs, bs = _fine_reference(m, p)
    idx = np.rint(np.asarray(sol.ts) / 1e-4).astype(int)
    assert np.max(np.abs(bs[idx] - np.asarray(sol.betas))) < 1e-3     # h_corner = 1e-3
    assert np.max(np.abs(Rs[idx] - np.asarray(sol.Rs))) < 1e-3
