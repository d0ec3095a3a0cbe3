"""The lock on a sweep directory, with real processes: a second `truncflow sweep` on a directory in use is refused,
naming the first (pid, host, start time) and touching nothing, not even the first's temporary files; the lock of
a sweep killed with SIGKILL is stale, and the next sweep takes it over with a message. Real data sets in sweeps
(issue 13): bad data refused before anything runs, one message line each; one small iris sweep per flow kind."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from test_cli import cli, toml
from test_ensemble import TINY, subprocess_env, jax_cache  # noqa: F401  (fixture)
from truncflow.cli import main
from truncflow.report import figure_title, report_figures
from truncflow.store import LOCK_NAME, lock_holder, read_manifest
from truncflow.sweep import load_sweep


# A sweep that, after its first chunk, waits until the file `gate` exists (at most 300 s) before it goes on: it
# holds the lock for as long as the test needs, however slow the machine, and then finishes at full speed.
GATED_SWEEP = textwrap.dedent("""
    import json, os, sys, time
    import jax
    jax.config.update("jax_enable_x64", True)
    from truncflow.sweep import run_sweep
    out, gate, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    def wait(k, arrays):
        deadline = time.time() + 300
        while not os.path.exists(gate) and time.time() < deadline:
            time.sleep(0.05)
    run_sweep(config, out, progress=False, on_chunk=wait)
