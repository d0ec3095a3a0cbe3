#!/usr/bin/env python3
"""The floor check, run by `.ci/floors.sh` in a fresh venv that holds exactly the lowest versions the package
declares (`.ci/floors.txt`, the `>=` floors of pyproject.toml) and truncflow installed from the repository
without extras. It checks, as a pip user would meet them:

1. the installed versions are exactly the pins of floors.txt (pip did not pick others);
2. `import truncflow` loads the installed package, not the source tree;
3. the README's quick start, run as printed;
4. the command line: `truncflow --version`, `truncflow example-config > cfg.toml`, a short `truncflow sweep`
   (the printed file with a smaller ensemble and a shorter time) with its progress bar, `truncflow report`;
5. core float64 checks: the closed-form velocities against `jax.grad` (separated, Eqs. (3.36)-(3.37);
   general, Eqs. (5.4)-(5.7)) and the fused Pallas kernel (interpret mode) against the closed form, to 1e-9;
   a few figures (plot_sectors, a kernel-free player) and a short gradient descent (train_network).

Usage: python .ci/floors_check.py [REPO] [--pins FILE] [--consistency-only]
  REPO: the repository root (default: the parent of .ci/); FILE: the pins (default: REPO/.ci/floors.txt;
  another FILE, e.g. the newest versions on a newer Python, is not compared with pyproject.toml);
  --consistency-only: only check that FILE agrees with pyproject.toml (any Python >= 3.11, nothing installed).
The agreement rule (`floor_mismatches`, also run by tests/test_packaging.py): every [project] dependency of
pyproject.toml is `name>=X` and FILE pins `name==X`; FILE pins nothing else but jaxlib (the lowest that the
pinned jax accepts: jax does not pin its jaxlib exactly).
Exit status 0 when everything passes; otherwise the first failure is printed, naming what is wrong.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import argparse

REPO = Path(__file__).resolve().parents[1]           # set by main() from the command line
PINS = REPO / ".ci" / "floors.txt"
BIN = Path(sys.executable).parent
TOL = 1e-9


class FloorFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise FloorFailure(message)


def step(name):
    def wrap(f):
        def run(*a, **k):
            t0 = time.perf_counter()
            print(f"floors: {name} ...", flush=True)
            out = f(*a, **k)
            print(f"floors: {name}: ok ({time.perf_counter() - t0:.1f} s)", flush=True)
            return out
        return run
    return wrap


TRANSITIVE_PINS = {"jaxlib"}       # pinned in floors.txt although pyproject.toml does not name them


def _version_key(v: str) -> tuple:
    parts = v.split(".")
    check(all(p.isdigit() for p in parts), f"version {v!r}: only plain numeric versions are used for floors")
    nums = [int(p) for p in parts]
    while nums and nums[-1] == 0:
        nums.pop()
    return tuple(nums)


def floor_mismatches(pyproject: Path, pins_file: Path) -> list[str]:
    """Where pins_file (name==X lines) and pyproject's [project] dependencies (name>=X) disagree; [] if nowhere."""
    import tomllib
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins, problems, floors = read_pins(pins_file), [], {}
    for d in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)\s*", d)
        if not m:
            problems.append(f"pyproject.toml: dependency {d!r} is not of the form 'name>=X' (a checked floor)")
            continue
        floors[m.group(1).lower()] = m.group(2)
    for name, floor in floors.items():
        if name not in pins:
            problems.append(f"{pins_file.name}: no pin for {name} (pyproject.toml: {name}>={floor}; add {name}=={floor})")
        elif _version_key(pins[name]) != _version_key(floor):
            problems.append(f"{pins_file.name}: {name}=={pins[name]}, but pyproject.toml declares {name}>={floor}")
    for name in sorted(set(pins) - set(floors) - TRANSITIVE_PINS):
        problems.append(f"{pins_file.name}: pins {name}, which is not a dependency in pyproject.toml")
    for name in sorted(TRANSITIVE_PINS - set(pins)):
        problems.append(f"{pins_file.name}: no pin for {name} (the lowest version the pinned jax accepts)")
    return problems


def read_pins(path: Path) -> dict[str, str]:
    pins = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][A-Za-z0-9.]*)", line)
        check(m, f"{path}:{n}: expected 'name==version', got {line!r}")
        pins[m.group(1).lower()] = m.group(2)
    return pins


def check_python():
    import tomllib
    spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    m = re.fullmatch(r">=\s*3\.(\d+)", spec)
    check(m, f"pyproject.toml: requires-python = {spec!r}, expected '>=3.N'")
    if sys.version_info[:2] != (3, int(m.group(1))):
        print(f"floors: note: Python {sys.version.split()[0]} is not the lowest supported Python 3.{m.group(1)} "
              f"(requires-python {spec}); the floors are meant to be checked on 3.{m.group(1)}")


