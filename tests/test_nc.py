"""Neural-collapse measures at every layer: truncflow.collapse.collapse_measures, layer_nc and
ensemble_layer_nc against a direct NumPy transcription of the definitions of Papyan, Han and Donoho,
"Prevalence of neural collapse during the terminal phase of deep learning training", PNAS 117 (2020)
(the paper's ref. [12]), and against exact simplex equiangular tight frames (ETFs).

Their definitions, for C classes of n points h_{i,c} each (balanced classes, as in their paper):

    mu_c = Ave_i h_{i,c},   mu_G = Ave_{i,c} h_{i,c},
    Sigma_W = Ave_{i,c} (h_{i,c} - mu_c)(h_{i,c} - mu_c)^T,
    Sigma_B = Ave_c (mu_c - mu_G)(mu_c - mu_G)^T,
    NC1 = Tr(Sigma_W Sigma_B^+ / C),
    NC2: equinorm      Std_c |mu_c - mu_G| / Avg_c |mu_c - mu_G|,
         equiangular   Std_{c != c'} cos_mu(c, c'),
         max-angle     Avg_{c != c'} |cos_mu(c, c') + 1/(C - 1)|,

with cos_mu(c, c') the cosine between mu_c - mu_G and mu_c' - mu_G and Std the population standard
deviation. The transcription below uses Python loops and NumPy arithmetic only; it shares no code
with truncflow. For unbalanced classes truncflow weights every class equally (1/N_c, as the standard
cost (2.22) does); that equals the balanced definitions applied to the data with every class
replicated to a common size, which is how the unbalanced case is checked. Where all class means
coincide, NC1 is undefined (Sigma_B = 0); truncflow returns nan, and so does the transcription.

float64 (tests/conftest.py). Shapes are drawn from a few values so that compiled code is reused.
"""
import math

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, strategies as st

from truncflow.collapse import LayerNC, collapse_measures, ensemble_layer_nc

seeds = st.integers(0, 2**31 - 1)
measures_jit = jax.jit(collapse_measures, static_argnums=2)


# ----------------------------------------------------------------------------------------------
# The transcription
# ----------------------------------------------------------------------------------------------
def _mean(values):
    return sum(values) / len(values)


def _pop_std(values):
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def phd_measures(H, labels, C, rcond=1e-10):
    """NC1, equinorm, equiangular, max-angle of features H (N, D) with labels in [0, C), balanced.

    Returns (nc1, equinorm, equiangular, max_angle, cond): cond is the ratio of the largest to the
    smallest eigenvalue of Sigma_B that the pseudo-inverse keeps (eigenvalues below rcond times
    the largest count as zero), nan where Sigma_B = 0."""
    H = [np.asarray(h, dtype=np.float64) for h in np.asarray(H)]
    N, D = len(H), H[0].shape[0]
    per_class = [[H[i] for i in range(N) if labels[i] == c] for c in range(C)]
    assert len({len(p) for p in per_class}) == 1, "the definitions are for balanced classes"
    mu = []
    for pts in per_class:
        s = np.zeros(D)
        for h in pts:
            s = s + h
        mu.append(s / len(pts))
    mu_G = np.zeros(D)
    for h in H:
        mu_G = mu_G + h
    mu_G = mu_G / N
    Sigma_W = np.zeros((D, D))
    for c, pts in enumerate(per_class):
        for h in pts:
            Sigma_W = Sigma_W + np.outer(h - mu[c], h - mu[c])
    Sigma_W = Sigma_W / N
    Sigma_B = np.zeros((D, D))
    for c in range(C):
        Sigma_B = Sigma_B + np.outer(mu[c] - mu_G, mu[c] - mu_G)
    Sigma_B = Sigma_B / C
    scale = sum(float(h @ h) for h in H) / N
    if np.trace(Sigma_B) <= 1e-14 * scale:                          # all class means coincide
        nc1, cond = math.nan, math.nan
    else:
        lam = np.linalg.eigvalsh(Sigma_B)
        kept = lam[lam > rcond * lam[-1]]
        cond = float(kept[-1] / kept[0])
        nc1 = float(np.trace(Sigma_W @ np.linalg.pinv(Sigma_B, rcond=rcond, hermitian=True))) / C
    norms = [math.sqrt(float((m - mu_G) @ (m - mu_G))) for m in mu]
    cosines = []
    for c in range(C):
        for cp in range(C):
            if cp != c:
                dot = float((mu[c] - mu_G) @ (mu[cp] - mu_G))
                both = norms[c] * norms[cp]
                cosines.append(dot / both if both > 0 else math.nan)
    equinorm = _pop_std(norms) / _mean(norms) if _mean(norms) > 0 else math.nan
    equiangular = _pop_std(cosines)
    max_angle = _mean([abs(x + 1.0 / (C - 1)) for x in cosines])
    return nc1, equinorm, equiangular, max_angle, cond


