"""A notebook that raises fails its rule; the failing cell and the notebook are in plain view."""

from __future__ import annotations

import json

from workflow_helpers import BIN, run, snakemake


def test_raising_notebook_fails_its_rule_with_cell_and_path(repo_copy):
    r = run(
        [
            str(BIN / "spikeloc"),
            "new-module",
            "broken_demo",
            "--owner",
            "thesamovar",
            "--title",
            "A module that breaks",
        ],
        repo_copy,
    )
    assert r.returncode == 0, r.stdout
    nb_path = repo_copy / "workflow/notebooks/broken_demo.ipynb"
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if c["id"] == "analysis")
    cell["source"] = ["ratio = 1 / 0  # deliberately broken cell\n"]
    nb_path.write_text(json.dumps(nb, indent=1))

    out = snakemake(
        [
            "results/quick/variables/broken_demo.json",
            "--configfile",
            "config/quick.yaml",
            "--cores",
            "1",
        ],
        repo_copy,
        timeout=600,
    )
    assert out.returncode != 0
    text = out.stdout
    # the rule's message names the notebook, the error output names it again and shows the
    # failing cell's source and the exception
    assert "module broken_demo: running notebook workflow/notebooks/broken_demo.ipynb" in text
    assert "notebook workflow/notebooks/broken_demo.ipynb failed" in text
    assert "ratio = 1 / 0  # deliberately broken cell" in text
    assert "ZeroDivisionError" in text
    log = (repo_copy / "logs/quick/analyse_broken_demo/papermill.log").read_text()
    assert "ratio = 1 / 0" in log and "ZeroDivisionError" in log
    # the half-executed notebook is kept for inspection; no half-made outputs are left
    assert (repo_copy / "logs/quick/analyse_broken_demo/failed.ipynb").is_file()
    assert not (repo_copy / "results/quick/variables/broken_demo.json").exists()
    assert not (repo_copy / "results/quick/notebooks/broken_demo.ipynb").exists()
