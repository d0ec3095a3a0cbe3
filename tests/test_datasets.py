"""Tests of truncflow.preprocess and truncflow.datasets: a property test of `prepare` on random labelled data, and the error
message of every kind of bad file.

NumPy only (no JAX computation), so the file runs in a few seconds."""
import csv
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from truncflow.datasets import file_dataset, load_dataset, sklearn_dataset
from truncflow.preprocess import DataError, Dataset, describe, pca, prepare, relabel, transform

seeds = st.integers(0, 2**31 - 1)


def _random_labelled(seed, J, D, per_class, extra_max):
    """Points (N, D) with correlated features of mixed scales, and J arbitrary distinct integer labels,
    each class with per_class + (0..extra_max) points, in shuffled order."""
    rng = np.random.default_rng(seed)
    values = rng.choice(np.arange(-50, 50), size=J, replace=False)
    sizes = per_class + rng.integers(0, extra_max + 1, size=J)
    labels = np.repeat(values, sizes)
    rng.shuffle(labels)
    X = rng.normal(size=(len(labels), D)) @ rng.normal(size=(D, D)) * rng.uniform(0.01, 100, size=D)
    X += 3 * rng.normal(size=(J, D))[np.searchsorted(np.sort(values), labels)]
    return X, labels, values


@given(seeds, st.integers(1, 4), st.integers(1, 6), st.integers(1, 5), st.data())
def test_prepare_keeps_classes_counts_and_orthonormal_directions(seed, J, D, per_class, data):
    X, labels, values = _random_labelled(seed, J, D, per_class, extra_max=4)
    Q = data.draw(st.integers(1, D), label="Q")
    standardize = data.draw(st.booleans(), label="standardize")
    ds = prepare(X, labels, name="random", Q=Q, per_class=per_class, seed=seed % 1000, standardize=standardize)

    assert isinstance(ds, Dataset) and ds.X.shape == (J * per_class, Q) and (ds.D, ds.Q, ds.J) == (D, Q, J)
    assert ds.labels.dtype == np.int32 and set(ds.labels.tolist()) == set(range(J)), "labels are 0..J-1"
    assert ds.n_per_class == (per_class,) * J
    assert np.array_equal(np.bincount(ds.labels, minlength=J), [per_class] * J), "counts as reported"
    # relabelling keeps the partition and the sorted order of the original values
    assert ds.class_names == tuple(str(v) for v in np.sort(values))
    assert np.array_equal(np.sort(values)[ds.labels], labels[ds.rows]), "each point keeps its class"
    assert len(set(ds.rows.tolist())) == len(ds.rows), "drawn without replacement"
    # PCA directions orthonormal, coordinates centred, the preprocessing reproducible on the raw rows
    assert np.allclose(ds.components @ ds.components.T, np.eye(Q), atol=1e-10)
    assert np.allclose(ds.X.mean(0), 0, atol=1e-9 * max(1.0, np.abs(ds.X).max()))
    assert np.allclose(transform(ds, X[ds.rows]), ds.X, atol=1e-9 * max(1.0, np.abs(ds.X).max()))
    assert 0 < ds.explained_variance <= 1 + 1e-12
    assert describe(ds).startswith(f"random: N = {J * per_class} in J = {J} classes")


@given(seeds, st.integers(1, 6), st.integers(2, 30))
def test_pca_at_full_dimension_is_a_rotation(seed, D, N):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)) @ rng.normal(size=(D, D))
    Z, V, mean, kept = pca(X, D)
    assert np.allclose(V @ V.T, np.eye(D), atol=1e-12) and abs(kept - 1) < 1e-12
    d = lambda A: np.linalg.norm(A[:, None] - A[None], axis=-1)
    assert np.allclose(d(Z), d(X), atol=1e-10 * max(1.0, d(X).max()), rtol=0)
    assert np.all(np.diff([pca(X, q)[3] for q in range(1, D + 1)]) >= -1e-15), "kept variance grows with Q"


@given(st.lists(st.sampled_from(["b", "a", "c", "10", "9"]), min_size=1, max_size=20))
def test_relabel_is_a_sorted_bijection(names):
    codes, classes = relabel(np.array(names))
    assert np.array_equal(np.asarray(classes)[codes], names)
    assert len(set(classes)) == len(classes) and set(codes.tolist()) == set(range(len(classes)))


def test_standardized_data_have_unit_variance_and_constant_features_stay_zero():
    X = np.column_stack([np.linspace(0, 1, 9), np.full(9, 0.3), np.arange(9) ** 2 * 1e4])
    ds = prepare(X, np.arange(9) % 3)
    assert np.allclose(ds.X.mean(0), 0, atol=1e-15)
    assert np.allclose(ds.X.std(0), [1, 0, 1], atol=1e-14) and np.all(ds.X[:, 1] == 0)


# ---- bad files: every kind of error, with its message ---------------------------------------------