def np_hidden_layers(Ws, bs, X):
    """x^(0), x^(1), ..., x^(L) of the ReLU network, Eq. (2.1), point by point."""
    layers = [np.asarray(X, dtype=np.float64)]
    for W, b in zip(Ws, bs):
        layers.append(np.array([np.maximum(W @ x + b, 0.0) for x in layers[-1]]))
    return layers


def _close(got, want, cond, name):
    """Equal up to rounding amplified by the conditioning of Sigma_B (nan where both are nan)."""
    if math.isnan(want):
        assert math.isnan(got), (name, got, want)
        return
    tol = 1e-10 * (1.0 if name != "nc1" else max(1.0, cond))
    assert abs(got - want) <= tol * (1.0 + abs(want)), (name, got, want)


def _compare(lib, ref):
    """lib: LayerNC of scalars; ref: the transcription's tuple."""
    for name, want in zip(LayerNC._fields, ref[:4]):
        _close(float(getattr(lib, name)), want, ref[4], name)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def simplex_etf(C):
    """Rows: C unit vectors in R^C with pairwise cosines -1/(C-1), summing to zero."""
    return np.sqrt(C / (C - 1)) * (np.eye(C) - 1.0 / C)


def rand_orthogonal(rng, D):
    q, r = np.linalg.qr(rng.normal(size=(D, D)))
    return q * np.sign(np.diag(r))


def clustered(rng, C, D, sizes, mean_scale, noise):
    means = mean_scale * rng.normal(size=(C, D))
    labels = np.repeat(np.arange(C), sizes)
    return means[labels] + noise * rng.normal(size=(labels.size, D)), labels


def similarity_layers(rng, X, L):
    """Layers W_l = a_l U_l with biases that keep every pre-activation on X positive: each layer
    acts on the data as a similarity, so the class means stay a rotated, scaled, shifted ETF."""
    h, Ws, bs = np.asarray(X), [], []
    for _ in range(L):
        W = rng.uniform(0.5, 2.0) * rand_orthogonal(rng, h.shape[1])
        b = rng.uniform(0.1, 1.0) - (h @ W.T).min(axis=0)
        Ws.append(W)
        bs.append(b)
        h = h @ W.T + b
    return np.array(Ws), np.array(bs)


# ----------------------------------------------------------------------------------------------
# One layer: collapse_measures against the transcription
# ----------------------------------------------------------------------------------------------
@given(seeds, st.sampled_from([(2, 1), (3, 5), (5, 4)]), st.floats(0.3, 5.0), st.floats(0.01, 3.0))
def test_one_layer_against_the_transcription_balanced(seed, CD, mean_scale, noise):
    """C classes of 4 points in D dimensions, D = C - 1 (Sigma_B invertible) and D > C (three shapes:
    three compilations)."""
    rng = np.random.default_rng(seed)
    C, D = CD
    H, labels = clustered(rng, C, D, 4, mean_scale, noise)
    lib = measures_jit(jnp.asarray(H), jnp.asarray(labels), C)
    _compare(lib, phd_measures(H, labels, C))


