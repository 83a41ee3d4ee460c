"""Module notebooks are committed clean: no outputs, a `parameters` cell first, one manifest each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "workflow" / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped_and_parameterised(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged"
    for cell in code:
        assert cell.get("outputs") == [], f"{path.name}: outputs committed (strip them)"
        assert cell.get("execution_count") is None, f"{path.name}: execution counts committed"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert (REPO / "workflow" / "analyses" / f"{path.stem}.yaml").is_file()


def test_every_manifest_has_a_notebook():
    for manifest in (REPO / "workflow" / "analyses").glob("*.yaml"):
        assert (REPO / "workflow" / "notebooks" / f"{manifest.stem}.ipynb").is_file(), manifest
        data = yaml.safe_load(manifest.read_text())
        assert data.get("owners"), manifest
