"""Tests of truncflow.collapse (the neural-collapse measures of ref. [12], last layer) and truncflow.training
(truncation bookkeeping, the trainer).

float64 (tests/conftest.py). Shapes are kept to a few values so that compiled code is reused."""
import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.network import clustered_data, random_network, standard_cost
from truncflow.collapse import NCMetrics, class_covariances, equinorm_equiangularity, nc1, nc_metrics
from truncflow.training import (alignment_defect, cluster_spread, clusters_touched, diagnose, train_network,
                                cluster_truncation_counts, untruncated_init)

seeds = st.integers(0, 2**31 - 1)
nc_jit = jax.jit(nc_metrics)
nc1_jit = jax.jit(nc1, static_argnums=2)
# one compiled program per function (eager calls would compile every primitive on its own)
covariances_jit = jax.jit(class_covariances, static_argnums=2)
PER_CLASS = 6


def rand_orthogonal(rng, D):
    """Haar-random orthogonal matrix from NumPy (no compilation)."""
    q, r = np.linalg.qr(rng.normal(size=(D, D)))
    return q * np.sign(np.diag(r))


def simplex_etf(J):
    return np.sqrt(J / (J - 1)) * (np.eye(J) - 1.0 / J)


def _etf_problem(seed, J, extra):
    """Exactly collapsed features: a rotated, scaled, shifted simplex ETF in D = J + extra dimensions."""
    rng = np.random.default_rng(seed)
    D = J + extra
    U = rand_orthogonal(rng, D)
    M = rng.uniform(0.1, 10) * np.pad(simplex_etf(J), ((0, 0), (0, extra))) @ U.T
    shift = rng.normal(size=D)
    labels = np.repeat(np.arange(J), PER_CLASS)
    W_out = rng.uniform(0.1, 10) * M
    return shift + M[labels], labels, W_out, -W_out @ shift


@given(seeds, st.sampled_from([(3, 0), (4, 2)]))     # (J, extra dimensions): D = J and D > J
def test_exact_simplex_etf_is_fully_collapsed(seed, J_extra):
    J, extra = J_extra
    feats, labels, W_out, b_out = _etf_problem(seed, J, extra)
    nc = nc_jit(jnp.asarray(feats), jnp.asarray(labels), jnp.asarray(W_out), jnp.asarray(b_out))
    for name in ("nc1", "equinorm", "equiangular", "max_angle", "equinorm_w", "equiangular_w", "nc3"):
        assert abs(float(getattr(nc, name))) < 1e-10, name
    assert float(nc.nc4) == 1.0 and float(nc.accuracy) == 1.0


@given(seeds, st.sampled_from([3, 4]))
def test_nc_measures_invariant_under_rotation_scaling_shift(seed, J):
    """NC1-NC4 do not change when the features are rotated, scaled and shifted and W_out follows."""
    rng = np.random.default_rng(seed)
    D = J
    labels = np.repeat(np.arange(J), PER_CLASS)
    feats = 2.0 * np.eye(D)[labels] + rng.normal(scale=0.7, size=(J * PER_CLASS, D))
    W_out, b_out = rng.normal(size=(J, D)), rng.normal(size=J)
    U = rand_orthogonal(rng, D)
    a, c, shift = rng.uniform(0.2, 5), rng.uniform(0.2, 5), rng.normal(size=D)
    feats2 = a * feats @ U.T + shift
    W2 = c * W_out @ U.T
    b2 = c * a * b_out - W2 @ shift          # outputs scale by c * a, so decisions are unchanged
    nc = nc_jit(*map(jnp.asarray, (feats, labels, W_out, b_out)))
    nc2 = nc_jit(*map(jnp.asarray, (feats2, labels, W2, b2)))
    for x, y, name in zip(nc, nc2, NCMetrics._fields):
        assert np.isclose(float(x), float(y), rtol=1e-8, atol=1e-10), name


