"""`spikeloc new-module`: three files of the module's own, a rule in the DAG, credit checked."""

from __future__ import annotations

import json

import pytest
import yaml
from workflow_helpers import BIN, run, snakemake

from spikeloc.errors import SpikelocError
from spikeloc.pipeline import scaffold


def test_new_module_creates_its_three_files(tmp_path):
    (tmp_path / "workflow" / "analyses").mkdir(parents=True)
    paths = scaffold.new_module("itd_sweep", "someone", "Sweeping the tone", root=tmp_path)
    assert {k: p.relative_to(tmp_path).as_posix() for k, p in paths.items()} == {
        "manifest": "workflow/analyses/itd_sweep.yaml",
        "notebook": "workflow/notebooks/itd_sweep.ipynb",
        "section": "paper/sections/itd_sweep.typ",
    }
    manifest = yaml.safe_load(paths["manifest"].read_text())
    assert manifest["title"] == "Sweeping the tone"
    assert manifest["owners"] == ["someone"]
    assert manifest["section"] == "itd_sweep"
    assert [f["id"] for f in manifest["figures"]] == ["itd_sweep_input_examples"]
    assert [v["name"] for v in manifest["variables"]] == ["mean_input_rate_hz"]
    nb = json.loads(paths["notebook"].read_text())
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert first_code["metadata"]["tags"] == ["parameters"]
    assert all(c.get("outputs", []) == [] for c in nb["cells"])  # committed without outputs
    section = paths["section"].read_text()
    assert '#qty("itd_sweep.mean_input_rate_hz")' in section
    assert '#fig("itd_sweep_input_examples")' in section


@pytest.mark.parametrize(
    ("name", "owner", "title", "match"),
    [
        ("ItdSweep", "someone", "A title", "must be lowercase snake case"),
        ("itd-sweep", "someone", "A title", "must be lowercase snake case"),
        ("2nd_try", "someone", "A title", "must be lowercase snake case"),
        ("itd__sweep", "someone", "A title", "must be lowercase snake case"),
        ("introduction", "someone", "A title", "reserved"),
        ("itd_sweep", "some one", "A title", "--owner"),
        ("itd_sweep", "someone", " ", "--title"),
    ],
)
def test_bad_names_are_refused(tmp_path, name, owner, title, match):
    (tmp_path / "workflow" / "analyses").mkdir(parents=True)
    with pytest.raises(SpikelocError, match=match):
        scaffold.new_module(name, owner, title, root=tmp_path)
    assert list((tmp_path / "workflow" / "analyses").iterdir()) == []


def test_existing_module_is_refused_and_left_alone(tmp_path):
    (tmp_path / "workflow" / "analyses").mkdir(parents=True)
    scaffold.new_module("itd_sweep", "someone", "First", root=tmp_path)
    section = tmp_path / "paper" / "sections" / "itd_sweep.typ"
    section.write_text("my text")
    (tmp_path / "workflow" / "analyses" / "itd_sweep.yaml").unlink()
    with pytest.raises(SpikelocError, match=r"itd_sweep\.ipynb: already exists"):
        scaffold.new_module("itd_sweep", "someone", "Second", root=tmp_path)
    assert section.read_text() == "my text"
    assert not (tmp_path / "workflow" / "analyses" / "itd_sweep.yaml").exists()


def test_cli_reports_errors_in_one_line(repo_copy):
    r = run(
        [str(BIN / "spikeloc"), "new-module", "Bad-Name", "--owner", "x", "--title", "T"], repo_copy
    )
    assert r.returncode == 2
    assert (
        r.stdout.strip().splitlines()[-1].startswith("spikeloc: error: new-module: NAME 'Bad-Name'")
    )


def test_scaffolded_module_gets_a_rule_and_runs(repo_copy):
    r = run(
        [
            str(BIN / "spikeloc"),
            "new-module",
            "itd_sweep",
            "--owner",
            "thesamovar",
            "--title",
            "Sweeping the tone",
        ],
        repo_copy,
    )
    assert r.returncode == 0, r.stdout
    dry = snakemake(["-n", "figures", "--configfile", "config/quick.yaml"], repo_copy, timeout=300)
    assert dry.returncode == 0, dry.stdout[-4000:]
    assert "analyse_itd_sweep" in dry.stdout
    assert "figures/itd_sweep_input_examples.pdf" in dry.stdout
    # the template runs as it is (it needs no training run)
    out = snakemake(
        ["results/variables/itd_sweep.json", "--configfile", "config/quick.yaml", "--cores", "2"],
        repo_copy,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:]
    recorded = json.loads((repo_copy / "results/variables/itd_sweep.json").read_text())
    assert 150 < recorded["variables"]["mean_input_rate_hz"]["value"] < 300
    for ext in ("pdf", "png", "json"):
        assert (repo_copy / f"figures/itd_sweep_input_examples.{ext}").is_file()
    assert (repo_copy / "results/notebooks/itd_sweep.ipynb").is_file()


def test_new_owner_without_contributor_file_is_flagged(repo_copy):
    r = run(
        [
            str(BIN / "spikeloc"),
            "new-module",
            "itd_sweep",
            "--owner",
            "new-person",
            "--title",
            "Sweeping the tone",
        ],
        repo_copy,
    )
    assert r.returncode == 0 and "contributors/new-person.yaml does not exist" in r.stdout
    check = run([str(BIN / "spikeloc"), "contributors", "check"], repo_copy)
    assert check.returncode == 2
    assert (
        "workflow/analyses/itd_sweep.yaml: owners[0]: no contributors/new-person.yaml"
        in check.stdout
    )
    dry = snakemake(["-n", "figures"], repo_copy, timeout=300)
    assert dry.returncode != 0
    assert "owners[0]: no contributors/new-person.yaml" in dry.stdout
