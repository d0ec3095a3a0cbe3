"""The truncflow command line (truncflow.cli), run as real subprocesses: python -m truncflow.cli ..."""
import json
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from test_ensemble import SMALL, TINY, subprocess_env, jax_cache  # noqa: F401  (fixture)
from truncflow.cli import main
from truncflow.config import CONFIG_KEYS
from truncflow.store import read_manifest
from truncflow.sweep import load_sweep


def toml(cfg: dict) -> str:
    out = []
    for s, table in cfg.items():
        out.append(f"[{s}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def cli(args, env, timeout=300):
    return subprocess.run([sys.executable, "-m", "truncflow.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_help_documents_every_option_and_key(capsys):
    """In process (the real entry point runs in the subprocess tests below)."""
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "sweep" in top and "report" in top and "Exit status" in top
    assert main(["sweep", "--help"]) == 0
    text = capsys.readouterr().out
    for opt in ("--out", "--resume", "--devices", "--memory-estimate", "--no-progress", "--yes"):
        assert opt in text
    assert all(f"[{s}] {k}" in text for s, k in CONFIG_KEYS)
    assert main(["report", "--help"]) == 0 and "--no-figures" in capsys.readouterr().out
    assert main([]) == 2 and "required: COMMAND" in capsys.readouterr().err


def test_sweep_resume_and_report(tmp_path, jax_cache, capsys):
    env = subprocess_env(jax_cache)
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(toml(TINY))
    out = str(tmp_path / "out")
    r = cli(["sweep", str(cfg), "--out", out], env)        # with progress, on a pipe: plain lines, no \r
    assert r.returncode == 0, r.stderr
    assert "40 flows in 10 chunks of 4" in r.stdout
    err = r.stderr.splitlines()
    assert err[0].startswith("sweep: 40 flows in 10 chunks of 4 on 1 device(s), velocity 'closed_form'; output about ")
    assert "estimated from the timed first chunk" in err[1] and "\r" not in r.stderr
    assert [line.split(" (")[0] for line in err if " written (" in line] == [
        f"sweep: chunk {k} of 10 written" for k in range(1, 11)]
    assert err[-1].startswith("sweep: 10 chunks computed in ") and ", estimated " in err[-1]
    man = read_manifest(out)
    assert man["complete"] and len(man["chunks"]) == 10
    ref, _ = load_sweep(out)
    # the same command again, without --resume: refused, one line, nothing touched (in-process: no compute)
    assert main(["sweep", str(cfg), "--out", out]) == 2
    assert capsys.readouterr().err == (f"truncflow: error: --out {out} already holds a sweep of this configuration "
                                       f"(10 of 10 chunks done); add --resume to continue it\n")
    # lose two chunks (as if killed), then --resume: recomputed bitwise (in process: the process boundary is the
    # first command's and the report's; kill -9 and resume in a subprocess: test_ensemble.py)
    for k in ("3", "7"):
        os.remove(os.path.join(out, man["chunks"][k]["file"]))
    assert main(["sweep", str(cfg), "--out", out, "--resume", "--no-progress"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    res, _ = load_sweep(out)
    assert all(np.array_equal(ref[k], res[k], equal_nan=True) for k in ref)
    # a different config cannot resume this sweep
    cfg2 = tmp_path / "other.toml"
    cfg2.write_text(toml(dict(TINY, ensemble=dict(TINY["ensemble"], seed=4))))
    different = (f"truncflow: error: --out {out} holds a different sweep ([ensemble] seed was 3 in the stored "
                 f"sweep, now 4); --resume cannot continue it with {cfg2}: choose a new --out (or move {out} away)\n")
    for resume in ([], ["--resume"]):                          # with or without --resume: the same advice
        assert main(["sweep", str(cfg2), "--out", out, *resume]) == 2
        assert capsys.readouterr().err == different
    r = cli(["report", out], env)
    assert r.returncode == 0, r.stderr
    assert "fraction reaching full truncation" in r.stdout and "decay rate after s_1" in r.stdout
    for png in ("s1_histogram.png", "rates.png", "gap.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000
    assert main(["report", out, "--json", "--no-figures"]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == 40


BAD = [
    ("[data]\nQ = 0\n", "[data] Q: must be between 1 and 32, got 0"),
    ("[data]\nN = 2.5\n", "[data] N: expected an integer (between 1 and 100000), got 2.5"),
    ("[data]\nradius = -0.5\n", "[data] radius: must be > 0, got -0.5"),
    ('[flow]\nkind = "deep"\n', "[flow] kind: must be one of 'separated', 'fixed_R', 'general', 'training', got 'deep'"),
    ('[integrator]\nmethod = "rk45"\n',
     "[integrator] method: must be one of 'rkmk2', 'rkmk4', 'lie_euler', 'exp_euler', 'adaptive', got 'rk45'"),
    ('[integrator]\nstep = "small"\n', "[integrator] step: expected a finite number (> 0), got 'small'"),
    ("[time]\nt_end = 0\n", "[time] t_end: must be > 0, got 0.0"),
    ("[ensemble]\nsize = 0\n", "[ensemble] size: must be >= 1, got 0"),
    ("[ensemble]\nchunksize = 4\n",
     "[ensemble] chunksize: unknown key; allowed keys in [ensemble]: size, seed, chunk_size, memory_budget_mb"),
    ("[output]\ndir = 'x'\n",
     "config: unknown section [output]; allowed sections: data, flow, training, integrator, time, ensemble"),
]


def test_bad_config_and_bad_data_through_the_real_command(tmp_path, jax_cache):
    """The exit status 2 of the entry point, python -m truncflow.cli, in one subprocess: a config whose data file
    has a nan (the config messages themselves are checked in process below, the data ones in test_sweep_cli.py)."""
    env = subprocess_env(jax_cache)
    X = np.ones((6, 2))
    X[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", X=X, labels=np.arange(6) % 2)
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml({"data": {"kind": "file", "path": str(tmp_path / "nan.npz")}}))
    r = cli(["sweep", str(cfg), "--out", str(tmp_path / "out")], env)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr == (f"truncflow: error: {cfg}: [data] {tmp_path / 'nan.npz'}: X: contains 1 non-finite value(s) "
                        f"(nan or inf); the first is X[4, 1] = nan\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, message", BAD)
def test_bad_configs_exact_messages(tmp_path, capsys, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"truncflow: error: {cfg}: {message}\n"
    assert not (tmp_path / "out").exists()


def test_unreadable_inputs(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    assert main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"truncflow: error: CONFIG: {bad} is not valid TOML (") and err.count("\n") == 1
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"truncflow: error: CONFIG: no such file: {tmp_path / 'missing.toml'}\n"
    assert main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"truncflow: error: DIR: no sweep in {tmp_path} (manifest.json is missing)\n"
    assert main(["sweep", "--bogus"]) == 2


def test_version_and_example_config(capsys):
    import tomllib
    import truncflow
    from truncflow.config import example_config, validate_config
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"truncflow {truncflow.__version__}\n"
    assert main(["example-config"]) == 0
    out = capsys.readouterr().out
    assert out == example_config() and validate_config(tomllib.loads(out)) == validate_config({})
    assert main(["example-config", "--help"]) == 0 and "runs as printed" in capsys.readouterr().out
    assert main(["example-config", "extra"]) == 2 and "unrecognized arguments: extra" in capsys.readouterr().err


def test_example_config_runs_as_printed(tmp_path, monkeypatch, capsys):
    """truncflow example-config > sweep.toml; truncflow sweep sweep.toml --out out; truncflow report out, in process
    (what is checked is the printed file, not the process boundary: the real `sweep` and `report` commands run in
    test_sweep_resume_and_report, the console script's example-config in test_packaging.py)."""
    assert main(["example-config"]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    (tmp_path / "sweep.toml").write_text(printed.out)
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    assert main(["sweep", "sweep.toml", "--out", "out", "--no-progress"]) == 0
    seconds = time.perf_counter() - t0
    r = capsys.readouterr()
    assert f"{CONFIG_KEYS[('ensemble', 'size')][1]} flows in" in r.out, r.err
    # the default configuration shows the paper's phenomenon: most flows collapse (finite s_1); one report, as
    # JSON, with the figures (the text form is checked in test_sweep_resume_and_report)
    assert main(["report", "out", "--json"]) == 0
    S = json.loads(capsys.readouterr().out)
    print(f"default sweep: {S['frac_full']:.1%} of {S['members']} flows collapse; {seconds:.1f} s")
    assert S["frac_full"] > 0.75 and S["rates_fitted"] > 0.5 * S["members"]
    assert all((tmp_path / "out" / p).stat().st_size > 1000 for p in ("s1_histogram.png", "rates.png", "gap.png"))


def test_config_is_a_directory_or_unreadable(tmp_path, monkeypatch, capsys):
    """`truncflow sweep .` (a directory as CONFIG): one line, exit 2, no traceback, nothing created."""
    monkeypatch.chdir(tmp_path)                      # in process: the entry point's exit status is checked above
    assert main(["sweep", ".", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("truncflow: error: CONFIG: . is a directory, not a TOML file")
    assert not (tmp_path / "out").exists()
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[data]\n")
    assert main(["sweep", str(binary), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"truncflow: error: CONFIG: {binary} is not valid TOML (it is not UTF-8 text)\n"
    out = tmp_path / "o2"
    out.mkdir()
    (out / "manifest.json").write_text("{not json")
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(TINY))
    assert main(["sweep", str(cfg), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"truncflow: error: --out {out}: {out / 'manifest.json'} is not valid JSON")


def test_too_large_is_refused_unless_yes(tmp_path, monkeypatch, capsys):
    """A sweep beyond the limits is refused before anything is written (exit 2, naming --yes); --yes runs it."""
    import truncflow.plan
    huge = tmp_path / "huge.toml"
    huge.write_text("[data]\nQ = 32\nN = 100000\n[ensemble]\nsize = 100000000\n")      # about 75 TiB
    t0 = time.perf_counter()
    assert main(["sweep", str(huge), "--out", str(tmp_path / "huge")]) == 2
    err = capsys.readouterr().err
    assert time.perf_counter() - t0 < 60 and not (tmp_path / "huge").exists()
    assert err.splitlines()[0].startswith("sweep: 100,000,000 flows in ")
    assert err.splitlines()[1] == (
        f"truncflow: error: the sweep is too large to start without a second look: 100,000,000 flows (more than "
        f"10,000,000) and about 75.5 TiB of output (more than 10.0 GiB); check {huge} ([ensemble] size, [data] N "
        f"and Q, [time] t_end, [integrator] save_every) or add --yes to run it anyway")
    small = tmp_path / "small.toml"                          # the same rule with a lower limit, to run with --yes
    small.write_text(toml(SMALL))
    monkeypatch.setattr(truncflow.plan, "MAX_FLOWS", 5)           # plan_limits reads it at each call
    assert main(["sweep", str(small), "--out", str(tmp_path / "s"), "--no-progress"]) == 2
    assert "12 flows (more than 5)" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main(["sweep", str(small), "--out", str(tmp_path / "s"), "--no-progress", "--yes"]) == 0
    assert read_manifest(str(tmp_path / "s"))["complete"]


def test_corrupt_and_missing_chunks_and_file_modes(tmp_path, capsys):
    """Result files get the mode of any new file (0644 under umask 022, 0600 under 077); `report` names a corrupt
    chunk as corrupt and a deleted one as missing; --resume recomputes both, bitwise."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml(SMALL))
    old = os.umask(0o022)
    try:
        out = str(tmp_path / "out")
        assert main(["sweep", str(cfg), "--out", out, "--no-progress"]) == 0
        os.umask(0o077)
        private = str(tmp_path / "private")
        assert main(["sweep", str(cfg), "--out", private, "--no-progress"]) == 0
    finally:
        os.umask(old)
    for d, mode in ((out, 0o644), (private, 0o600)):
        assert {stat.S_IMODE(os.stat(os.path.join(d, f)).st_mode) for f in os.listdir(d)} == {mode}, d
    ref, man = load_sweep(out)
    with open(os.path.join(out, man["chunks"]["1"]["file"]), "r+b") as fh:
        fh.seek(100)
        fh.write(b"bit rot")
    os.remove(os.path.join(out, man["chunks"]["2"]["file"]))
    capsys.readouterr()
    assert main(["report", out]) == 2
    assert capsys.readouterr().err == (
        f"truncflow: error: out_dir: in {out}, 1 of 3 chunks are corrupt (chunk_00001.npz: the file differs from the "
        f"SHA-256 in the manifest); 1 of 3 chunks are missing (chunk_00002.npz); resume the sweep first (it computes "
        f"them again)\n")
    assert main(["sweep", str(cfg), "--out", out, "--resume", "--no-progress"]) == 0
    assert f"sweep: chunk_00001.npz in {out} is corrupt (its SHA-256 differs" in capsys.readouterr().err
    res, _ = load_sweep(out)
    assert all(np.array_equal(ref[k], res[k], equal_nan=True) for k in ref)
