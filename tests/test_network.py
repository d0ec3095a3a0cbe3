"""Property tests of the Section 2 model (truncflow.network) over random inputs, in float64."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow import network as tf   # the model of Section 2 (validation helpers re-used from truncflow.validate)

seeds = st.integers(0, 2**31 - 1)
# A few distinct shapes (every new shape recompiles): the values vary freely, the sizes cover Q = 1 and Q > 1.
dims = st.sampled_from([1, 2, 4])
depths = st.sampled_from([1, 3])


def _setup(seed, Q, L=1, n=64):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    Ws, bs = tf.random_network(k1, Q, L)
    X = 2 * jax.random.normal(k3, (n, Q))
    return Ws, bs, X


@given(seeds, dims)
def test_truncation_map_is_idempotent_and_fixes_the_positive_sector(seed, Q):
    Ws, bs, X = _setup(seed, Q)
    W, beta = Ws[0], jnp.linalg.solve(Ws[0], bs[0])
    tau = tf.truncation_map(W, beta, X)
    np.testing.assert_allclose(tf.truncation_map(W, beta, tau), tau, atol=1e-11)
    state = np.asarray(tf.truncation_state(W, beta, X))
    fixed = np.all(np.abs(np.asarray(tau - X)) < 1e-11, axis=-1)
    collapsed = np.all(np.abs(np.asarray(tau + beta)) < 1e-11, axis=-1)
    assert np.array_equal(fixed, state == tf.UNTRUNCATED)
    assert np.array_equal(collapsed, state == tf.FULL)


@given(seeds, dims, depths)
def test_cumulative_parameters_round_trip_and_telescoping(seed, Q, L):
    Ws, bs, _ = _setup(seed, Q, L)
    Wc, bc, betas = tf.cumulative_parameters(Ws, bs)
    Ws2, bs2 = tf.layer_parameters(Wc, bc)
    np.testing.assert_allclose(Ws2, Ws, atol=1e-10)
    np.testing.assert_allclose(bs2, bs, atol=1e-10)
    tele = np.cumsum([np.linalg.solve(Wc[l], bs[l]) for l in range(L)], axis=0)
    np.testing.assert_allclose(betas, tele, atol=1e-10)


@given(seeds, dims, depths)
def test_hidden_layers_are_affine_images_of_composed_truncations(seed, Q, L):
    """The corrected Eq. (2.17): x^(l) = W^(l) (T^(l)(x) + beta^(l))."""
    Ws, bs, X = _setup(seed, Q, L)
    Wc, _, betas = tf.cumulative_parameters(Ws, bs)
    np.testing.assert_allclose(tf.hidden_layers_from_truncations(Wc, betas, X),
                               tf.hidden_layers(Ws, bs, X), atol=1e-10)


@given(seeds, dims)
def test_diagonal_factor_of_aligned_weight_drops_out(seed, Q):
    """Eq. (6.2): tau_{D R, beta} = tau_{R, beta} for positive diagonal D."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    R = tf.random_orthogonal(k1, Q)
    d = jax.random.uniform(k2, (Q,), minval=0.1, maxval=10.0)
    beta = jax.random.normal(k3, (Q,))
    X = jax.random.normal(k4, (50, Q))
    np.testing.assert_allclose(tf.truncation_map(tf.aligned_weight(d, R), beta, X),
                               tf.orthogonal_truncation_map(R, beta, X), atol=1e-11)


@given(seeds, dims)
def test_polar_decomposition(seed, Q):
    Ws, _, _ = _setup(seed, Q)
    P, R = tf.polar_decomposition(Ws[0])
    np.testing.assert_allclose(P @ R, Ws[0], atol=1e-11)
    np.testing.assert_allclose(R.T @ R, np.eye(Q), atol=1e-11)
    np.testing.assert_allclose(P, P.T, atol=1e-11)
    assert np.all(np.linalg.eigvalsh(np.asarray(P)) > 0)


def test_api_is_jittable_vmappable_differentiable():
    Ws, bs, X = _setup(0, 3, 2)
    Wc, _, betas = tf.cumulative_parameters(Ws, bs)
    f = jax.jit(tf.composed_truncation)
    np.testing.assert_allclose(f(Wc, betas, X), tf.composed_truncation(Wc, betas, X), atol=1e-12)
    per_point = jax.vmap(lambda x: tf.truncation_map(Wc[0], betas[0], x))(X)
    np.testing.assert_allclose(per_point, tf.truncation_map(Wc[0], betas[0], X), atol=1e-12)
    labels = jnp.arange(X.shape[0]) % 3
    Yt = jnp.eye(3)
    g = jax.grad(tf.input_space_cost, argnums=(0, 1))(Wc, betas, X, labels, Yt)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in g)
    gb = jax.grad(lambda b: tf.input_space_cost(Wc, betas.at[0].set(b), X, labels, Yt))(betas[0])
    eps = 1e-6
    fd = np.array([(tf.input_space_cost(Wc, betas.at[0, i].add(eps), X, labels, Yt)
                    - tf.input_space_cost(Wc, betas.at[0, i].add(-eps), X, labels, Yt)) / (2 * eps) for i in range(3)])
    np.testing.assert_allclose(gb, fd, rtol=1e-5, atol=1e-8)


def test_cluster_weights_are_one_over_cluster_size():
    labels = jnp.array([0, 0, 1, 2, 2, 2])
    np.testing.assert_allclose(tf.cluster_weights(labels, 3), [1 / 2, 1 / 2, 1, 1 / 3, 1 / 3, 1 / 3])


# ---------------------------------------------------------------- bad input: clear errors naming the argument
@pytest.mark.parametrize("call, message", [
    (lambda: tf.random_network(jax.random.PRNGKey(0), 0, 2), "Q: must be >= 1"),
    (lambda: tf.random_network(jax.random.PRNGKey(0), 2, 2.5), "L: expected an integer"),
    (lambda: tf.random_network(jax.random.PRNGKey(0), 2, 2, smin=2.0, smax=1.0), "smax: must be >= smin"),
    (lambda: tf.check_network(np.zeros((1, 2, 2)), np.zeros((1, 2))), "Ws[0]: matrix is singular"),
    (lambda: tf.check_network(np.ones((1, 2, 3)), np.zeros((1, 2))), "Ws: expected square"),
    (lambda: tf.check_network(np.eye(2)[None], np.array([[np.nan, 0.0]])), "bs: contains 1 non-finite"),
    (lambda: tf.check_network(np.eye(2)[None], np.zeros((2, 2))), "bs: expected shape"),
    (lambda: tf.clustered_data(jax.random.PRNGKey(0), [[0.0, 0.0]], [0]), "sizes: must be >= 1"),
    (lambda: tf.clustered_data(jax.random.PRNGKey(0), [0.0, 0.0], 3), "centers: expected a 2-dimensional"),
    (lambda: tf.is_aligned([[1.0, 1.0], [1.0, 1.0]]), "W: matrix is singular"),
    (lambda: tf.check_orthogonal("R", np.array([[2.0, 0.0], [0.0, 1.0]])), "R: matrix is not orthogonal"),
    (lambda: tf.check_labels("labels", np.array([0, 2]), 2), "labels: labels must lie in [0, 2)"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value)
