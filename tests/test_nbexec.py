"""book/nbexec.py with kernels forked from a preloaded template (book/forkkernel.py): each notebook
still runs in a process of its own, from a clean start, and a failing cell is reported with its
notebook.

A notebook cannot test this: it is what runs the notebooks."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return str(path)


def _run(tmp_path, *notebooks):
    return subprocess.run(
        [sys.executable, str(ROOT / "book" / "nbexec.py"), str(tmp_path / "cache"), *notebooks],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_forked_kernels_start_clean_and_failures_are_reported(tmp_path):
    out = tmp_path / "seen.jsonl"
    record = (
        f"import os, sys, json, jax, truncflow.solution as s\n"
        f"row = dict(pid=os.getpid(), preloaded='jax' in sys.modules,\n"
        f"           x64=jax.config.jax_enable_x64,\n"
        f"           h=s.H_CORNER, cwd=os.getcwd())\n"
        f"open({str(out)!r}, 'a').write(json.dumps(row) + '\\n')"
    )
    mutate = "jax.config.update('jax_enable_x64', True); s.H_CORNER = 5.0"
    first = _notebook(tmp_path / "a.ipynb", record, mutate)
    second = _notebook(tmp_path / "b.ipynb", record)
    bad = _notebook(tmp_path / "c.ipynb", "x = 1", "1 / 0")
    r = _run(tmp_path, first, second, bad)  # one worker (its start-up costs 6 s of CPU)
    assert r.returncode != 0 and "ZeroDivisionError" in r.stdout + r.stderr
    assert "c.ipynb: cell 1" in r.stdout + r.stderr
    assert "no kernel template" not in r.stdout and "without forking" not in r.stdout, r.stdout
    a, b = [json.loads(line) for line in out.read_text().splitlines()]
    assert a["pid"] != b["pid"]  # a process per notebook
    assert a["preloaded"] and b["preloaded"]  # forked from the template
    assert not b["x64"] and b["h"] == a["h"] != 5.0  # nothing of notebook a is left in b
    assert a["cwd"] == b["cwd"] == str(tmp_path)  # the notebook's folder, as jupyter-cache sets
    assert r.stdout.count("[time]") == 3
