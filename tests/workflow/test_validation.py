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
    assert r.returncode != 0, f"expected a failure, got:\n{r.stdout[-3000:]}"
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
            "workflow/analyses/basic_model.yaml: figures[1].id: 'Fig 2' does not match",
        ),
        (
            lambda m: m["claims"][0].update(tolerance=-1),
            "workflow/analyses/basic_model.yaml: claims[0].tolerance: -1 is less than the minimum",
        ),
        (
            lambda m: m["runs"].append("no_such_run"),
            "workflow/analyses/basic_model.yaml: runs[1]: no run 'no_such_run'",
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
        "unknown-run",
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
            lambda c: c["runs"]["basic_model"]["overrides"].update(model={"n_hiden": 8}),
            "config/config.yaml: runs.basic_model.overrides.model.n_hiden: unknown key",
        ),
        (
            lambda c: c["runs"]["basic_model"]["overrides"].update(training={"lr": -1}),
            "config/config.yaml: runs.basic_model.overrides.training.lr: must be > 0",
        ),
        (
            lambda c: c["runs"]["basic_model"]["overrides"].update(seed=3),
            "config/config.yaml: runs.basic_model.overrides.seed: set runs.basic_model.seed",
        ),
        (
            lambda c: c.update(modules={"basic_model": {"parameters": {"n_tset": 5}}}),
            "config/config.yaml: modules.basic_model.parameters.n_tset: not a name of the "
            "parameters cell",
        ),
    ],
    ids=[
        "unknown-key",
        "bad-device",
        "unknown-override",
        "bad-override-value",
        "run-level-key-in-overrides",
        "unknown-notebook-parameter",
    ],
)
def test_bad_config_fails_before_any_job(repo_copy, change, expected):
    edit_yaml(repo_copy / "config/config.yaml", change)
    out = dry_run_fails(repo_copy)
    assert expected in out, out[-3000:]


def test_quick_config_problems_name_both_files(repo_copy):
    (repo_copy / "config/quick.yaml").write_text("runs: {basic_model: {seeed: 1}}\n")
    out = dry_run_fails(repo_copy, "--configfile", "config/quick.yaml")
    assert "config/config.yaml + config/quick.yaml: runs.basic_model.seeed: unknown key" in out


def test_notebook_without_parameters_cell_fails(repo_copy):
    nb = repo_copy / "workflow/notebooks/tutorial_surrogate.ipynb"
    nb.write_text(nb.read_text().replace('"parameters"', '"params"'))
    out = dry_run_fails(repo_copy)
    assert (
        "workflow/notebooks/tutorial_surrogate.ipynb: (parameters cell): no cell is tagged" in out
    )
