"""The lock on a sweep directory, with real processes: a second `truncflow sweep` on a directory in use is refused,
naming the first (pid, host, start time) and touching nothing, not even the first's temporary files; the lock of
a sweep killed with SIGKILL is stale, and the next sweep takes it over with a message."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np

from test_cli import cli, toml
from test_ensemble import SWEEP_SCRIPT, TINY, subprocess_env, jax_cache  # noqa: F401  (fixture)
from truncflow.sweep import LOCK_NAME, load_sweep, lock_holder, read_manifest


def _start_slow_sweep(out, env, pause):
    """A sweep in another process (run_sweep, `pause` s after each chunk); returns once it holds the lock and
    has written a chunk."""
    proc = subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT, out, str(pause), json.dumps(TINY)], env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        man = read_manifest(out) if os.path.exists(os.path.join(out, "manifest.json")) else None
        if man and man["chunks"] and lock_holder(out):
            return proc
        assert proc.poll() is None, "the first sweep ended before it could be observed"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the first sweep did not start in time")


def test_second_sweep_on_a_directory_in_use_is_refused(tmp_path, jax_cache):
    env = subprocess_env(jax_cache)
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(toml(TINY))
    out = str(tmp_path / "out")
    first = _start_slow_sweep(out, env, pause=1.5)             # 10 chunks: about 15 s in all
    try:
        holder = lock_holder(out)
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        tmp = os.path.join(out, f".chunk_00009.npz.{first.pid}.0123abcd.tmp")   # as if the first were writing it
        with open(tmp, "wb") as fh:
            fh.write(b"half a chunk")
        before = sorted(os.listdir(out))
        for resume in (["--resume"], []):
            r = cli(["sweep", str(cfg), "--out", out, "--no-progress", *resume], env)
            assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
            assert r.stderr.startswith(
                f"truncflow: error: --out {out} is in use by another sweep: process {first.pid} on host "
                f"{socket.gethostname()}, started {holder['started']} ("), r.stderr
            assert r.stderr.rstrip().endswith("wait until it has finished, or choose another --out")
            assert first.poll() is None, "the first sweep ended before the second was refused: raise the pause"
        assert os.path.exists(tmp)                           # the second run did not delete the first's files
        assert set(before) <= set(os.listdir(out))
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
    first = _start_slow_sweep(out, env, pause=0.5)
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