""")


def _start_held_sweep(out, gate, env):
    """A sweep in another process (GATED_SWEEP); returns once it holds the lock and has written its first chunk,
    after which it waits for the file `gate`."""
    proc = subprocess.Popen([sys.executable, "-c", GATED_SWEEP, out, str(gate), json.dumps(TINY)], env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        man = read_manifest(out) if os.path.exists(os.path.join(out, "manifest.json")) else None
        if man and man["chunks"] and lock_holder(out):
            return proc
        assert proc.poll() is None, "the first sweep ended before it could be observed"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the first sweep did not start in time")


def test_second_sweep_on_a_directory_in_use_is_refused(tmp_path, jax_cache, capsys):
    """The second sweep through the real command (with --resume) and in process (without): the same refusal."""
    env = subprocess_env(jax_cache)
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(toml(TINY))
    out, gate = str(tmp_path / "out"), tmp_path / "go"
    first = _start_held_sweep(out, gate, env)                 # holds the lock until `gate` exists
    try:
        holder = lock_holder(out)
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        tmp = os.path.join(out, f".chunk_00009.npz.{first.pid}.0123abcd.tmp")   # as if the first were writing it
        with open(tmp, "wb") as fh:
            fh.write(b"half a chunk")
        before = sorted(os.listdir(out))
        r = cli(["sweep", str(cfg), "--out", out, "--no-progress", "--resume"], env)
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
        capsys.readouterr()
        assert main(["sweep", str(cfg), "--out", out, "--no-progress"]) == 2
        second = capsys.readouterr()
        assert second.out == ""
        for err in (r.stderr, second.err):
            assert err.startswith(
                f"truncflow: error: --out {out} is in use by another sweep: process {first.pid} on host "
                f"{socket.gethostname()}, started {holder['started']} ("), err
            assert err.rstrip().endswith("wait until it has finished, or choose another --out") and err.count("\n") == 1
        assert first.poll() is None and lock_holder(out)["pid"] == first.pid   # still held: the gate is shut
        assert os.path.exists(tmp)                           # the second run did not delete the first's files
        assert set(before) <= set(os.listdir(out))
        gate.touch()
        assert first.wait(timeout=240) == 0
    finally:
        if first.poll() is None:
            first.kill()
    man = read_manifest(out)
    assert man["complete"] and len(man["chunks"]) == 10 and lock_holder(out) is None
    assert LOCK_NAME not in os.listdir(out)


def test_stale_lock_of_a_killed_sweep_is_taken_over(tmp_path, jax_cache):
    env = subprocess_env(jax_cache)
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(toml(TINY))
    out = str(tmp_path / "out")
    first = _start_held_sweep(out, tmp_path / "never", env)   # killed while it holds the lock
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(timeout=60) == -signal.SIGKILL
    with open(os.path.join(out, LOCK_NAME)) as fh:         # left behind, naming the dead process
        assert json.load(fh)["pid"] == first.pid
    assert lock_holder(out) is None                          # but held by nobody
    r = cli(["sweep", str(cfg), "--out", out, "--resume", "--no-progress"], env)
    assert r.returncode == 0, r.stderr
    assert f"sweep: taking over the stale lock of process {first.pid} on host {socket.gethostname()}" in r.stderr
    assert r.stderr.count("taking over") == 1
    res, man = load_sweep(out)
    assert man["complete"] and res["s1"].shape == (40,) and np.array_equal(res["index"], np.arange(40))
    assert not [f for f in os.listdir(out) if f.endswith(".tmp") or f == LOCK_NAME]


# --- real data sets in sweeps: bad data refused before anything runs, and one small sweep per flow kind ---


_X = np.random.default_rng(0).normal(size=(12, 3))
_LAB = np.arange(12) % 3


def _bad_files(d):
    """The files of the bad-data cases, written into d (a real directory)."""
    np.savez(d / "nolabels.npz", X=_X)
    Xn = _X.copy()
    Xn[4, 1] = np.nan
    np.savez(d / "nan.npz", X=Xn, labels=_LAB)
    names = np.array(["a", "b", "c"])
    np.savez(d / "empty_class.npz", X=_X, labels=np.where(_LAB == 1, 2, _LAB), class_names=names)
    np.savez(d / "range.npz", X=_X, labels=np.where(_LAB == 1, 5, _LAB), class_names=names)
    rows = "\n".join(f"{a},{b},{c},{l}" for (a, b, c), l in zip(_X, _LAB))
    (d / "t.csv").write_text("a,b,c,kind\n" + rows + "\n")


BAD_DATA = [  # ([data] table, what the one-line message must say after "[data] ")
    ({"kind": "file", "path": "nolabels.npz"}, "nolabels.npz: has no array 'labels'; it has arrays ['X']"),
    ({"kind": "file", "path": "nan.npz"},
     "nan.npz: X: contains 1 non-finite value(s) (nan or inf); the first is X[4, 1] = nan"),
    ({"kind": "file", "path": "empty_class.npz"}, "empty_class.npz: labels: cluster(s) [1] have no points"),
    ({"kind": "file", "path": "range.npz"}, "range.npz: labels: labels must lie in [0, 3), got values in [0, 5]"),
    ({"kind": "file", "path": "t.csv", "label_column": "species"},
     "t.csv: has no column 'species'; its columns are ['a', 'b', 'c', 'kind']"),
    ({"kind": "file", "path": "t.csv", "label_column": "kind", "Q": 4},
     "Q: must be at most D = 3, the dimension of t.csv (PCA cannot add dimensions); got Q = 4"),
    ({"kind": "file", "path": "missing.npz"}, "missing.npz: no such file"),
    ({"kind": "sklearn", "name": "mnist"}, "name: must be one of 'iris', 'wine', 'breast_cancer', 'digits'"),
    ({"kind": "sklearn", "name": "iris", "cluster": 3}, "cluster: iris has J = 3 classes"),
]


@pytest.mark.parametrize("data, message", BAD_DATA, ids=[m.split(":")[0] for _, m in BAD_DATA])
def test_bad_data_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys, data, message):
    """One line naming the file (or key) and what is wrong, exit status 2, no output directory."""
    _bad_files(tmp_path)
    monkeypatch.chdir(tmp_path)                               # [data] path is relative to the current directory
    (tmp_path / "c.toml").write_text(toml({"data": data}))
    assert main(["sweep", "c.toml", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"truncflow: error: c.toml: [data] {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


IRIS = {"kind": "sklearn", "name": "iris", "Q": 3, "per_class": 6}
KINDS = {  # flow kind: (extra config, a line the report prints, the figures it writes)
    "separated": ({"data": dict(IRIS, cluster=1)}, "fraction reaching full truncation", "gap.png"),
    "fixed_R": ({"data": IRIS}, "staircase rates vs n/N", "rates.png"),
    "general": ({"data": IRIS, "flow": {"layers": 2}}, "cost at the end", "cost.png"),
    "training": ({"data": IRIS, "flow": {"layers": 2}, "training": {"steps": 4, "log_every": 2}},
                 "cluster separated (Definition 3.1)", "nc1.png"),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_small_sklearn_sweep_per_flow_kind(tmp_path, capsys, kind):
    """iris, 6 points per class, Q = 3, 3 members, a few steps: the sweep finishes, the report names the data set
    (N per class, D, Q) in its summary and in every figure title."""
    extra, line, png = KINDS[kind]
    cfg = {**extra, "flow": dict(extra.get("flow", {}), kind=kind), "time": {"t_end": 0.1},
           "ensemble": {"size": 3}}
    (tmp_path / "c.toml").write_text(toml(cfg))
    out = str(tmp_path / "out")
    assert main(["sweep", str(tmp_path / "c.toml"), "--out", out, "--no-progress"]) == 0, capsys.readouterr().err
    res, man = load_sweep(out)
    assert man["data"]["n_per_class"] == [6, 6, 6] and (man["data"]["D"], man["data"]["Q"]) == (4, 3)
    capsys.readouterr()
    assert main(["report", out, "--no-figures"]) == 0
    text = capsys.readouterr().out
    assert "iris (N per class 6/6/6, D=4, Q=3" in text and line in text, text
    figs = report_figures(res, man)                          # the figures as objects (writing them: test_cli.py)
    assert png in figs and all(f._suptitle.get_text() == figure_title(man) for f in figs.values())
    assert "iris (N per class 6/6/6, D=4, Q=3" in figure_title(man)
    import matplotlib.pyplot as plt                          # (report_figures chose the Agg backend)
    plt.close("all")
    if kind == "training":
        assert res["nc1"].shape == (3, 3, 3) and res["truncated_fraction"].shape == (3, 3, 2)
        assert np.array_equal(res["step"][0], [0, 2, 4]) and np.all(np.isfinite(res["cost"]))
