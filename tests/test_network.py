"""Property tests of the Section 2 model (truncflow.network) over random inputs, in float64."""
import functools

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow import network as tf   # the model of Section 2 (validation helpers re-used from truncflow.validate)

seeds = st.integers(0, 2**31 - 1)
# Two fixed shapes (every new shape recompiles): the values vary freely; the shapes cover the edge Q = 1 with one
# layer (L = 1) and Q > 1 with several layers. The notebook (nbs/10_network) checks the same identities on five
# fixed networks; here they are swept over random ones.
shapes = st.sampled_from([(1, 1), (3, 2)])      # (Q, L)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _network(seed, Q, L):
    """Everything the tests compare, for a random network (Q, L), 64 points and a random aligned weight: one
    compiled program per shape. Run eagerly, an example dispatches dozens of small ops (about 0.5 s of CPU here);
    compiled, it costs a millisecond."""
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    Ws, bs = tf.random_network(k1, Q, L)
    X = 2 * jax.random.normal(k2, (64, Q))
    W, beta = Ws[0], jnp.linalg.solve(Ws[0], bs[0])                 # layer 1: b = W beta
    tau = tf.truncation_map(W, beta, X)
    Wc, bc, betas = tf.cumulative_parameters(Ws, bs)
    Ws2, bs2 = tf.layer_parameters(Wc, bc)
    R = tf.random_orthogonal(k3, Q)
    d = jax.random.uniform(k4, (Q,), minval=0.1, maxval=10.0)
    P, R_polar = tf.polar_decomposition(W)
    return dict(X=X, Ws=Ws, bs=bs, W=W, beta=beta, tau=tau, tau_tau=tf.truncation_map(W, beta, tau),
                state=tf.truncation_state(W, beta, X), Wc=Wc, betas=betas, Ws2=Ws2, bs2=bs2,
                from_truncations=tf.hidden_layers_from_truncations(Wc, betas, X), hidden=tf.hidden_layers(Ws, bs, X),
                aligned=tf.truncation_map(tf.aligned_weight(d, R), beta, X),
                rotation_only=tf.orthogonal_truncation_map(R, beta, X), P=P, R_polar=R_polar)


def _example(seed, QL):
    return {k: np.asarray(v) for k, v in _network(seed, *QL).items()}


@given(seeds, shapes)
def test_truncation_map_is_idempotent_and_fixes_the_positive_sector(seed, QL):
    e = _example(seed, QL)
    np.testing.assert_allclose(e["tau_tau"], e["tau"], atol=1e-11)
    fixed = np.all(np.abs(e["tau"] - e["X"]) < 1e-11, axis=-1)
    collapsed = np.all(np.abs(e["tau"] + e["beta"]) < 1e-11, axis=-1)
    assert np.array_equal(fixed, e["state"] == tf.UNTRUNCATED)
    assert np.array_equal(collapsed, e["state"] == tf.FULL)


@given(seeds, shapes)
def test_cumulative_parameters_round_trip_and_telescoping(seed, QL):
    e = _example(seed, QL)
    np.testing.assert_allclose(e["Ws2"], e["Ws"], atol=1e-10)
    np.testing.assert_allclose(e["bs2"], e["bs"], atol=1e-10)
    tele = np.cumsum([np.linalg.solve(Wc_l, b_l) for Wc_l, b_l in zip(e["Wc"], e["bs"])], axis=0)
    np.testing.assert_allclose(e["betas"], tele, atol=1e-10)


@given(seeds, shapes)
def test_hidden_layers_are_affine_images_of_composed_truncations(seed, QL):
    """The corrected Eq. (2.17): x^(l) = W^(l) (T^(l)(x) + beta^(l))."""
    e = _example(seed, QL)
    np.testing.assert_allclose(e["from_truncations"], e["hidden"], atol=1e-10)


@given(seeds, shapes)
def test_diagonal_factor_of_aligned_weight_drops_out(seed, QL):
    """Eq. (6.2): tau_{D R, beta} = tau_{R, beta} for positive diagonal D."""
    e = _example(seed, QL)
    np.testing.assert_allclose(e["aligned"], e["rotation_only"], atol=1e-11)


@given(seeds, shapes)
def test_polar_decomposition(seed, QL):
    e = _example(seed, QL)
    P, R, Q = e["P"], e["R_polar"], QL[0]
    np.testing.assert_allclose(P @ R, e["W"], atol=1e-11)
    np.testing.assert_allclose(R.T @ R, np.eye(Q), atol=1e-11)
    np.testing.assert_allclose(P, P.T, atol=1e-11)
    assert np.all(np.linalg.eigvalsh(P) > 0)


# ---------------------------------------------------------------- bad input: clear errors naming the argument
# (the cases nbs/10_network does not already check: it checks Q >= 1, a singular Ws[0], the shape of bs and the
# clustered_data errors on sizes, centers and radius;
# nbs/01_validation checks check_orthogonal and check_labels)
@pytest.mark.parametrize("call, message", [
    (lambda: tf.random_network(jax.random.PRNGKey(0), 2, 2.5), "L: expected an integer"),
    (lambda: tf.random_network(jax.random.PRNGKey(0), 2, 2, smin=2.0, smax=1.0), "smax: must be >= smin"),
    (lambda: tf.check_network(np.ones((1, 2, 3)), np.zeros((1, 2))), "Ws: expected square"),
    (lambda: tf.check_network(np.eye(2)[None], np.array([[np.nan, 0.0]])), "bs: contains 1 non-finite"),
    (lambda: tf.clustered_data(jax.random.PRNGKey(0), [[0.0, 0.0]], [0]), "sizes: must be >= 1"),
    (lambda: tf.clustered_data(jax.random.PRNGKey(0), [0.0, 0.0], 3), "centers: expected a 2-dimensional"),
    (lambda: tf.is_aligned([[1.0, 1.0], [1.0, 1.0]]), "W: matrix is singular"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value)
