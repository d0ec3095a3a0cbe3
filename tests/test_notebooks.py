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


def _toc_order():
    return re.findall(r"file:\s*nbs/(\S+)", (ROOT / "_toc.yml").read_text())


def test_file_numbers_follow_the_reading_order():
    order = _toc_order()
    numbers = [int(name.split("_")[0]) for name in order]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), (
        f"the numbers of nbs/*.ipynb must increase along _toc.yml: {order}")


def _chapter_modules():
    """{module: chapter stem} from the default_exp cells."""
    out = {}
    for nb in NBS:
        for c in _cells(nb):
            m = re.match(r"#\|\s*default_exp\s+(\S+)", "".join(c["source"]).strip())
            if m:
                out[m.group(1)] = nb.stem
    return out


def test_no_chapter_imports_a_module_of_a_later_chapter():
    order = _toc_order()
    chapter_of = _chapter_modules()
    late = []
    for nb in NBS:
        if nb.stem == "00_index":      # the landing page shows the library in use, before any chapter
            continue
        code = "\n".join("".join(c["source"]) for c in _cells(nb) if c["cell_type"] == "code")
        used = set(re.findall(r"(?:from|import)\s+truncflow\.(\w+)", code))
        for names in re.findall(r"from\s+truncflow\s+import\s+\(?([\w\s,]+)\)?", code):
            used |= {n.strip() for n in names.split(",")} & set(chapter_of)
        for mod in used:
            if mod in chapter_of and order.index(chapter_of[mod]) > order.index(nb.stem):
                late.append(f"{nb.stem} imports truncflow.{mod} (chapter {chapter_of[mod]})")
    assert not late, "chapters in reading order: " + "; ".join(sorted(late))


@pytest.mark.parametrize("nb", NBS, ids=lambda p: p.name)
def test_colab_installs_truncflow_before_the_first_import(nb):
    """The book's Colab button opens a chapter where truncflow is not installed: the hidden cell that
    installs it (only on Colab) must come before the first code cell that imports truncflow."""
    code = ["".join(c["source"]) for c in _cells(nb) if c["cell_type"] == "code"]
    uses = [i for i, s in enumerate(code) if re.search(r"^\s*(from|import) truncflow", s, re.M)]
    if not uses:
        return
    colab = [i for i, s in enumerate(code) if '"google.colab" in sys.modules' in s]
    assert colab and colab[0] < uses[0], f"{nb.name}: copy the Colab install cell before the first import"
    assert "git+https://github.com/truncflow/truncflow" in code[colab[0]]
