"""A bad config or module manifest stops the workflow while it is parsed, before any job
runs, with one line per problem that names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from workflow_helpers import snakemake


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def dry_run_fails(root: Path, *extra: str) -> str:
    r = snakemake(["-n", "figures", *extra], root, timeout=300)
    assert r.returncode == 2, f"expected exit code 2, got {r.returncode}:\n{r.stdout[-3000:]}"
    assert "Traceback" not in r.stdout, r.stdout[-3000:]
    # nothing ran: no job output, not even the generated run configs
    assert not (root / "results").exists(), "a job ran before validation failed"
    return r.stdout


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m: m["figures"][0].update(colour="red"),
            "workflow/analyses/basic_model.yaml: figures[0].colour: unknown key",
        ),
        (
            lambda m: m.update(plot_style="dark"),
            "workflow/analyses/basic_model.yaml: plot_style: unknown key",
        ),
        (
            lambda m: m.pop("owners"),
            "workflow/analyses/basic_model.yaml: owners: missing required field",
        ),
        (
            lambda m: m["figures"][1].update(id="Fig 2"),
            "workflow/analyses/basic_model.yaml: figures[1].id: 'Fig 2' is not lowercase snake case",
        ),
        (
            lambda m: m["claims"][0].update(tolerance=-1),
            "workflow/analyses/basic_model.yaml: claims[0].tolerance: -1 is less than the minimum",
        ),
        (
            lambda m: m["runs"]["basic_model"].update(overrides={"model": {"n_hiden": 8}}),
            "workflow/analyses/basic_model.yaml: runs.basic_model.overrides.model.n_hiden: "
            "unknown key",
        ),
        (
            lambda m: m["runs"]["basic_model"].update(overrides={"training": {"lr": -1}}),
            "workflow/analyses/basic_model.yaml: runs.basic_model.overrides.training.lr: must be > 0",
        ),
        (
            lambda m: m["runs"]["basic_model"].update(overrides={"training": {"seed": 3}}),
            "workflow/analyses/basic_model.yaml: runs.basic_model.overrides.training.seed: "
            "unknown key",
        ),
        (
            lambda m: m["runs"]["basic_model"]["quick"]["overrides"]["training"].update(lr=0.1),
            "workflow/analyses/basic_model.yaml: runs.basic_model.quick.overrides.training.lr: "
            "unknown key",
        ),
        (
            lambda m: m.update(parameters={"n_tset": 5}),
            "workflow/analyses/basic_model.yaml: parameters.n_tset: not a name of the "
            "parameters cell",
        ),
        (
            lambda m: m.update(
                sweeps={"tau": {"preset": "basic", "grid": {"model.tau_hidden_s": [0.002, -1]}}}
            ),
            "workflow/analyses/basic_model.yaml: sweeps.tau.grid.model.tau_hidden_s: -1: must be > 0",
        ),
        (
            lambda m: m.update(
                sweeps={"tau": {"preset": "basic", "grid": {"model.tau_hiden_s": [0.002]}}}
            ),
            "workflow/analyses/basic_model.yaml: sweeps.tau.grid.model.tau_hiden_s: ",
        ),
        (
            lambda m: m.update(
                sweeps={
                    "tau": {
                        "preset": "basic",
                        "zip": {"model.tau_hidden_s": [0.002, 0.004], "model.tau_output_s": [1]},
                    }
                }
            ),
            "workflow/analyses/basic_model.yaml: sweeps.tau.zip.model.tau_output_s: has 1 values, "
            "model.tau_hidden_s has 2",
        ),
        (
            lambda m: m.update(
                sweeps={
                    "tau": {
                        "preset": "basic",
                        "grid": {"model.tau_hidden_s": [0.002, 0.004]},
                        "quick": {"grid": {"model.n_hidden": [4]}},
                    }
                }
            ),
            "workflow/analyses/basic_model.yaml: sweeps.tau.quick.grid.model.n_hidden: is not a "
            "grid key of the sweep",
        ),
        (
            lambda m: m.update(sweeps={"basic_model": {"preset": "basic"}}),
            "workflow/analyses/basic_model.yaml: sweeps.basic_model: a run of this module has "
            "the same name",
        ),
        (
            lambda m: m.update(sweeps={"Tau": {"preset": "basic"}}),
            "workflow/analyses/basic_model.yaml: sweeps: key 'Tau' is not lowercase snake case",
        ),
        (
            lambda m: m["claims"][0].update(variable="not_recorded"),
            "workflow/analyses/basic_model.yaml: claims[0].variable: 'not_recorded' is not in",
        ),
    ],
    ids=[
        "unknown-figure-key",
        "unknown-top-key",
        "missing-owners",
        "bad-figure-id",
        "negative-tolerance",
        "unknown-override",
        "bad-override-value",
        "run-level-key-in-overrides",
        "quick-changes-more-than-sizes",
        "unknown-notebook-parameter",
        "bad-grid-value",
        "unknown-grid-key",
        "zip-lengths-differ",
        "quick-grid-key-not-swept",
        "sweep-named-like-a-run",
        "sweep-name-not-snake-case",
        "undeclared-claim-variable",
    ],
)
def test_bad_manifest_fails_before_any_job(repo_copy, change, expected):
    edit_yaml(repo_copy / "workflow/analyses/basic_model.yaml", change)
    out = dry_run_fails(repo_copy)
    assert expected in out, out[-3000:]


def test_owner_without_contributor_file_fails(repo_copy):
    edit_yaml(
        repo_copy / "workflow/analyses/basic_model.yaml",
        lambda m: m.update(owners=["nobody-here"]),
    )
    out = dry_run_fails(repo_copy)
    assert "workflow/analyses/basic_model.yaml: owners[0]: no contributors/nobody-here.yaml" in out


def test_every_broken_manifest_names_itself(repo_copy):
    edit_yaml(repo_copy / "workflow/analyses/basic_model.yaml", lambda m: m.update(colour=1))
    edit_yaml(
        repo_copy / "workflow/analyses/tutorial_surrogate.yaml",
        lambda m: m["runs"]["tutorial"].update(seed=-1),
    )
    out = dry_run_fails(repo_copy)
    assert "workflow/analyses/basic_model.yaml: colour: unknown key" in out
    assert "workflow/analyses/tutorial_surrogate.yaml: runs.tutorial.seed: -1 is less than" in out


def test_duplicate_figure_id_across_modules_fails(repo_copy):
    edit_yaml(
        repo_copy / "workflow/analyses/tutorial_surrogate.yaml",
        lambda m: m["figures"].append({"id": "basic_model_confusion", "caption": "again"}),
    )
    out = dry_run_fails(repo_copy)
    assert "figures[7].id: 'basic_model_confusion' is already made by module 'basic_model'" in out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.update(colour="blue"), "config/config.yaml: colour: unknown key"),
        (
            lambda c: c.update(device="tpu"),
            "config/config.yaml: device: 'tpu' is not one of",
        ),
        (
            lambda c: c.update(runs={"basic_model": {"preset": "basic"}}),
            "config/config.yaml: runs: unknown key",
        ),
        (
            lambda c: c.update(scale="tiny"),
            "config/config.yaml: scale: 'tiny' is not one of paper, quick",
        ),
        (
            lambda c: c["train"].update(chunk_size=0),
            "config/config.yaml: train.chunk_size: 0 is less than the minimum of 1",
        ),
    ],
    ids=[
        "unknown-key",
        "bad-device",
        "no-runs-in-config",
        "bad-scale",
        "bad-chunk-size",
    ],
)
def test_bad_config_fails_before_any_job(repo_copy, change, expected):
    edit_yaml(repo_copy / "config/config.yaml", change)
    out = dry_run_fails(repo_copy)
    assert expected in out, out[-3000:]


def test_quick_config_problems_name_the_file_that_holds_them(repo_copy):
    (repo_copy / "config/quick.yaml").write_text("scale: quick\ntrain: {mem: 5}\n")
    out = dry_run_fails(repo_copy, "--configfile", "config/quick.yaml")
    assert "config/quick.yaml: train.mem: unknown key" in out, out[-3000:]


def test_command_line_config_problems_name_the_command_line(repo_copy):
    out = dry_run_fails(repo_copy, "--config", "devce=cpu", "scale=tiny")
    assert "--config: devce: unknown key (did you mean 'device'?)" in out, out[-3000:]
    assert "--config: scale: 'tiny' is not one of paper, quick" in out
    assert "Traceback" not in out and "common.smk" not in out


def test_notebook_without_parameters_cell_fails(repo_copy):
    nb = repo_copy / "workflow/notebooks/tutorial_surrogate.ipynb"
    nb.write_text(nb.read_text().replace('"parameters"', '"params"'))
    out = dry_run_fails(repo_copy)
    assert (
        "workflow/notebooks/tutorial_surrogate.ipynb: (parameters cell): no cell is tagged" in out
    )