@given(seeds)
def test_covariances_against_double_loop_unequal_classes(seed):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), [4, 9, 17])
    feats = rng.normal(size=(30, 4)) + 3 * np.eye(4)[labels]
    mus = np.stack([feats[labels == j].mean(0) for j in range(3)])
    mu_G = mus.mean(0)
    Sw = sum(np.outer(x - mus[j], x - mus[j]) / (labels == j).sum() for x, j in zip(feats, labels)) / 3
    Sb = sum(np.outer(mus[j] - mu_G, mus[j] - mu_G) for j in range(3)) / 3
    Sigma_W, Sigma_B = covariances_jit(jnp.asarray(feats), jnp.asarray(labels), 3)
    np.testing.assert_allclose(Sigma_W, Sw, atol=1e-12)
    np.testing.assert_allclose(Sigma_B, Sb, atol=1e-12)
    assert np.isclose(nc1_jit(jnp.asarray(feats), jnp.asarray(labels), 3), np.trace(Sw @ np.linalg.pinv(Sb)) / 3,
                      rtol=1e-9)


def test_known_values():
    # two classes on a line: NC1 = s^2 / (2 m^2)
    m, s = 1.7, 0.3
    feats = jnp.array([[-m - s], [-m + s], [m - s], [m + s]])
    assert abs(nc1_jit(feats, jnp.array([0, 0, 1, 1]), 2) - s**2 / (2 * m**2)) < 1e-12
    # orthogonal vectors of norms 1, 2, 3: CV = std/mean, cosines 0
    cv, std_cos, max_angle = jax.jit(equinorm_equiangularity)(jnp.diag(jnp.array([1.0, 2.0, 3.0])))
    assert abs(cv - np.std([1, 2, 3]) / 2) < 1e-12 and abs(std_cos) < 1e-12 and abs(max_angle - 0.5) < 1e-12


