"""Hygiene of the notebooks that are the source of library and book."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT / "nbs").glob("*.ipynb"))


def _cells(nb):
    return json.loads(nb.read_text())["cells"]


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.name)
def test_nbdev_directive_cells_are_hidden_in_the_book(nb):
    for c in _cells(nb):
        src = "".join(c["source"]).lstrip()
        if c["cell_type"] == "code" and (src.startswith("#| default_exp") or src.startswith("#| hide")):
            assert "remove-cell" in c.get("metadata", {}).get("tags", []), f"{nb.name}: tag this cell remove-cell: {src[:40]!r}"


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(nb):
    for c in _cells(nb):
        if c["cell_type"] == "code":
            assert not c.get("outputs"), f"{nb.name}: clear outputs before committing (the book executes them)"


def test_every_notebook_is_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    for nb in NBS:
        assert f"nbs/{nb.stem}" in toc, f"{nb.name} is not in _toc.yml"


def test_exported_module_names_follow_notebook_names():
    for nb in NBS:
        for c in _cells(nb):
            m = re.match(r"#\|\s*default_exp\s+(\S+)", "".join(c["source"]).strip())
            if m and m.group(1) != "__init__":
                assert (ROOT / "truncflow" / f"{m.group(1)}.py").exists(), f"{nb.name}: truncflow/{m.group(1)}.py not exported"
