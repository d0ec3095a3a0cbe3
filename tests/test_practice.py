"""The studies of studies/practice (chapter 50, "Theory and practice"): every configuration is valid,
has its committed summary, and the summary was made from exactly that configuration; the rerun script
is the one the README names. (The chapter itself runs a tiny sweep through the same functions.)"""
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from truncflow.config import validate_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "studies" / "practice").glob("*.toml"))
RESULTS = ROOT / "studies" / "results"


def test_there_are_studies():
    assert len(CONFIGS) >= 8
    assert "bash studies/run_all.sh" in (ROOT / "studies" / "README.md").read_text()
    assert (ROOT / "studies" / "run_all.sh").exists()


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_and_its_summary(path):
    raw = tomllib.loads(path.read_text())
    cfg = validate_config(raw)
    assert cfg["flow"]["kind"] == "training" and cfg["data"]["kind"] == "sklearn"
    assert cfg["ensemble"]["size"] >= 32  # at least 32 seeds per setting (issue 13)
    info = json.loads((RESULTS / f"{path.stem}.json").read_text())
    assert info["config"] == cfg, "the committed summary was made from another configuration"
    assert info["summary"]["members"] == cfg["ensemble"]["size"]
    with np.load(RESULTS / f"{path.stem}.npz") as z:
        T = cfg["training"]["steps"] // cfg["training"]["log_every"] + 1
        L = cfg["flow"]["layers"]
        assert z["step"].shape == (T,) and z["q_truncated_fraction"].shape == (3, T, L)
        assert z["q_nc1"].shape == (3, T, L + 1)
        assert z["separation_step"].shape == (cfg["ensemble"]["size"],)
        q = z["q_cost"]
        assert np.all(q[0] <= q[1]) and np.all(q[1] <= q[2])  # quartiles in order