@step("installed versions equal the pins")
def check_versions():
    pins = read_pins(PINS)
    for name, want in pins.items():
        try:
            got = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise FloorFailure(f"{name} is not installed ({PINS.name} pins {name}=={want})") from None
        check(got == want, f"{name} {got} is installed, but {PINS.name} pins {name}=={want}")
    print("  " + ", ".join(f"{k} {v}" for k, v in pins.items()) + f"; Python {sys.version.split()[0]}")


def run(args, cwd, *, timeout=900, env=None):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise FloorFailure(f"{' '.join(map(str, args))} failed with exit status {r.returncode}:\n"
                           f"--- stdout ---\n{r.stdout[-4000:]}\n--- stderr ---\n{r.stderr[-6000:]}")
    return r


@step("import truncflow (the installed package)")
def check_import(tmp):
    r = run([sys.executable, "-c", "import truncflow, sys; print(truncflow.__file__); print(truncflow.__version__)"], tmp)
    path, version = r.stdout.split()
    check(not Path(path).resolve().is_relative_to(REPO / "truncflow"),
          f"import truncflow loaded {path}, the source tree: the check must use the installed package")
    check(version == importlib.metadata.version("truncflow"),
          f"truncflow.__version__ {version} differs from the installed distribution's version")


def readme_quick_start() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"^## Quick start\s*$.*?^```python\n(.*?)^```", text, re.S | re.M)
    check(m, "README.md: no '## Quick start' section with a ```python block")
    return m.group(1)


@step("README quick start")
def check_quick_start(tmp):
    code = readme_quick_start()
    (Path(tmp) / "quick_start.py").write_text(code)
    r = run([sys.executable, "quick_start.py"], tmp)
    check(r.stdout.strip(), "the quick start printed nothing (it ends with a print)")


def set_key(text: str, table: str, key: str, value: str) -> str:
    """Replace the value of `key` in `[table]` of a TOML text written by `truncflow example-config`."""
    out, section, done = [], None, False
    for line in text.splitlines(keepends=True):
        m = re.match(r"\[(\w+)\]\s*$", line)
        if m:
            section = m.group(1)
        elif section == table and re.match(rf"{re.escape(key)}\s*=", line):
            line, done = f"{key} = {value}\n", True
        out.append(line)
    check(done, f"truncflow example-config: no key {key} in [{table}]")
    return "".join(out)


@step("command line: --version, example-config, sweep, report")
def check_cli(tmp):
    exe = BIN / "truncflow"
    check(exe.exists(), f"{exe}: the console script 'truncflow' was not installed")
    r = run([exe, "--version"], tmp)
    check(r.stdout.strip() == f"truncflow {importlib.metadata.version('truncflow')}",
          f"truncflow --version printed {r.stdout!r}")
    cfg = run([exe, "example-config"], tmp).stdout
    import tomllib
    tomllib.loads(cfg)                                   # the printed file is TOML
    short = cfg
    for table, key, value in [("ensemble", "size", "24"), ("ensemble", "chunk_size", "8"),
                              ("time", "t_end", "2.0")]:
        short = set_key(short, table, key, value)
    (Path(tmp) / "cfg.toml").write_text(short)
    r = run([exe, "sweep", "cfg.toml", "--out", "out"], tmp)      # with its progress bar (tqdm) on stderr
    check("24 flows in 3 chunks of 8" in r.stdout, f"truncflow sweep printed {r.stdout!r}")
    r = run([exe, "report", "out"], tmp)
    check("fraction reaching full truncation" in r.stdout, f"truncflow report printed {r.stdout!r}")
    for png in ("s1_histogram.png", "rates.png", "gap.png"):
        check((Path(tmp) / "out" / png).stat().st_size > 1000, f"truncflow report did not write out/{png}")


