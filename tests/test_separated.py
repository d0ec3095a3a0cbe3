"""Property tests of the one-cluster gradient flow (truncflow.separated), float64, with mixed-sector points."""
import functools

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.network import random_orthogonal
from truncflow.moments import sector_moments
from truncflow.separated import (separated_velocity, separated_velocity_autodiff, separated_cost, omega,
                                 omega_printed, bias_velocity, cost_decrease_terms, check_separated_inputs,
                                 flow_velocity)

seeds = st.integers(0, 2**31 - 1)
# Three fixed shapes (Q, N): every new shape is a new XLA compile of _everything, so the values vary and the shapes
# do not. They cover the edges Q = 1 and N = 1 and a case beside nbs/13_separated's (Q = 4, N = 64, three seeds).
shapes = st.sampled_from([(1, 1), (2, 24), (5, 24)])
shapes_q2 = st.sampled_from([(2, 24), (5, 24)])   # Q >= 2 (a mixed sector exists), the same compiles

@jax.jit
def _everything(R, beta, X, y):
    """All quantities the property tests compare, compiled once per shape (keeps the suite fast)."""
    dR, db = separated_velocity(R, beta, X, y)
    cost = lambda R_, b_: separated_cost(R_, b_, X, y)
    return dict(vel=(dR, db), ref=separated_velocity_autodiff(R, beta, X, y), omega=omega(R, beta, X, y),
                omega_printed=omega_printed(R, beta, X, y), bias=bias_velocity(R, beta, X, y),
                terms=cost_decrease_terms(R, beta, X, y),
                dC=jax.jvp(cost, (R, beta), (dR, db))[1],
                dC_R=jax.jvp(lambda R_: cost(R_, beta), (R,), (dR,))[1])


_KINDS = {"mixed": 0, "positive": 1, "negative": 2}


def _case(seed, Q, N, kind="mixed"):
    """R, beta, y~ random; the pushed-forward points z = R(x + beta) chosen directly, so the sectors are controlled.
    kind "mixed": at least one point with a positive and a non-positive coordinate (if Q > 1); "positive" /
    "negative": every point inside R^Q_+ / R^Q_-."""
    return _case_compiled(seed, Q, N, _KINDS[kind])


@functools.partial(jax.jit, static_argnums=(1, 2))   # one compile per shape, not dozens of eager ops per example
def _case_compiled(seed, Q, N, kind):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    R = random_orthogonal(k1, Q)
    beta = jax.random.normal(k2, (Q,))
    y = jax.random.normal(k4, (Q,))
    Z = jax.random.normal(k3, (N, Q))
    mixed = Z.at[0].set(jnp.where(jnp.arange(Q) % 2 == 0, 1.0, -1.0) * (jnp.abs(Z[0]) + 0.1))
    Z = jnp.select([kind == 0, kind == 1], [mixed, jnp.abs(Z) + 0.05], -jnp.abs(Z) - 0.05)
    X = Z @ R - beta
    return R, beta, X, y


@given(seeds, shapes)
def test_closed_form_equals_autodiff(seed, QN):
    Q, N = QN
    R, beta, X, y = _case(seed, Q, N)
    e = _everything(R, beta, X, y)
    (dR, db), (dR_ref, db_ref) = e["vel"], e["ref"]
    np.testing.assert_allclose(dR, dR_ref, atol=1e-10)
    np.testing.assert_allclose(db, db_ref, atol=1e-10)
    np.testing.assert_allclose(dR @ R.T, e["omega"], atol=1e-10)
    np.testing.assert_allclose(db, e["bias"], atol=1e-10)


@given(seeds, shapes)
def test_omega_is_skew_and_sector_form_holds(seed, QN):
    Q, N = QN
    R, beta, X, y = _case(seed, Q, N)
    dR, _ = _everything(R, beta, X, y)["vel"]
    Om = dR @ R.T
    np.testing.assert_allclose(Om, -Om.T, atol=1e-12)
    # corrected (3.38): first moments with a factor 1/2, minus 1/2 the mixed-sector second moments
    s = sector_moments(R, beta, X, second=True)
    b = np.asarray(R @ (beta + y))
    d = s.patterns[:, :, None].astype(float) - s.patterns[:, None, :]
    first = np.einsum("kij,ki,j->ij", d, s.J1, b) + np.einsum("kij,i,kj->ij", d, b, s.J1)
    np.testing.assert_allclose(Om, 0.5 * first - 0.5 * np.einsum("kij,kij->ij", d, s.J2), atol=1e-10)


