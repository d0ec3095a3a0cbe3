"""What pip users meet: the console script and the example configuration it prints, optional extras, the license,
the version, the declared floors (.ci/floors.txt against pyproject.toml), the README's quick start and commands."""
import hashlib
import importlib.util
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import truncflow
from truncflow.validate import OPTIONAL_EXTRAS, optional_import

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README = (ROOT / "README.md").read_text()


def console_script() -> Path:
    exe = Path(sys.executable).parent / "truncflow"
    assert exe.exists(), f"{exe}: the console script is not installed; run: pip install -e {ROOT}"
    return exe


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=ROOT / "tests", **kw)


# One subprocess for the console script (the entry point pip installs): it prints the example configuration.
# Elsewhere: `python -m truncflow` runs in nbs/42_main, `python -m truncflow.cli` (--help, example-config, sweep)
# in tests/test_cli.py, --version and "the example configuration validates to the defaults" in nbs/41_cli and nbs/34_config, and
# optional_import's message and unknown extra in nbs/01_validation.
def test_console_script_prints_a_complete_commented_example_config():
    from truncflow.config import CONFIG_KEYS
    from truncflow.config import example_config
    r = run([console_script(), "example-config"])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout == example_config()
    raw = tomllib.loads(r.stdout)
    assert {(s, k) for s, table in raw.items() for k in table} == set(CONFIG_KEYS)    # complete
    lines = r.stdout.splitlines()
    keys = [i for i, l in enumerate(lines) if l.strip() and not l.startswith(("#", "["))]
    assert len(keys) == len(CONFIG_KEYS)
    assert all(" # " in lines[i] or lines[i - 1].startswith("#") for i in keys), "every key carries a comment"


def test_version_is_major_minor_patch():
    assert re.fullmatch(r"\d+\.\d+\.\d+", truncflow.__version__)


def test_optional_import_does_not_mask_a_broken_module(tmp_path, monkeypatch):
    (tmp_path / "truncflow_broken_dep.py").write_text("import truncflow_missing_inner_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as e:
        optional_import("truncflow_broken_dep", "widgets")
    assert e.value.name == "truncflow_missing_inner_module" and "pip install" not in str(e.value)


def test_explorer_without_ipywidgets_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)      # makes `import ipywidgets` fail, as if absent
    from truncflow.widgets import Explorer
    with pytest.raises(ModuleNotFoundError, match=re.escape("needs ipywidgets: pip install 'truncflow[widgets]'")):
        Explorer.from_preset("two clusters")


def test_extras():
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = lambda reqs: {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in reqs}
    assert names(extras["widgets"]) == {"ipywidgets"}
    assert names(extras["notebook"]) >= {"jupyterlab", "ipywidgets", "ipykernel"}
    assert names(extras["datasets"]) == {"scikit-learn"}
    assert set(OPTIONAL_EXTRAS) <= set(extras), "every extra optional_import may name must exist"
    assert "truncflow[widgets,notebook,datasets]" in extras["dev"]


def test_license():
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    # the canonical text of https://www.apache.org/licenses/LICENSE-2.0.txt, byte for byte
    assert hashlib.md5(text.encode()).hexdigest() == "3b83ef96387f14655fc854ddc3c6bd57"


def test_python_versions():
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    cls = PYPROJECT["project"]["classifiers"]
    assert [c for c in cls if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)] == [
        f"Programming Language :: Python :: 3.{m}" for m in (11, 12, 13)]


def _floors_module():
    spec = importlib.util.spec_from_file_location("floors_check", ROOT / ".ci" / "floors_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_floors_txt_agrees_with_pyproject(tmp_path):
    fc = _floors_module()
    assert fc.floor_mismatches(ROOT / "pyproject.toml", ROOT / ".ci" / "floors.txt") == []
    pins = fc.read_pins(ROOT / ".ci" / "floors.txt")
    for dep in PYPROJECT["project"]["dependencies"]:
        name, floor = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", dep).groups()
        assert fc._version_key(pins[name.lower()]) == fc._version_key(floor)
    # and the check notices a disagreement
    bad = tmp_path / "floors.txt"
    bad.write_text((ROOT / ".ci" / "floors.txt").read_text().replace(f"numpy=={pins['numpy']}", "numpy==1.26.0")
                   + "scipy==1.12.0\n")
    problems = fc.floor_mismatches(ROOT / "pyproject.toml", bad)
    assert any("numpy==1.26.0, but pyproject.toml declares numpy>=" in p for p in problems), problems
    assert any("pins scipy, which is not a dependency" in p for p in problems), problems


def test_readme_quick_start_runs_as_printed(tmp_path):
    code = re.search(r"^## Quick start\s*$.*?^```python\n(.*?)^```", README, re.S | re.M).group(1)
    (tmp_path / "quick_start.py").write_text(code)
    r = subprocess.run([sys.executable, "quick_start.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_readme_commands_exist():
    from truncflow.cli import build_parser
    assert "make book" in README and "make test" in README and "CONTRIBUTING.md" in README
    assert "pip install truncflow" in README and 'pip install -U "jax[cuda12]"' in README
    for extra in ("widgets", "notebook", "datasets"):
        assert f"pip install 'truncflow[{extra}]'" in README
    lines = [l.split("#")[0] for block in re.findall(r"```bash\n(.*?)```", README, re.S) for l in block.splitlines()]
    commands = [c.strip() for l in lines for c in l.split(";") if c.strip().startswith("truncflow ")]
    assert len(commands) >= 5, commands
    for c in commands:
        argv = shlex.split(c.split(">")[0])[1:]
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:                   # --help and --version exit 0; a wrong command exits 2
            assert e.code == 0, f"README.md: '{c}' is not a valid truncflow command line"
