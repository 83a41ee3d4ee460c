"""The coverage table: published figures and claims against what the manifests regenerate."""

from __future__ import annotations

import shutil

import pytest
import yaml

from spikeloc.pipeline.coverage import coverage, main, markdown
from spikeloc.pipeline.validation import ProblemsError


def test_committed_coverage_table_is_current(repo_root):
    expected = markdown(coverage(repo_root / "workflow/analyses", root=repo_root))
    assert (repo_root / "docs/coverage.md").read_text() == expected, (
        "docs/coverage.md is stale: run `python -m spikeloc.pipeline.coverage --write "
        "docs/coverage.md` and commit it"
    )


def test_every_published_figure_and_claim_is_listed_once(repo_root):
    cov = coverage(repo_root / "workflow/analyses", root=repo_root)
    assert [f["number"] for f in cov["figures"]] == list(range(1, 21))
    numbers = [c["number"] for c in cov["claims"]]
    assert numbers == sorted(set(numbers)) and len(numbers) >= 40


def test_the_basic_model_regenerates_figures_3_to_8(repo_root):
    cov = coverage(repo_root / "workflow/analyses", root=repo_root)
    made = {f["number"]: {i["module"] for i in f["made_by"]} for f in cov["figures"]}
    for n in range(3, 9):
        assert "basic_model" in made[n]
    assert cov["summary"]["figures_made"] == sum(bool(m) for m in made.values())


def _project(tmp_path, repo_root):
    for d in ("workflow", "docs", "contributors"):
        shutil.copytree(repo_root / d, tmp_path / d)
    return tmp_path


def test_a_module_naming_a_figure_the_paper_lacks_is_rejected(tmp_path, repo_root):
    root = _project(tmp_path, repo_root)
    path = root / "workflow/analyses/basic_model.yaml"
    data = yaml.safe_load(path.read_text())
    data["figures"][0]["published_figure"] = 20
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    cov = coverage(root / "workflow/analyses", root=root)  # figure 20 exists
    assert any(i["module"] == "basic_model" for i in cov["figures"][19]["made_by"])
    data["claims"][0]["published_claim"] = 999
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ProblemsError, match=r"claims\[0\]\.published_claim: no claim 999"):
        coverage(root / "workflow/analyses", root=root)


def test_check_reports_a_stale_table(tmp_path, repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    stale = tmp_path / "coverage.md"
    stale.write_text("old\n")
    assert main(["--check", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["--write", str(stale)]) == 0 and main(["--check", str(stale)]) == 0
