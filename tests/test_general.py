"""Property tests of the general gradient flow, Theorem 5.1 (truncflow.general), in float64.

Hypothesis draws random configurations; the chapter (nbs/19_general.ipynb) checks fixed examples.
Each test keeps one shape (different from the chapter's, L != Q and J != L), so that it compiles
once."""
import functools

import numpy as np
import jax
import jax.numpy as jnp
from hypothesis import given, settings, strategies as st

from truncflow.network import random_orthogonal, clustered_data
from truncflow.separated import separated_velocity
from truncflow.general import (general_velocity, general_velocity_autodiff, layer_inputs,
                               composed_segment, lemma71_decomposition, P_plus, forward_products,
                               truncation_domains, minus_support, separated_configuration,
                               is_cluster_separated)
from truncflow.separated import separated_velocity_autodiff as single_cluster_velocity_autodiff

scv = jax.jit(single_cluster_velocity_autodiff)
scf = jax.jit(separated_velocity)
seeds = st.integers(0, 2**31 - 1)
gv, gv_ad = general_velocity, general_velocity_autodiff   # jit-compiled in the library
few = settings(max_examples=6, deadline=None)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))   # one compile per shape, not eager ops
def _draw(seed, L, Q, J, N, bias):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    Rs = random_orthogonal(k[0], Q, batch=(L,))
    betas, X = bias * jax.random.normal(k[1], (L, Q)), jax.random.normal(k[2], (N, Q))
    return Rs, betas, X, jax.random.normal(k[3], (J, Q))


def _config(seed, L, Q, J, N, bias=0.6):
    Rs, betas, X, Y_tilde = _draw(seed, L, Q, J, N, bias)
    labels = jnp.asarray(np.random.default_rng(seed).permutation(np.arange(N) % J), dtype=jnp.int32)
    return Rs, betas, X, labels, Y_tilde


@few
@given(seeds)
def test_velocity_equals_autodiff_and_omega_is_skew(seed):
    Rs, betas, X, labels, Y_tilde = _config(seed, 4, 3, 2, 18)
    dR, db = gv(Rs, betas, X, labels, Y_tilde)
    dR_ad, db_ad = gv_ad(Rs, betas, X, labels, Y_tilde)
    scale = 1 + float(jnp.max(jnp.abs(dR_ad))) + float(jnp.max(jnp.abs(db_ad)))
    np.testing.assert_allclose(dR, dR_ad, atol=1e-9 * scale)
    np.testing.assert_allclose(db, db_ad, atol=1e-9 * scale)
    Om = dR @ jnp.swapaxes(Rs, -1, -2)
    np.testing.assert_allclose(Om, -jnp.swapaxes(Om, -1, -2), atol=1e-12)


@jax.jit
def _lemma_7_1_errors(Rs, betas, X):
    """max |tau^(l1->l2)(z_l1) - (7.2)| over all segments, and max |B - P+_{l+1,L}|."""
    L, err = Rs.shape[0], 0.0
    for l1 in range(1, L + 1):
        z = composed_segment(Rs, betas, X, 1, l1 - 1)
        for l2 in range(l1, L + 1):
            lhs = composed_segment(Rs, betas, z, l1, l2)
            rhs = lemma71_decomposition(Rs, betas, X, l1, l2)
            err = jnp.maximum(err, jnp.max(jnp.abs(lhs - rhs)))
    T, B, _, _ = forward_products(Rs, betas, X)
    errB = jnp.max(jnp.abs(T - layer_inputs(Rs, betas, X)[-1]))
    for l in range(1, L + 1):
        errB = jnp.maximum(errB, jnp.max(jnp.abs(B[l - 1] - P_plus(Rs, betas, X, l + 1, L))))
    return err, errB


@few
@given(seeds)
def test_lemma_7_1_decomposition_and_forward_products(seed):
    Rs, betas, X, _, _ = _config(seed, 2, 4, 1, 18)
    err, errB = _lemma_7_1_errors(Rs, betas, X)
    assert err < 1e-12 and errB < 1e-12


@settings(max_examples=6, deadline=None)
@given(seeds, st.floats(-0.8, 0.8))
def test_reduction_to_cluster_separated_flow(seed, theta):
    radius, Q = 0.8, 2
    centers = 3.0 * jnp.eye(Q)
    X, labels = clustered_data(jax.random.PRNGKey(seed), centers, 12, radius=radius)
    Rs, betas = separated_configuration(centers, radius, theta=theta, X=X)
    assert is_cluster_separated(Rs, betas, X, labels)
    Y_tilde = jax.random.normal(jax.random.PRNGKey(seed + 1), (Q, Q))
    dR, db = gv(Rs, betas, X, labels, Y_tilde)
    for l in range(Q):
        m = np.asarray(labels) == l
        args = (Rs[l], betas[l], X[m], Y_tilde[l])
        for dR1, db1 in (scv(*args), scf(*args)):   # autodiff, the Section 3 closed form
            np.testing.assert_allclose(dR[l], dR1, atol=1e-10)
            np.testing.assert_allclose(db[l], db1, atol=1e-10)


@few
@given(seeds)
def test_is_cluster_separated_detects_violations(seed):
    radius, Q = 0.5, 3
    centers = 3.0 * jnp.eye(Q)
    X, labels = clustered_data(jax.random.PRNGKey(seed), centers, 8, radius=radius)
    Rs, betas = separated_configuration(centers, radius, X=X)
    assert is_cluster_separated(Rs, betas, X, labels)
    # move layer 0's cut onto cluster 1: layer 0 now truncates a foreign cluster
    n = Rs[0, 0]
    shift = (float(n @ centers[1]) - float(n @ centers[0])) * n
    assert not is_cluster_separated(Rs, betas.at[0].add(-shift), X, labels)
    Rs_r, betas_r, X_r, labels_r, _ = _config(seed, Q, Q, Q, 4 * Q)
    assert not is_cluster_separated(Rs_r, betas_r, X_r, labels_r)


@few
@given(seeds)
def test_integration_domain_is_contained_in_D_minus(seed):
    Rs, betas, X, _, _ = _config(seed, 3, 2, 1, 18)
    supp = np.asarray(minus_support(Rs, betas, X))
    D = np.asarray(truncation_domains(Rs, betas, X))
    assert not np.any(supp & ~D)
