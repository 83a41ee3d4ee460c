"""variables: record numbers from notebooks, merge them, evaluate published claims."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeloc.pipeline import variables
from spikeloc.pipeline.variables import VariablesError


def manifest(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "analyses"
    d.mkdir(exist_ok=True)
    (d / f"{name}.yaml").write_text(text)
    return d


def test_record_writes_value_text_and_unit(tmp_path):
    path = tmp_path / "results" / "variables" / "demo.json"
    assert (
        variables.record("accuracy_pct", 82.6171875, ".1f", module="demo", path=path, unit="%")
        == 82.6171875
    )
    variables.record("n_test", np.int64(4096), ",", module="demo", path=path)
    variables.record("sigma_rad", torch.tensor(0.5731), ".3f", module="demo", path=path)
    variables.record("device", "cpu", module="demo", path=path)
    data = json.loads(path.read_text())
    assert data["module"] == "demo"
    v = data["variables"]
    assert v["accuracy_pct"] == {"value": 82.6171875, "text": "82.6", "unit": "%"}
    assert v["n_test"] == {"value": 4096, "text": "4,096"}
    assert v["sigma_rad"]["text"] == "0.573"
    assert v["device"]["text"] == "cpu"
    assert not list(path.parent.glob("*.tmp"))  # atomic: no temp files left behind


def test_default_path_and_recorder_start_fresh(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    variables.record("old", 1, module="demo")
    assert variables.load("results/variables/demo.json") == {"old": {"value": 1, "text": "1"}}
    rec = variables.recorder("demo")  # a re-run notebook leaves no stale numbers
    rec("new", 2.5, ".2f")
    assert variables.load(rec.path) == {"new": {"value": 2.5, "text": "2.50"}}


@pytest.mark.parametrize(
    ("name", "value", "fmt", "match"),
    [
        ("Accuracy", 1.0, None, "lowercase snake case"),
        ("acc", math.nan, None, "must be finite"),
        ("acc", math.inf, None, "must be finite"),
        ("acc", [1, 2], None, "must be a number"),
        ("acc", np.array([1.0, 2.0]), None, "must be a scalar"),
        ("acc", "text", ".2f", "format '.2f' does not apply"),
    ],
)
def test_record_rejects_bad_input(tmp_path, name, value, fmt, match):
    with pytest.raises(VariablesError, match=match):
        variables.record(name, value, fmt, module="demo", path=tmp_path / "demo.json")


def test_record_refuses_another_modules_file(tmp_path):
    path = tmp_path / "shared.json"
    variables.record("a", 1, module="one", path=path)
    with pytest.raises(VariablesError, match="holds 'one', not 'two'"):
        variables.record("b", 2, module="two", path=path)


def test_merge_keys_by_module_and_checks_declarations(tmp_path):
    analyses = manifest(
        tmp_path,
        "demo",
        "title: Demo\nowners: [x]\nfigures: []\n"
        "variables:\n  - {name: accuracy_pct, unit: '%', description: test accuracy}\n"
        "  - {name: n_test}\n",
    )
    vdir = tmp_path / "results" / "variables"
    variables.record("accuracy_pct", 80.0, ".1f", module="demo", path=vdir / "demo.json")
    with pytest.raises(
        VariablesError,
        match=r"demo.json: n_test: declared in .*demo.yaml \(variables\[1\]\) but not recorded",
    ):
        variables.merge([vdir / "demo.json"], tmp_path / "variables.json", analyses_dir=analyses)
    variables.record("n_test", 100, module="demo", path=vdir / "demo.json")
    doc = variables.merge([vdir / "demo.json"], tmp_path / "variables.json", analyses_dir=analyses)
    assert doc["modules"] == ["demo"]
    entry = json.loads((tmp_path / "variables.json").read_text())["variables"]["demo.accuracy_pct"]
    assert entry == {
        "value": 80.0,
        "text": "80.0",
        "unit": "%",
        "module": "demo",
        "description": "test accuracy",
    }
    assert variables.load(tmp_path / "variables.json")["demo.n_test"]["value"] == 100


def test_merge_rejects_a_module_without_manifest(tmp_path):
    analyses = manifest(tmp_path, "demo", "title: Demo\nowners: [x]\nfigures: []\n")
    variables.record("a", 1, module="ghost", path=tmp_path / "ghost.json")
    with pytest.raises(VariablesError, match="no workflow manifest for 'ghost'"):
        variables.merge([tmp_path / "ghost.json"], tmp_path / "out.json", analyses_dir=analyses)


CLAIMS = """\
title: Demo
owners: [x]
figures: []
variables: [{name: accuracy_pct}, {name: rate_min_hz}, {name: n_params}]
claims:
  - {name: acc, variable: accuracy_pct, published: 82.6, tolerance: 0.05, text: Accuracy.}
  - {name: acc_far, variable: accuracy_pct, published: 90, tolerance: 5, text: Far.}
  - {name: rate, variable: rate_min_hz, published: [110, 150], tolerance: 0, text: Range.}
  - {name: rate_tol, variable: rate_min_hz, published: [120, 150], tolerance: 4, text: Tol.}
  - {name: params, variable: n_params, published: 896, tolerance: 0, text: Count., note: Known.}
  - {name: other, variable: other_module.thing, published: 1, tolerance: 0, text: Missing.}
