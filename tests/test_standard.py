"""Property tests of Sections 8 and 9 (truncflow.standard): the standard cost in two solvable cases, float64."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, assume, strategies as st
from scipy.integrate import solve_ivp

from truncflow.standard import (collapsed_cost, collapsed_velocity, collapsed_error, error_velocity,
                                conserved_quantity, spectral_gap, collapsed_flow, integrate_collapsed,
                                collapsed_propagators, propagated_error, cost_bound, clustered_cost,
                                clustered_velocity, clustered_solution, clustered_solution_core,
                                clustered_limit, right_inverse, range_projector)

seeds = st.integers(0, 2**31 - 1)
# Few fixed shapes (each is a compile of the jitted flows): values vary, shapes do not. Q = 1 is the edge;
# nbs/21_standard checks the same identities on fixed draws (mostly Q = 3).
dims = st.sampled_from([1, 3])
# (Q, N) for Section 9: N = Q (X square) and N > Q
clustered_shapes = st.sampled_from([(1, 1), (3, 3), (3, 10)])

_grad_clustered = jax.jit(jax.grad(clustered_cost))


# Each example's JAX work runs in one compiled program per shape: eager, every jax.jvp / jax.vmap would trace again
# and every op would dispatch on its own.
@jax.jit
def _state_terms(B, W, Y):
    """At one state of Section 8: -grad C, the velocity, dE/ds and dI/ds along it (jvp), and Eq. (8.8)."""
    v = collapsed_velocity(B, W, Y)
    _, dE = jax.jvp(lambda b, w: collapsed_error(b, w, Y), (B, W), v)
    _, dI = jax.jvp(conserved_quantity, (B, W), v)
    minus_grad = jax.tree.map(lambda g: -g, jax.grad(collapsed_cost, argnums=(0, 1))(B, W, Y))
    return minus_grad, v, dE, error_velocity(B, W, collapsed_error(B, W, Y)), dI


@jax.jit
def _along(Bs, Ws, Y):
    """I(s) and C(s) along a saved trajectory Bs, Ws (S, Q, Q)."""
    return jax.vmap(conserved_quantity)(Bs, Ws), jax.vmap(collapsed_cost, (0, 0, None))(Bs, Ws, Y)


def _collapsed(seed, Q, scale=1.0):
    r = np.random.default_rng(seed)
    return tuple(scale * r.normal(size=(Q, Q)) for _ in range(3))


@given(seeds, dims)
def test_collapsed_velocity_is_minus_gradient(seed, Q):
    """Eqs. (8.6)-(8.7) against jax.grad of Eq. (8.2)."""
    (gB, gW), (dB, dW), *_ = _state_terms(*_collapsed(seed, Q))
    np.testing.assert_allclose(dB, gB, atol=1e-11)
    np.testing.assert_allclose(dW, gW, atol=1e-11)


@given(seeds, dims)
def test_error_dynamics_and_conservation_law(seed, Q):
    """Eq. (8.8) and dI/ds = 0 (Eqs. (8.21), (8.23)) as directional derivatives along the flow."""
    _, _, dE, dE_88, dI = _state_terms(*_collapsed(seed, Q))
    np.testing.assert_allclose(dE, dE_88, atol=1e-11)
    np.testing.assert_allclose(dI, 0, atol=1e-11)


@given(seeds, dims)
def test_conserved_quantity_along_rk4_and_midpoint(seed, Q):
    B0, W0, Y = _collapsed(seed, Q, 0.7)
    for method, tol in (("rk4", 1e-8), ("midpoint", 1e-11)):
        s, Bs, Ws = collapsed_flow(B0, W0, Y, 2e-3, 10, 50, method)
        I, C = map(np.asarray, _along(Bs, Ws, Y))          # Bs[0], Ws[0] = B0, W0: I[0] = I(0)
        drift = np.max(np.abs(I - I[0]))
        assert drift < tol * (1 + np.max(np.abs(I[0]))), (method, drift)
        assert np.all(np.diff(C) <= 1e-12)


@given(seeds, dims)
def test_rk4_matches_solve_ivp(seed, Q):
    B0, W0, Y = _collapsed(seed, Q, 0.7)
    s, Bs, Ws = integrate_collapsed(B0, W0, Y, 1.0, n_steps=1000, n_save=10)

    def f(t, y):
        B, W = y[:Q * Q].reshape(Q, Q), y[Q * Q:].reshape(Q, Q)
        E = W @ B + Y
        return np.concatenate([(-W.T @ E).ravel(), (-E @ B.T).ravel()])
    sol = solve_ivp(f, (0, 1.0), np.concatenate([B0.ravel(), W0.ravel()]), t_eval=np.asarray(s),
                    method="DOP853", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Bs.reshape(len(s), -1), sol.y[:Q * Q].T, atol=1e-8)
    np.testing.assert_allclose(Ws.reshape(len(s), -1), sol.y[Q * Q:].T, atol=1e-8)


@given(seeds)
def test_corrected_propagators_reproduce_the_error(seed):
    """E(s) = U_W(s) E(0) U_B(s), Eq. (8.11), with dU_B = -U_B B^T B, dU_W = -W W^T U_W."""
    Q = 3
    propagated, E = _propagated_and_direct_error(*_collapsed(seed, Q, 0.7))
    np.testing.assert_allclose(propagated, E, atol=1e-8)


@jax.jit
def _propagated_and_direct_error(B0, W0, Y):
    s, Bs, Ws, UB, UW = collapsed_propagators(B0, W0, Y, 2e-3, 10, 50)
    return propagated_error(UB, UW, collapsed_error(B0, W0, Y)), jax.vmap(collapsed_error, (0, 0, None))(Bs, Ws, Y)


@given(seeds, dims, st.sampled_from([1, -1]))
def test_cost_bound_for_definite_conserved_quantity(seed, Q, sign):
    """Theorem 8.4, Eq. (8.27): C(s) <= exp(-2 s lambda_0) C(0) when I(0) is definite."""
    r = np.random.default_rng(seed)
    big, small, Y = 1.5 * r.normal(size=(Q, Q)), 0.2 * r.normal(size=(Q, Q)), r.normal(size=(Q, Q))
    B0, W0 = (big, small) if sign > 0 else (small, big)
    s, Bs, Ws = integrate_collapsed(B0, W0, Y, 3.0, n_steps=3000, n_save=30)
    I, C = map(np.asarray, _along(Bs, Ws, Y))
    lam = np.linalg.eigvalsh(I[0])
    assume((lam[0] > 0.05) if sign > 0 else (lam[-1] < -0.05))
    gap, bound = _gap_and_bound(B0, W0, Y, s)
    assert float(gap) == pytest.approx(lam[0] if sign > 0 else -lam[-1])
    assert np.all(C <= np.asarray(bound) * (1 + 1e-8) + 1e-20)


@jax.jit
def _gap_and_bound(B0, W0, Y, s):
    return spectral_gap(B0, W0), cost_bound(B0, W0, Y, s)


def _clustered(seed, Q, N):
    r = np.random.default_rng(seed)
    X, Y, W0 = r.normal(size=(N, Q)), r.normal(size=(N, Q)), r.normal(size=(Q, Q))
    return X, Y, W0, r.uniform(0.5, 2.0, size=N)


@given(seeds, clustered_shapes)
def test_clustered_velocity_is_minus_gradient(seed, QN):
    X, Y, W0, w = _clustered(seed, *QN)
    for weights in (None, w):
        g = _grad_clustered(W0, X, Y, weights)
        np.testing.assert_allclose(clustered_velocity(W0, X, Y, weights), -g, atol=1e-11)


@given(seeds, clustered_shapes, st.booleans())
def test_clustered_solution_matches_solve_ivp_and_lstsq(seed, QN, weighted):
    """Eq. (9.10) against integration of Eq. (9.7); Eq. (9.12) against numpy lstsq."""
    Q, N = QN
    X, Y, W0, w = _clustered(seed, Q, N)
    assume(np.linalg.cond(X) < 1e3)
    w = w if weighted else np.full(N, 1.0 / N)
    s_eval = np.array([0.0, 0.3, 1.0, 3.0])
    far = 1e3 / np.linalg.eigvalsh(X.T @ (w[:, None] * X))[0]      # the slowest mode has decayed by e^-1000
    Wt = np.asarray(clustered_solution(W0, X, Y, np.r_[s_eval, far], weights=w if weighted else None))
    f = lambda t, y: np.ravel(-((X @ y.reshape(Q, Q).T - Y) * w[:, None]).T @ X)
    sol = solve_ivp(f, (0, 3.0), W0.ravel(), t_eval=s_eval, method="DOP853", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(Wt[:4].reshape(4, -1), sol.y.T, atol=1e-8)
    sw = np.sqrt(w)[:, None]
    lstsq = np.linalg.lstsq(sw * X, sw * Y, rcond=None)[0].T
    np.testing.assert_allclose(clustered_limit(X, Y, weights=w), lstsq, atol=1e-8)
    np.testing.assert_allclose(Wt[4], lstsq, atol=1e-8)


@given(seeds, clustered_shapes)
def test_right_inverse_and_range_projector(seed, QN):
    """Eq. (9.11): P^(0) is a right inverse of X^(0) = X.T; P^(0) X^(0) is the projector onto range(X) in R^N."""
    Q, N = QN
    X, Y, _, _ = _clustered(seed, Q, N)
    assume(np.linalg.cond(X) < 1e3)
    P0, Pi = np.asarray(right_inverse(X)), np.asarray(range_projector(X))
    np.testing.assert_allclose(X.T @ P0, np.eye(Q), atol=1e-10)
    np.testing.assert_allclose(Pi @ Pi, Pi, atol=1e-10)
    np.testing.assert_allclose(Pi, Pi.T, atol=1e-10)
    np.testing.assert_allclose(Pi @ X, X, atol=1e-10)
    # the limit (9.12) is Y_ext P^(0) in the paper's column notation
    np.testing.assert_allclose(Y.T @ P0, clustered_limit(X, Y), atol=1e-10)


# Bad input that nbs/21_standard does not already refuse (it checks the shapes of Y and W0, a non-finite s and
# negative weights for clustered_solution; the shape of W0 and n_steps for integrate_collapsed)
@pytest.mark.parametrize("args, message", [
    (lambda X, Y, W0: (W0, X[:, 0], Y, 1.0), "X: expected a 2-dimensional array"),
    (lambda X, Y, W0: (W0, np.where(X > 1, np.inf, X), Y, 1.0), "X: contains"),
    (lambda X, Y, W0: (W0, X, np.full_like(Y, np.nan), 1.0), "Y: contains"),
])
def test_clustered_solution_bad_input(args, message):
    r = np.random.default_rng(2)
    X, Y, W0 = 2 + r.normal(size=(10, 3)), r.normal(size=(10, 3)), r.normal(size=(3, 3))
    with pytest.raises(ValueError, match=message):
        clustered_solution(*args(X, Y, W0))


def test_integrate_collapsed_bad_input():
    B = np.eye(3)
    with pytest.raises(ValueError, match="B0: expected square"):
        integrate_collapsed(np.ones((3, 2)), B, B, 1.0)
    with pytest.raises(ValueError, match="Y: contains"):
        integrate_collapsed(B, B, np.full((3, 3), np.inf), 1.0)
    with pytest.raises(ValueError, match="s_max: must be > 0"):
        integrate_collapsed(B, B, B, -1.0)
    with pytest.raises(ValueError, match="method: expected"):
        integrate_collapsed(B, B, B, 1.0, method="euler")


def test_core_functions_jit_and_float32():
    r = np.random.default_rng(3)
    X, Y, W0 = r.normal(size=(8, 3)), r.normal(size=(8, 3)), r.normal(size=(3, 3))
    w = jnp.full(8, 1 / 8)
    f = jax.jit(clustered_solution_core)
    np.testing.assert_allclose(f(W0, X, Y, w, 1.5, 0.0), clustered_solution(W0, X, Y, 1.5), atol=1e-12)
    out32 = clustered_solution_core(*(jnp.asarray(a, jnp.float32) for a in (W0, X, Y, w)), 1.5, 0.0)
    assert out32.dtype == jnp.float32
    B = jnp.asarray(r.normal(size=(3, 3)), jnp.float32)
    s, Bs, Ws = collapsed_flow(B, B, B, jnp.float32(1e-2), 5, 2)
    assert Bs.dtype == jnp.float32 and Bs.shape == (6, 3, 3)
