"""Tests for truncflow.orbits: the exact bias flow of Section 4.3, equilibria (Proposition 4.1), Proposition 4.2."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, assume, strategies as st

from truncflow.orbits import (truncation_times, exact_bias, bias_events, exact_fixed_R_bias, fixed_R_events,
                              sector_bias, equilibrium_kind, prop42_constants, prop42_hypotheses, prop42_example)
from truncflow.network import random_orthogonal
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


data = st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=10)


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


def test_staircase_formula_4_49():
    x = np.array([-1.0, -0.5, 0.0, 0.4, 0.9]); y, b0, N = 1.5, -1.0, 5
    tt = np.asarray(truncation_times(x, y, b0))
    s = [0.0]
    for n in range(1, N):
        s.append(s[-1] + N / n * np.log((y - x[n - 1]) / (y - x[n])))
    assert np.allclose(tt, s, atol=1e-14)


@given(st.integers(0, 10_000))
def test_equilibria_prop_4_1(seed):
    r = np.random.default_rng(seed)
    R = random_orthogonal(jax.random.PRNGKey(seed), 3)
    X = jnp.asarray(r.normal(size=(8, 3))); yt = jnp.asarray(r.normal(size=3))
    bp = sector_bias(R, X, 1)
    assert int(equilibrium_kind(R, bp, X)) == 1
    dR, db = separated_velocity(R, bp, X, yt)
    assert np.max(np.abs(dR)) < 1e-13 and np.max(np.abs(db)) < 1e-13
    bn = sector_bias(R, X, -1)
    assert int(equilibrium_kind(R, bn, X)) == -1
    dR, db = separated_velocity(R, bn, X, yt)
    assert np.max(np.abs(dR)) < 1e-13 and np.allclose(db, -(bn + yt), atol=1e-13)


def test_prop42_example_meets_hypotheses():
    R0, beta0, X, yt = prop42_example()
    h = prop42_hypotheses(R0, beta0, X, yt, 0.08, 0.09, 0.05, n_angles=11, n_radii=6, n_dirs=24)
    assert h["h414"] and h["h415"] and h["h416"]
    k = prop42_constants(0.08, 0.09, 0.05, 1.0)
    assert k.eta2_proof == pytest.approx(k.eta1p / (1 - 0.08 - k.eta1p) * np.log(20))


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