"""


def test_claims_are_evaluated_against_the_variables(tmp_path):
    analyses = manifest(tmp_path, "demo", CLAIMS)
    path = tmp_path / "demo.json"
    variables.record("accuracy_pct", 82.6171875, ".1f", module="demo", path=path, unit="%")
    variables.record("rate_min_hz", 116.7, ".1f", module="demo", path=path)
    variables.record("n_params", 1696, ",", module="demo", path=path)
    variables.merge([path], tmp_path / "variables.json", analyses_dir=analyses)
    out = tmp_path / "claims.json"
    results = {
        r["name"]: r for r in variables.evaluate_claims(tmp_path / "variables.json", analyses, out)
    }
    assert results["acc"]["within"] and results["acc"]["status"] == "reproduced"
    assert results["acc"]["difference"] == pytest.approx(0.0171875)
    assert results["acc"]["unit"] == "%"
    assert not results["acc_far"]["within"] and results["acc_far"]["status"] == "differs"
    assert results["rate"]["within"] and results["rate"]["published_text"] == "110–150"
    assert results["rate_tol"]["within"] and results["rate_tol"]["difference"] == pytest.approx(
        -3.3
    )
    assert not results["params"]["within"] and results["params"]["measured_text"] == "1,696"
    assert results["params"]["note"] == "Known."
    assert results["other"]["status"] == "missing"
    doc = json.loads(out.read_text())
    assert doc["n_claims"] == 6 and doc["n_within"] == 3


def test_command_line(tmp_path, capsys):
    analyses = manifest(tmp_path, "demo", CLAIMS)
    path = tmp_path / "variables" / "demo.json"
    variables.record("accuracy_pct", 82.6, ".1f", module="demo", path=path)
    variables.record("rate_min_hz", 116.7, ".1f", module="demo", path=path)
    variables.record("n_params", 1696, module="demo", path=path)
    merged = tmp_path / "variables.json"
    assert (
        variables.main(["merge", "--analyses", str(analyses), "--out", str(merged), str(path)]) == 0
    )
    claims = tmp_path / "claims.json"
    args = ["claims", "--variables", str(merged), "--analyses", str(analyses), "--out", str(claims)]
    assert variables.main(args) == 0
    assert "3/6 claims within tolerance" in capsys.readouterr().out
    assert variables.main([*args, "--strict"]) == 1
    assert variables.main(["merge", "--out", str(merged), str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such file" in capsys.readouterr().err


def test_project_root_is_found_from_a_subdirectory(tmp_path):
    (tmp_path / "workflow" / "analyses").mkdir(parents=True)
    (tmp_path / "workflow" / "notebooks").mkdir()
    assert variables.project_root(tmp_path / "workflow" / "notebooks") == tmp_path.resolve()
    with pytest.raises(variables.SpikelocError):
        variables.project_root(tmp_path.parent)