def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path):
    X = np.arange(24.0).reshape(6, 4)
    labels = np.array([0, 1, 2, 0, 1, 2])
    bad = X.copy()
    bad[4, 3], bad[5, 0] = np.inf, np.nan
    np.savez(tmp_path / "good.npz", X=X, labels=labels)
    np.savez(tmp_path / "nolabels.npz", X=X, target=labels)
    np.savez(tmp_path / "nox.npz", data=X, labels=labels)
    np.savez(tmp_path / "nan.npz", X=bad, labels=labels)
    np.savez(tmp_path / "fraction.npz", X=X, labels=labels / 4)
    np.savez(tmp_path / "empty_class.npz", X=X, labels=labels, class_names=np.array(["a", "b", "c", "d"]))
    np.save(tmp_path / "good.npy", X)
    np.save(tmp_path / "flat.npy", X[:, 0])
    np.save(tmp_path / "nan.npy", bad)
    rows = [[*x, "xyz"[j]] for x, j in zip(X, labels)]
    _csv(tmp_path / "good.csv", ["f1", "f2", "f3", "f4", "kind"], rows)
    _csv(tmp_path / "nan.csv", ["f1", "f2", "f3", "f4", "kind"], [[*x, "xyz"[j]] for x, j in zip(bad, labels)])
    _csv(tmp_path / "text.csv", ["f1", "kind"], [[1.0, "x"], ["one", "y"]])
    _csv(tmp_path / "ragged.csv", ["f1", "f2", "kind"], [[1.0, 2.0, "x"], [1.0, "y"]])
    _csv(tmp_path / "fraction.csv", ["f1", "kind"], [[1.0, "1"], [2.0, "2.5"]])
    (tmp_path / "headeronly.csv").write_text("f1,kind\n")
    (tmp_path / "notzip.npz").write_text("hello")
    (tmp_path / "notnpy.npy").write_text("hello")
    (tmp_path / "data.txt").write_text("1 2 3\n")
    return tmp_path


BAD_FILES = [
    ("missing.npz", {}, ["missing.npz: no such file"]),
    ("data.txt", {}, ["data.txt: unsupported file type '.txt'", ".npz", ".npy", ".csv"]),
    ("nolabels.npz", {}, ["nolabels.npz: has no array 'labels'", "it has arrays ['X', 'target']"]),
    ("nox.npz", {}, ["nox.npz: has no array 'X'", "['data', 'labels']"]),
    ("nan.npz", {}, ["nan.npz: X: contains 2 non-finite value(s)", "the first is X[4, 3] = inf"]),
    ("fraction.npz", {}, ["fraction.npz: labels", "4 label(s) are not whole numbers", "row 1: 0.25"]),
    ("empty_class.npz", {}, ["empty_class.npz: labels", "cluster(s) [3] have no points"]),
    ("notzip.npz", {}, ["notzip.npz: is not a .npz archive"]),
    ("good.npz", {"Q": 5}, ["Q: must be at most D = 4", "good.npz"]),
    ("good.npz", {"per_class": 3}, ["good.npz: per_class = 3", "'0' (2 points)", "at most 2"]),
    ("good.npz", {"label_column": "kind"}, ["label_column: only a .csv file"]),
    ("flat.npy", {}, ["flat.npy: X: expected a 2-dimensional array", "(6,)"]),
    ("nan.npy", {}, ["nan.npy: X: contains 2 non-finite"]),
    ("notnpy.npy", {}, ["notnpy.npy: is not a .npy file"]),
    ("good.csv", {}, ["label_column: a .csv file needs", "['f1', 'f2', 'f3', 'f4', 'kind']"]),
    ("good.csv", {"label_column": "label"}, ["good.csv: has no column 'label'", "its columns are ['f1', 'f2'"]),
    ("nan.csv", {"label_column": "kind"}, ["nan.csv: contains 2 non-finite", "line 6, column 'f4'"]),
    ("text.csv", {"label_column": "kind"}, ["text.csv, line 3, column 'f1': 'one' is not a number"]),
    ("ragged.csv", {"label_column": "kind"}, ["ragged.csv, line 3: has 2 fields, the header has 3"]),
    ("fraction.csv", {"label_column": "kind"}, ["fraction.csv, line 3, column 'kind'", "'2.5' is not a whole number"]),
    ("headeronly.csv", {"label_column": "kind"}, ["headeronly.csv: needs a header row", "at least one row of data"]),
]


@pytest.mark.parametrize("name, kwargs, parts", BAD_FILES, ids=[f"{n}-{'-'.join(k)}" for n, k, _ in BAD_FILES])
def test_bad_file_messages(files, name, kwargs, parts):
    with pytest.raises(DataError) as e:
        file_dataset(files / name, **kwargs)
    assert isinstance(e.value, ValueError), "DataError is a ValueError (exit status 2 in the CLI)"
    for p in parts:
        assert p in str(e.value), f"{p!r} not in {str(e.value)!r}"


def test_good_files_round_trip(files):
    a = file_dataset(files / "good.npz", standardize=False)
    b = file_dataset(files / "good.npy", standardize=False)
    c = load_dataset(str(files / "good.csv"), label_column="kind", standardize=False)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.X, c.X)
    assert np.array_equal(a.labels, c.labels) and c.class_names == ("x", "y", "z") and b.class_names == ("0",)


def test_unknown_sklearn_name_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown data set 'iriss'.*iris, wine, breast_cancer, digits"):
        load_dataset("iriss")


def test_missing_scikit_learn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)          # makes importing sklearn fail, even when
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # another test has imported it already
    with pytest.raises(ImportError, match=r"needs sklearn: pip install .truncflow\[datasets\]."):
        sklearn_dataset("iris")