@given(seeds, st.sampled_from([((1, 2, 3), 0), ((2, 5, 4), 2), ((4, 1, 6, 2), 1)]))
def test_unbalanced_classes_weigh_every_class_equally(seed, sizes_extra):
    """truncflow on unbalanced classes == the balanced definitions on the replicated data."""
    rng = np.random.default_rng(seed)
    sizes, extra = sizes_extra
    C = len(sizes)
    H, labels = clustered(rng, C, C + extra, sizes, 2.0, 0.7)
    lcm = math.lcm(*sizes)
    reps = np.concatenate([np.tile(np.flatnonzero(labels == c), lcm // sizes[c]) for c in range(C)])
    lib = measures_jit(jnp.asarray(H), jnp.asarray(labels), C)
    _compare(lib, phd_measures(H[reps], labels[reps], C))


@given(seeds, st.sampled_from([2, 3]))
def test_all_class_means_equal_gives_nan_nc1(seed, C):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(C), 4)
    H = rng.normal(size=(4 * C, C))
    H -= np.array([H[labels == c].mean(0) for c in range(C)])[labels]   # every class mean is 0 ...
    H += rng.normal(size=C) * 10.0 ** rng.integers(0, 3)                # ... then a common shift
    ref = phd_measures(H, labels, C)
    lib = measures_jit(jnp.asarray(H), jnp.asarray(labels), C)
    assert math.isnan(ref[0]) and math.isnan(float(lib.nc1))


# ----------------------------------------------------------------------------------------------
# Exact simplex ETFs
# ----------------------------------------------------------------------------------------------
# (C, class sizes, extra dimensions): every C, balanced and unbalanced classes, D = C and D > C,
# in four shapes (four compilations)
@given(seeds, st.sampled_from([(2, (4,), 0), (3, (2, 5), 3), (4, (4,), 3), (6, (2, 5), 0)]))
def test_exact_simplex_etf_has_zero_nc1_and_nc2(seed, C_sizes_extra):
    """Class means a rotated, scaled, shifted simplex ETF in D = C + extra dimensions, every point
    at its class mean; balanced classes or alternating sizes 2 and 5."""
    rng = np.random.default_rng(seed)
    C, sizes, extra = C_sizes_extra
    D = C + extra
    etf = np.pad(simplex_etf(C), ((0, 0), (0, extra)))                  # C unit rows in R^D
    M = rng.uniform(0.1, 10.0) * etf @ rand_orthogonal(rng, D).T
    sizes = [sizes[c % len(sizes)] for c in range(C)]
    labels = np.repeat(np.arange(C), sizes)
    H = rng.normal(size=D) * rng.uniform(0, 10) + M[labels]
    lib = measures_jit(jnp.asarray(H), jnp.asarray(labels), C)
    for name in LayerNC._fields:
        assert abs(float(getattr(lib, name))) < 1e-10, name
    if len(set(sizes)) == 1:
        assert all(abs(v) < 1e-10 for v in phd_measures(H, labels, C)[:4])


@given(seeds, st.sampled_from([3, 4]))
def test_within_class_spread_orthogonal_to_the_means_gives_zero_nc1(seed, C):
    """Sigma_B^+ does not see deviations orthogonal to the span of the centred means: NC1 = 0."""
    rng = np.random.default_rng(seed)
    D = C + 2                                        # the centred means span C - 1 of D dimensions
    U = rand_orthogonal(rng, D)
    labels = np.repeat(np.arange(C), 5)
    M = 3.0 * np.pad(simplex_etf(C), ((0, 0), (0, 2))) @ U.T
    spread = rng.normal(size=(labels.size, 2))
    spread -= np.array([spread[labels == c].mean(0) for c in range(C)])[labels]
    H = M[labels] + spread @ U[:, -2:].T             # the two directions orthogonal to all means
    ref = phd_measures(H, labels, C)
    lib = measures_jit(jnp.asarray(H), jnp.asarray(labels), C)
    assert abs(ref[0]) < 1e-10 and abs(float(lib.nc1)) < 1e-10
    assert np.linalg.norm(spread) > 0.1


# ----------------------------------------------------------------------------------------------
# Every layer, and an ensemble of networks (vmapped)
# ----------------------------------------------------------------------------------------------
def _random_networks(rng, E, L, Q):
    """Weights near the identity and mostly positive biases, so that few layers die."""
    Ws = np.eye(Q) + 0.6 * rng.normal(size=(E, L, Q, Q)) / np.sqrt(Q)
    bs = rng.normal(0.3, 0.6, size=(E, L, Q))
    return Ws, bs


@given(seeds, st.sampled_from([(3, 2), (4, 3)]), st.booleans())
def test_every_layer_of_an_ensemble_against_the_transcription(seed, QL, shared):
    Q, L = QL
    E, C, n = 3, Q, 5
    rng = np.random.default_rng(seed)
    X, labels = clustered(rng, C, Q, n, 2.0, 0.6)
    XE = X if shared else X[None] + 0.3 * rng.normal(size=(E,) + X.shape)
    Ws, bs = _random_networks(rng, E, L, Q)
    ens = ensemble_layer_nc(Ws, bs, XE, labels)
    assert all(np.shape(v) == (E, L + 1) for v in ens)
    for e in range(E):  # (ensemble_layer_nc == layer_nc member by member: checked in nbs/22_collapse)
        Xe = X if shared else XE[e]
        for l, h in enumerate(np_hidden_layers(Ws[e], bs[e], Xe)):
            _compare(jax.tree.map(lambda a: a[e, l], ens), phd_measures(h, labels, C))


@given(seeds, st.sampled_from([(3, 2), (4, 3)]))
def test_simplex_etf_stays_collapsed_through_similarity_layers(seed, QL):
    """An exact ETF input, layers that are similarities on the data: NC1 = NC2 = 0 at every layer,
    for every member of an ensemble (each member its own layers, rotation and scale)."""
    Q, L = QL
    E, C = 3, Q
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(C), 4)
    XE, Ws, bs = [], [], []
    for _ in range(E):
        M = rng.uniform(0.5, 5.0) * simplex_etf(C) @ rand_orthogonal(rng, Q).T
        X = rng.normal(size=Q) + M[labels]
        W, b = similarity_layers(rng, X, L)
        XE.append(X); Ws.append(W); bs.append(b)
    ens = ensemble_layer_nc(np.array(Ws), np.array(bs), np.array(XE), labels)
    for name in LayerNC._fields:
        assert np.max(np.abs(np.asarray(getattr(ens, name)))) < 1e-10, name
    for e in range(E):
        for h in np_hidden_layers(Ws[e], bs[e], XE[e]):
            assert all(abs(v) < 1e-10 for v in phd_measures(h, labels, C)[:4])


def test_a_dead_layer_gives_nan_nc1_in_both():
    """A layer whose ReLU is off on all the data: every class maps to 0, Sigma_B = 0."""
    rng = np.random.default_rng(0)
    X, labels = clustered(rng, 3, 3, 4, 2.0, 0.5)
    Ws = np.stack([np.eye(3)] * 2)[None]
    bs = np.array([[[0.0, 0.0, 0.0], [-1e3, -1e3, -1e3]]])
    ens = ensemble_layer_nc(Ws, bs, X, labels)
    layers = np_hidden_layers(Ws[0], bs[0], X)
    assert np.all(layers[2] == 0)
    assert math.isnan(phd_measures(layers[2], labels, 3)[0]) and np.isnan(ens.nc1[0, 2])
    assert not np.isnan(ens.nc1[0, 0]) and not np.isnan(ens.nc1[0, 1])


@pytest.mark.parametrize("args, message", [
    (lambda W, b, X, y: (W[0], b[0], X, y), "Ws:"),
    (lambda W, b, X, y: (W, b[:, :1], X, y), "bs:"),
    (lambda W, b, X, y: (W, b, X[:, :2], y), "X:"),
    (lambda W, b, X, y: (W, b, np.stack([X] * 3), y), "X:"),
    (lambda W, b, X, y: (W, b, X, y[:-1]), "labels:"),
    (lambda W, b, X, y: (W, b, X, y + 1), "labels:"),
    (lambda W, b, X, y: (W, b, np.where(X > 1, np.nan, X), y), "X:"),
])
def test_bad_input_is_refused(args, message):
    rng = np.random.default_rng(1)
    X, labels = clustered(rng, 3, 3, 4, 2.0, 0.5)
    Ws, bs = _random_networks(rng, 2, 2, 3)
    with pytest.raises(ValueError, match=message):
        ensemble_layer_nc(*args(Ws, bs, X, labels))