@given(seeds, shapes_q2)
def test_printed_omega_misses_the_second_moment_term(seed, QN):
    Q, N = QN
    R, beta, X, y = _case(seed, Q, N)
    Z = np.asarray((X + beta) @ R.T)
    zp, zm = np.maximum(Z, 0), np.maximum(-Z, 0)
    missing = 0.5 * (zp.T @ zm - zm.T @ zp) / N
    e = _everything(R, beta, X, y)
    np.testing.assert_allclose(e["omega"] - e["omega_printed"], missing, atol=1e-10)


@given(seeds, shapes)
def test_cost_decrease_identity(seed, QN):
    Q, N = QN
    R, beta, X, y = _case(seed, Q, N)
    e = _everything(R, beta, X, y)
    (_, db), (t_b, t_R), dC, dC_R = e["vel"], e["terms"], e["dC"], e["dC_R"]
    assert t_b <= 0 and t_R <= 0
    np.testing.assert_allclose(dC, t_b + t_R, atol=1e-10)
    np.testing.assert_allclose(dC_R, t_R, atol=1e-10)
    np.testing.assert_allclose(t_b, -np.sum(np.asarray(db) ** 2), atol=1e-12)


@given(seeds, shapes)
def test_equilibria_of_proposition_4_1(seed, QN):
    Q, N = QN
    R, beta, X, y = _case(seed, Q, N, "positive")
    dR, db = _everything(R, beta, X, y)["vel"]
    np.testing.assert_allclose(dR, 0, atol=1e-12)
    np.testing.assert_allclose(db, 0, atol=1e-12)
    R, beta, X, y = _case(seed, Q, N, "negative")
    dR, db = _everything(R, beta, X, y)["vel"]
    np.testing.assert_allclose(dR, 0, atol=1e-12)
    np.testing.assert_allclose(db, -(beta + y), atol=1e-12)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _members(seed, Q, M):
    return (random_orthogonal(jax.random.PRNGKey(seed % 1000 + 1), Q, batch=(M,)),
            jax.random.normal(jax.random.PRNGKey(seed % 1000 + 2), (M, Q)))


_autodiff_members = jax.jit(jax.vmap(separated_velocity_autodiff, in_axes=(0, 0, None, None)))


@given(seeds, st.sampled_from([(2, 1), (5, 5)]))    # (Q, M); N = 24 as above: the same compiles of _case
def test_ensemble_matches_single(seed, QM):
    Q, M = QM
    R, beta, X, y = _case(seed, Q, 24)
    Rs, betas = _members(seed, Q, M)
    dRs, dbs = flow_velocity(Rs, betas, X, y)
    dR_ref, db_ref = _autodiff_members(Rs, betas, X, y)
    for k in range(M):
        dR, db = dR_ref[k], db_ref[k]
        np.testing.assert_allclose(dRs[k], dR, atol=1e-10)
        np.testing.assert_allclose(dbs[k], db, atol=1e-10)


# Bad input that nbs/13_separated (the flow_velocity cell) does not already refuse: it checks a non-orthogonal R,
# the shapes of beta (single and stacked), the dimension of X, an empty X and non-finite X and y_tilde.
@pytest.mark.parametrize("mutate, name", [
    (lambda R, b, X, y: (R[:1], b, X, y), "R: expected square"),
    (lambda R, b, X, y: (R, b, X[0], y), "X: expected a 2-dimensional array"),
    (lambda R, b, X, y: (R, b.at[0].set(np.inf), X, y), "beta: contains 1 non-finite"),
    (lambda R, b, X, y: (R, b, X, y[:1]), "y_tilde: expected shape"),
    (lambda R, b, X, y: (R.at[0, 0].set(np.nan), b, X, y), "R: contains 1 non-finite"),
])
def test_bad_input(mutate, name):
    args = mutate(*_case(0, 2, 24))
    with pytest.raises(ValueError, match=None) as e:
        flow_velocity(*args)
    assert name in str(e.value)
    with pytest.raises(ValueError):
        check_separated_inputs(*args)


def test_bad_R_rank_and_ragged():
    _, b, X, y = _case(0, 2, 24)
    with pytest.raises(ValueError, match="R: expected shape"):
        flow_velocity(np.zeros(3), b, X, y)
    with pytest.raises(ValueError, match="R: could not be converted"):
        flow_velocity([[1.0, 0.0], [0.0]], b, X, y)
