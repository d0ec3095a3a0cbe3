"""Property tests of truncflow.orbits: the exact bias flow of Section 4.3 and the equilibria of Proposition 4.1."""
import numpy as np
import jax
import pytest
from hypothesis import given, assume, strategies as st

from truncflow.orbits import (truncation_times, exact_bias, bias_events, exact_fixed_R_bias, sector_bias,
                              equilibrium_kind)
from truncflow.separated import separated_velocity


def brute_force(x, y, b0, T=6.0, dt=2e-3):
    """Fine steps with the exact exponential update at the current rate; first truncation / untruncation times."""
    N = len(x); b = b0; s = 0.0
    first_trunc = np.where(x <= b0, 0.0, np.inf)
    first_untrunc = np.full(N, np.inf)
    while s < T:
        n = np.sum(x <= b)
        b_new = y - (y - b) * np.exp(-n / N * dt)
        s += dt
        first_trunc = np.where(np.isinf(first_trunc) & (x <= b_new), s, first_trunc)
        first_untrunc = np.where(np.isinf(first_untrunc) & (x <= b) & (x > b_new), s, first_untrunc)
        b = b_new
    return first_trunc, first_untrunc


# Three fixed sizes N (each is a compile of the jitted solvers): values vary, the shapes do not; N = 1 is the edge.
# nbs/18_orbits checks the same solvers against solve_ivp with events on eleven fixed cases (N = 10, ties too).
data = st.sampled_from([1, 3, 8]).flatmap(
    lambda n: st.lists(st.floats(-3, 3, allow_nan=False), min_size=n, max_size=n))


@given(data, st.floats(-4, 4), st.floats(-3, 3))
def test_truncation_times_vs_brute_force(xs, y, b0):
    x = np.array(xs)
    assume(np.min(np.abs(x - y)) > 0.05 and np.min(np.abs(x - b0)) > 0.01 and abs(y - b0) > 0.01)
    if len(x) > 1:
        xx = np.sort(x); assume(np.min(np.diff(xx)) > 0.02)
    T = 6.0
    tt = np.asarray(truncation_times(x, y, b0))
    ft, fu = brute_force(x, y, b0, T)
    for i in range(len(x)):
        if tt[i] < T - 0.2:
            assert abs(ft[i] - tt[i]) < 0.02 * (1 + tt[i]), (i, ft[i], tt[i])
        elif tt[i] > T + 0.2:
            assert np.isinf(ft[i])
    ev = bias_events(x, y, b0)
    t_ev = np.asarray(ev.times); p_ev = np.asarray(ev.point); k_ev = np.asarray(ev.kind)
    for i in range(len(x)):           # falling: untruncation times (and the halting point, which stays truncated)
        m = (p_ev == i) & (k_ev == -1)
        tex = t_ev[m][0] if m.any() else np.inf
        if np.isinf(tex) and float(ev.stop_time) < T - 0.2 and x[i] == x.min():
            continue                  # brute force drops an O(dt) distance below the halting point
        if tex < T - 0.2:
            assert abs(fu[i] - tex) < 0.02 * (1 + tex)
        elif tex > T + 0.2:
            assert np.isinf(fu[i])


@given(data, st.floats(-4, 4), st.floats(-3, 3))
def test_exact_bias_properties(xs, y, b0):
    x = np.array(xs)
    s = np.linspace(0, 20, 101)
    b = np.asarray(exact_bias(x, y, b0, s))
    assert b[0] == pytest.approx(b0, abs=1e-15)
    lo, hi = min(y, b0), max(y, b0)
    assert np.all(b >= lo - 1e-12) and np.all(b <= hi + 1e-12)
    assert np.all(np.diff(b) * np.sign(y - b0) >= -1e-12)          # monotone towards y
    tt = np.asarray(truncation_times(x, y, b0))
    fin = np.isfinite(tt) & (tt > 0)
    if fin.any():                     # b(t_i) = x_i; evaluate at a fixed-shape array (one compilation per N)
        bt = np.asarray(exact_bias(x, y, b0, np.where(fin, tt, 0.0)))
        assert np.allclose(bt[fin], x[fin], atol=1e-10)
    if y < b0 and np.min(x) > y and np.min(x) <= b0:                 # halts at the lowest point
        assert np.asarray(exact_bias(x, y, b0, np.full(101, 1e6)))[0] == pytest.approx(np.min(x), abs=1e-12)
    if np.all(x > b0):                                              # nothing truncated: rest, Eq. (4.44)
        assert np.all(b == b0)


@jax.jit
def _equilibria(R, X, yt):
    """Proposition 4.1 at the two sector biases of R: (kind, dR, dbeta) for the positive and the negative one."""
    out = []
    for sign in (1, -1):
        b = sector_bias(R, X, sign)
        out.append((equilibrium_kind(R, b, X), *separated_velocity(R, b, X, yt), b))
    return out


@given(st.integers(0, 10_000))
def test_equilibria_prop_4_1(seed):
    r = np.random.default_rng(seed)
    R = np.linalg.qr(r.normal(size=(3, 3)))[0]
    X, yt = r.normal(size=(8, 3)), r.normal(size=3)
    (kp, dRp, dbp, _), (kn, dRn, dbn, bn) = _equilibria(R, X, yt)
    assert int(kp) == 1 and np.max(np.abs(dRp)) < 1e-13 and np.max(np.abs(dbp)) < 1e-13
    assert int(kn) == -1 and np.max(np.abs(dRn)) < 1e-13 and np.allclose(dbn, -(bn + yt), atol=1e-13)


# Bad input (nbs/18_orbits checks none of these)
@pytest.mark.parametrize("args,name", [
    ((np.ones((2, 2)), 0.0, 0.0), "x"),
    ((np.array([]), 0.0, 0.0), "x"),
    ((np.array([0.0, np.nan]), 0.0, 0.0), "x"),
    ((np.zeros(3), np.inf, 0.0), "y"),
    ((np.zeros(3), 0.0, [0.0, 1.0]), "b0"),
])
def test_bad_input_1d(args, name):
    with pytest.raises(ValueError, match=name):
        truncation_times(*args)


def test_bad_input_fixed_R():
    with pytest.raises(ValueError, match="s"):
        exact_bias(np.zeros(3), 1.0, 0.0, np.array([-1.0]))
    with pytest.raises(ValueError, match="R"):
        exact_fixed_R_bias(2 * np.eye(2), np.zeros(2), np.ones((3, 2)), np.zeros(2), np.array([0.0]))
    with pytest.raises(ValueError, match="y_tilde"):
        exact_fixed_R_bias(np.eye(2), np.zeros(2), np.ones((3, 2)), np.zeros(3), np.array([0.0]))
    with pytest.raises(ValueError, match="X"):
        exact_fixed_R_bias(np.eye(2), np.zeros(2), np.ones((3, 3)), np.zeros(2), np.array([0.0]))
