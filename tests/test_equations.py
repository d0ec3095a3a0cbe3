"""The equation index: citation parsing, the paper's numbering, and the library's citations."""
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import truncflow
from truncflow.equations import (PAPER_EQUATION_COUNTS, cited_equations, check_citations, equation_index,
                                 find_equation, paper_equations)

PAPER = Path(__file__).resolve().parents[2] / "shared" / "paper" / "chen-2025-effective-gradient-flow.md"


@pytest.mark.skipif(not PAPER.exists(), reason="the paper's text is not beside this checkout")
def test_equation_counts_match_the_paper():
    text = PAPER.read_text()
    nums = set(re.findall(r"\\tag\{(\d+\.\d+)\}", text)) | set(re.findall(r"\\quad\s*\((\d+\.\d+)\)", text)) \
        | set(re.findall(r"\((\d+\.\d+)\)\s*\$\$", text))
    assert nums == set(paper_equations())


@given(st.sampled_from(sorted(PAPER_EQUATION_COUNTS)), st.integers(1, 20), st.integers(0, 5))
def test_ranges_expand_to_every_equation_in_between(section, start, length):
    a, b = f"{section}.{start}", f"{section}.{start + length}"
    got = cited_equations(f"see Eqs. ({a})-({b}).")
    assert got == [f"{section}.{k}" for k in range(start, start + length + 1)]


def test_a_bad_citation_is_caught(tmp_path, monkeypatch):
    import truncflow.network as net
    def fake():
        """Implements Eq. (2.99), which the paper does not have."""
    fake.__module__ = "truncflow.network"
    monkeypatch.setattr(net, "fake_function", fake, raising=False)
    monkeypatch.setattr(net, "__all__", net.__all__ + ["fake_function"])
    with pytest.raises(ValueError, match=r"cites 2\.99"):
        check_citations()