@given(seeds, st.sampled_from([0.0, 1.0, 1e3]))
def test_nc1_is_nan_when_class_means_coincide(seed, shift_scale):
    """Equal class means (up to rounding): Sigma_B = 0 and NC1 is undefined -> nan, also under jit and for
    identical or all-zero features; class means 1e-4 apart (relative) still give a finite NC1."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), [4, 9, 17])
    D = rng.normal(size=(30, 4))
    for j in range(3):
        D[labels == j] -= D[labels == j].mean(0)
    common = shift_scale * rng.normal(size=4)
    f = nc1_jit
    for feats in (common + D, np.tile(common, (30, 1)), np.zeros((30, 4))):
        assert np.isnan(f(jnp.asarray(feats), jnp.asarray(labels), 3))
    apart = common + D + 1e-4 * (1 + np.abs(common).max()) * np.eye(4)[labels]
    assert np.isfinite(f(jnp.asarray(apart), jnp.asarray(labels), 3))


def test_alignment_defect_and_spread():
    rng = np.random.default_rng(0)
    defect = jax.jit(alignment_defect)
    W = np.stack([np.diag([1.0, 2.0, 5.0]) @ rand_orthogonal(rng, 3),      # aligned, W = W_* R
                  rand_orthogonal(rng, 3) @ np.diag([0.5, 1.0, 1.5]) @ rand_orthogonal(rng, 3)])
    d = defect(jnp.asarray(W))
    assert abs(d[0]) < 1e-12 and d[1] > 1e-3
    Z = jnp.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    sp = jax.jit(cluster_spread, static_argnums=2)(Z, jnp.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(sp, [[1.0, 0.0], [0.0, 0.0]], atol=1e-12)


def test_cluster_separated_network_touches_one_cluster_per_map():
    X, labels = jax.jit(lambda k: clustered_data(k, 3.0 * np.eye(3), 20, radius=0.5))(jax.random.PRNGKey(7))
    Wc = jnp.asarray(1.0 - 2 * np.eye(3))[:, None, :] * jnp.eye(3)
    betas = jnp.asarray(1.0 - 4 * np.eye(3))
    counts_fn = jax.jit(cluster_truncation_counts, static_argnums=4, static_argnames="composed")
    counts = counts_fn(Wc, betas, X, labels, 3)
    np.testing.assert_array_equal(clusters_touched(counts), [1, 1, 1])
    np.testing.assert_array_equal(counts, counts_fn(Wc, betas, X, labels, 3, composed=False))


@jax.jit
def _problem_arrays(key):
    k1, k2 = jax.random.split(key)
    Ws, bs = random_network(k1, 3, 4)
    X, labels = clustered_data(k2, 2 * np.eye(3), [5, 7, 9], radius=0.8)
    return Ws, bs, X, labels


def _problem(seed, L=3):
    """A random network of L = 3 hidden layers and its output layer, data of 21 points, targets."""
    Ws, bs, X, labels = _problem_arrays(jax.random.PRNGKey(seed))
    return (Ws[:L], bs[:L], Ws[L], bs[L]), X, labels, jnp.eye(3)


# The gradient against finite differences and one scanned step against the update written out are checked in
# the training chapter (nbs/23_training.ipynb), which is executed by every test run: not repeated here.


def test_trainer_decreases_cost_and_log_shapes():
    _, X, labels, Y = _problem(0)
    log = train_network(jax.random.PRNGKey(0), X, labels, Y, L=3, steps=110, lr=0.02, log_every=50, progress=False)
    np.testing.assert_array_equal(log.step, [0, 50, 100, 110])      # a shorter last chunk (10: compiled below too)
    assert log.Ws.shape == (4, 3, 3, 3) and log.b_out.shape == (4, 3)
    assert np.all(np.diff(log.cost) < 0) and log.cost[-1] < 0.5 * log.cost[0]
    cost = jax.jit(jax.vmap(standard_cost, in_axes=(0, 0, 0, 0, None, None, None)))
    np.testing.assert_allclose(log.cost, cost(log.Ws, log.bs, log.W_out, log.b_out, X, labels, Y), rtol=1e-9)
    # (diagnose is checked against NumPy on 61 logged networks in the chapter; the start untruncated there too)


def test_explicit_init_and_random_init():
    params, X, labels, Y = _problem(1)
    log = train_network(None, X, labels, Y, L=3, steps=10, lr=0.01, log_every=10, init=params, progress=False)
    np.testing.assert_allclose(log.Ws[0], params[0])
    log = train_network(jax.random.PRNGKey(2), X, labels, Y, L=3, steps=10, lr=0.01, log_every=10, init="random",
                        progress=False)
    assert np.all(np.isfinite(log.cost))


def test_bad_input():
    _, X, labels, Y = _problem(0)
    key = jax.random.PRNGKey(0)
    good = dict(L=3, steps=10, lr=0.1)
    cases = [
        (lambda: train_network(key, X[:, :2], labels, Y, **good), "Y:"),
        (lambda: train_network(key, X, labels[:-1], Y, **good), "labels:"),
        (lambda: train_network(key, X, labels + 1, Y, **good), "labels:"),
        (lambda: train_network(key, X, np.asarray(labels) * 0.5, Y, **good), "labels:"),
        (lambda: train_network(key, X.at[0, 0].set(np.inf), labels, Y, **good), "X:"),
        (lambda: train_network(key, X[0], labels, Y, **good), "X:"),
        (lambda: train_network(key, X, labels, Y, L=0, steps=10, lr=0.1), "L:"),
        (lambda: train_network(key, X, labels, Y, L=3, steps=0, lr=0.1), "steps:"),
        (lambda: train_network(key, X, labels, Y, L=3, steps=10, lr=-1.0), "lr:"),
        (lambda: train_network(key, X, labels, Y, L=3, steps=10, lr=np.nan), "lr:"),
        (lambda: train_network(key, X, labels, Y, log_every=0, **good), "log_every:"),
        (lambda: train_network(key, X, labels, Y, init="zeros", **good), "init:"),
        (lambda: train_network(key, X, labels, Y, init=(np.eye(3),), **good), "init:"),
        (lambda: train_network(key, X, labels, Y, init=(np.zeros((3, 3, 3)), np.zeros((3, 3)), np.eye(3), np.zeros(3)), **good), "Ws"),
        (lambda: untruncated_init(key, X, labels, Y, 3, margin=0.0), "margin:"),
        (lambda: diagnose("not a log", X, labels), "log:"),
    ]
    for f, msg in cases:
        with pytest.raises(ValueError, match=msg):
            f()


def test_divergence_is_reported():
    _, X, labels, Y = _problem(0)
    with pytest.raises(FloatingPointError, match="lr"):
        train_network(jax.random.PRNGKey(0), 100 * X, labels, Y, L=3, steps=100, lr=50.0, log_every=50, progress=False)
