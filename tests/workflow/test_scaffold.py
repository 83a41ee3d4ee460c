"""`spikeloc new-module [--sweep]`: three files of the module's own, a rule in the DAG, credit
checked. (The sweep template's whole quick DAG, and a grid point added later, are exercised in
test_sweep_dag.py.)"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from workflow_helpers import BIN, REPO, run, snakemake

from spikeloc.errors import SpikelocError
from spikeloc.pipeline import results, scaffold
from spikeloc.pipeline.manifests import STANDARD_PARAMETERS, load_manifest, notebook_parameters
from spikeloc.pipeline.validation import ProblemsError


def test_new_module_creates_its_three_files(tmp_path):
    (tmp_path / "workflow" / "analyses").mkdir(parents=True)
    paths = scaffold.new_module("itd_study", "someone", "Sweeping the tone", root=tmp_path)
    assert {k: p.relative_to(tmp_path).as_posix() for k, p in paths.items()} == {
        "manifest": "workflow/analyses/itd_study.yaml",
        "notebook": "workflow/notebooks/itd_study.ipynb",
        "section": "paper/sections/itd_study.typ",
    }
    manifest = yaml.safe_load(paths["manifest"].read_text())
    assert manifest["title"] == "Sweeping the tone"
    assert manifest["owners"] == ["someone"]
    assert manifest["section"] == "itd_study"
    assert manifest["runs"] == {} and manifest["sweeps"] == {}  # it trains nothing
    assert "config runs" not in paths["manifest"].read_text()  # runs live in manifests now
    assert [f["id"] for f in manifest["figures"]] == ["itd_study_input_examples"]
    assert [v["name"] for v in manifest["variables"]] == ["mean_input_rate_hz"]
    nb = json.loads(paths["notebook"].read_text())
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert first_code["metadata"]["tags"] == ["parameters"]
    assert all(c.get("outputs", []) == [] for c in nb["cells"])  # committed without outputs
    params = notebook_parameters(paths["notebook"])
    assert set(STANDARD_PARAMETERS) - params == {"sweeps"}
    assert {"n_samples", "seed"} <= params
    section = paths["section"].read_text()
    assert '#qty("itd_study.mean_input_rate_hz")' in section
    assert '#fig("itd_study_input_examples")' in section


def test_sweep_module_declares_a_cheap_two_point_sweep(tmp_path):
    (tmp_path / "workflow" / "analyses").mkdir(parents=True)
    paths = scaffold.new_module("tau_study", "someone", "Time constants", root=tmp_path, sweep=True)
    data = yaml.safe_load(paths["manifest"].read_text())
    assert data["runs"] == {} and list(data["sweeps"]) == ["tau"]
    # the manifest passes its schema and expands: 2 points x 2 seeds at both scales
    m = load_manifest("tau_study", tmp_path / "workflow" / "analyses", root=REPO)
    for scale in ("paper", "quick"):
        runs = m.sweeps[scale]["tau"]
        assert [(r.swept["model.tau_hidden_s"], r.seed) for r in runs] == [
            (0.01, 0),
            (0.01, 1),
            (0.02, 0),
            (0.02, 1),
        ]
    tiny = m.sweeps["quick"]["tau"][0].config["training"]
    assert (tiny["epochs"], tiny["n_train"], tiny["n_test"]) == (1, 256, 128)
    assert m.sweeps["paper"]["tau"][0].config["training"]["epochs"] == 10  # the preset's
    assert [f["id"] for f in data["figures"]] == ["tau_study_accuracy"]
    declared = {v["name"] for v in data["variables"]}
    assert declared == {"best_tau_ms", "best_accuracy_pct", "n_runs"}
    # the notebook reads the table and plots with the library; it defines no model code
    params = notebook_parameters(paths["notebook"])
    assert set(STANDARD_PARAMETERS) - params == {"runs"}
    nb = json.loads(paths["notebook"].read_text())
    # standalone, its defaults read the paper-scale tree
    defaults: dict = {}
    exec("".join(nb["cells"][1]["source"]), defaults)
    assert (defaults["scale"], defaults["sweeps"], defaults["figures_dir"]) == ("paper", {}, "")
    shutil.copytree(REPO / "workflow" / "schemas", tmp_path / "workflow" / "schemas")
    standalone = results.module_paths("tau_study", defaults["scale"], root=tmp_path)
    assert standalone["sweeps"] == {"tau": "results/paper/sweeps/tau_study/tau.csv"}
    assert standalone["figures_dir"] == "figures/paper"
    assert standalone["variables_path"] == "results/paper/variables/tau_study.json"
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert 'results.load_sweep(sweeps["tau"])' in code
    assert "sweep_stats.mean_sd(" in code and "plots.sweep_curve(" in code
    assert "def " not in code and "pyplot" not in code and "torch" not in code
    assert all(c.get("outputs", []) == [] for c in nb["cells"])
    section = paths["section"].read_text()
    for name in declared:
        assert f'"tau_study.{name}"' in section
    assert '#fig("tau_study_accuracy")' in section


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
    scaffold.new_module("itd_study", "someone", "First", root=tmp_path)
    section = tmp_path / "paper" / "sections" / "itd_study.typ"
    section.write_text("my text")
    (tmp_path / "workflow" / "analyses" / "itd_study.yaml").unlink()
    with pytest.raises(SpikelocError, match=r"itd_study\.ipynb: already exists"):
        scaffold.new_module("itd_study", "someone", "Second", root=tmp_path, sweep=True)
    assert section.read_text() == "my text"
    assert not (tmp_path / "workflow" / "analyses" / "itd_study.yaml").exists()


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
            "itd_study",
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
    assert "analyse_itd_study" in dry.stdout
    assert "figures/quick/itd_study_input_examples.pdf" in dry.stdout
    # the template runs as it is (it needs no training run)
    out = snakemake(
        ["results/quick/variables/itd_study.json", "--configfile", "config/quick.yaml"],
        repo_copy,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-4000:]
    assert "train_chunk" not in out.stdout
    recorded = json.loads((repo_copy / "results/quick/variables/itd_study.json").read_text())
    assert 150 < recorded["variables"]["mean_input_rate_hz"]["value"] < 300
    for ext in ("pdf", "png", "json"):
        assert (repo_copy / f"figures/quick/itd_study_input_examples.{ext}").is_file()
    assert (repo_copy / "results/quick/notebooks/itd_study.ipynb").is_file()


def test_new_owner_without_contributor_file_is_flagged(repo_copy):
    r = run(
        [
            str(BIN / "spikeloc"),
            "new-module",
            "itd_study",
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
        "workflow/analyses/itd_study.yaml: owners[0]: no contributors/new-person.yaml"
        in check.stdout
    )
    dry = snakemake(["-n", "figures"], repo_copy, timeout=300)
    assert dry.returncode != 0
    assert "owners[0]: no contributors/new-person.yaml" in dry.stdout


SWEEP_MISTAKES = {
    "bad-grid-value": (
        lambda s: s["grid"].update({"model.tau_hidden_s": [0.01, -0.02]}),
        "sweeps.tau.grid.model.tau_hidden_s: -0.02: must be > 0, got -0.02",
    ),
    "grid-key-typo": (
        lambda s: s.update(grid={"model.tau_hiden_s": [0.01, 0.02]}),
        "sweeps.tau.grid.model.tau_hiden_s: 0.01: unknown key (did you mean 'tau_hidden_s'?)",
    ),
    "preset-typo": (
        lambda s: s.update(preset="tutorail"),
        "sweeps.tau.preset: 'tutorail' is not one of basic, tutorial (did you mean 'tutorial'?)",
    ),
    "no-seeds": (
        lambda s: s.update(seeds=0),
        "sweeps.tau.seeds: 0 is less than the minimum of 1",
    ),
    "seed-in-overrides": (
        lambda s: s.update(overrides={"seed": 3}),
        "sweeps.tau.overrides.seed: unknown key (allowed: stimulus, model, training)",
    ),
    "quick-changes-lr": (
        lambda s: s["quick"]["overrides"]["training"].update(lr=0.1),
        "sweeps.tau.quick.overrides.training.lr: unknown key (allowed: epochs, n_train, n_val, "
        "n_test, n_test_sets, batch_size, patience, min_epochs, checkpoint_every)",
    ),
    "quick-grid-not-swept": (
        lambda s: s["quick"].update(grid={"model.n_hidden": [4]}),
        "sweeps.tau.quick.grid.model.n_hidden: is not a grid key of the sweep (quick scale may "
        "only take fewer values of the swept keys) (at quick scale)",
    ),
}


@pytest.mark.parametrize("mistake", sorted(SWEEP_MISTAKES))
def test_sweep_manifest_mistakes_read_as_workflow_readme_says(tmp_path, mistake):
    """Each mistake in the sweep template gives the line workflow/README.md quotes for it."""
    change, expected = SWEEP_MISTAKES[mistake]
    analyses = tmp_path / "workflow" / "analyses"
    analyses.mkdir(parents=True)
    path = scaffold.new_module("tau_study", "someone", "T t", root=tmp_path, sweep=True)["manifest"]
    data = yaml.safe_load(path.read_text())
    change(data["sweeps"]["tau"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    line = f"workflow/analyses/tau_study.yaml: {expected}"
    assert line in (REPO / "workflow" / "README.md").read_text()
    with pytest.raises(ProblemsError) as info:
        load_manifest("tau_study", analyses, root=REPO)
    assert [p.replace(str(analyses), "workflow/analyses") for p in info.value.problems] == [line]