CORE = r"""
import jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_enable_x64", True)
import matplotlib
matplotlib.use("Agg")
import truncflow as tf

TOL = float(__import__("sys").argv[1])
def maxdiff(a, b):
    a, b = jnp.asarray(a), jnp.asarray(b)
    assert a.dtype == b.dtype == jnp.float64, (a.dtype, b.dtype)
    return float(jnp.max(jnp.abs(a - b)))

key = jax.random.PRNGKey(0)
worst = {}
for Q, N in [(2, 16), (5, 48)]:
    k1, k2, k3, k4, key = jax.random.split(key, 5)
    R = tf.haar_orthogonal(k1, Q)
    beta = 0.5 * jax.random.normal(k2, (Q,))
    X = jax.random.normal(k3, (N, Q))
    y = jax.random.normal(k4, (Q,))
    d = max(maxdiff(a, b) for a, b in zip(tf.separated_velocity(R, beta, X, y),
                                          tf.separated_velocity_autodiff(R, beta, X, y)))
    assert d <= TOL, f"separated_velocity differs from separated_velocity_autodiff by {d:.3g} (Q={Q})"
    worst["separated"] = max(worst.get("separated", 0.0), d)
for Q, L, J, N in [(2, 2, 2, 20), (4, 3, 3, 36)]:
    k1, k2, k3, k4, key = jax.random.split(key, 5)
    Rs = jnp.stack([tf.haar_orthogonal(k, Q) for k in jax.random.split(k1, L)])
    betas = 0.5 * jax.random.normal(k2, (L, Q))
    X = jax.random.normal(k3, (N, Q))
    labels = jnp.arange(N) % J
    Y = jax.random.normal(k4, (J, Q))
    d = max(maxdiff(a, b) for a, b in zip(tf.general_velocity(Rs, betas, X, labels, Y),
                                          tf.general_velocity_autodiff(Rs, betas, X, labels, Y)))
    assert d <= TOL, f"general_velocity differs from general_velocity_autodiff by {d:.3g} (Q={Q}, L={L}, J={J})"
    worst["general"] = max(worst.get("general", 0.0), d)

from truncflow.fused import separated_velocity_fused      # the Pallas kernel, in interpret mode on CPUs
k1, k2, k3, k4, key = jax.random.split(key, 5)
R, beta = tf.haar_orthogonal(k1, 3), 0.5 * jax.random.normal(k2, (3,))
X, y = jax.random.normal(k3, (40, 3)), jax.random.normal(k4, (3,))
d = max(maxdiff(a, b) for a, b in zip(separated_velocity_fused(R, beta, X, y, tile=16),
                                      tf.separated_velocity(R, beta, X, y)))
assert d <= TOL, f"separated_velocity_fused (interpret mode) differs from separated_velocity by {d:.3g}"
worst["fused"] = d

Ws, bs = tf.random_network(jax.random.PRNGKey(0), Q=2, L=2)
Wc, bc, betas = tf.cumulative_parameters(Ws, bs)
X, labels = tf.clustered_data(jax.random.PRNGKey(1), [[0., 0.], [2., 1.]], 20, radius=0.3)
ax = tf.plot_sectors(Wc[0], betas[0], X, labels=labels)
ax.figure.savefig("sectors.png")
from truncflow.plot import player_html, animate_truncation    # plotting internals live in their module
html = player_html(animate_truncation(Wc[0], betas[:2] * 1.0, X, labels=labels))
assert "<script" in html and "http" not in html
log = tf.train_network(jax.random.PRNGKey(2), X, labels, jnp.array([[1., 0.], [0., 1.]]), L=2, steps=20, lr=0.05,
                       log_every=10, progress=True)               # plain gradient descent, with its tqdm bar
print(" ".join(f"{k} {v:.2e}" for k, v in worst.items()))
"""


@step(f"core float64 checks (closed form = jax.grad = fused kernel, to {TOL:g}) and figures")
def check_core(tmp):
    (Path(tmp) / "core.py").write_text(CORE)
    r = run([sys.executable, "core.py", repr(TOL)], tmp, env={"MPLBACKEND": "Agg"})
    print("  largest differences: " + r.stdout.strip().splitlines()[-1])


def main() -> int:
    global REPO, PINS
    ap = argparse.ArgumentParser(description="truncflow's floor check (see the module docstring)")
    ap.add_argument("repo", nargs="?", default=str(REPO), help="the repository root")
    ap.add_argument("--pins", default=None, help="the pinned versions (default: REPO/.ci/floors.txt)")
    ap.add_argument("--consistency-only", action="store_true",
                    help="only check that the pins agree with pyproject.toml's floors")
    args = ap.parse_args()
    REPO = Path(args.repo).resolve()
    PINS = Path(args.pins).resolve() if args.pins else REPO / ".ci" / "floors.txt"
    try:
        check(PINS.is_file(), f"{PINS}: no such file (the pinned floor versions)")
        if args.pins is None or args.consistency_only:      # --pins FILE: another set (e.g. newer versions)
            problems = floor_mismatches(REPO / "pyproject.toml", PINS)
            check(not problems, "the pins disagree with pyproject.toml:\n  " + "\n  ".join(problems))
            print(f"floors: {PINS.name} agrees with pyproject.toml's floors")
        if args.consistency_only:
            return 0
        check_python()
        check_versions()
        with tempfile.TemporaryDirectory(prefix="truncflow-floors-") as tmp:
            check_import(tmp)
            check_quick_start(tmp)
            check_core(tmp)
            check_cli(tmp)
    except FloorFailure as e:
        print(f"floors: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"floors: all checks passed with the versions of {PINS.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
