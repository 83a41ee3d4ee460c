"""The whole pipeline at quick scale, from a copy of the repository, on the CPU.

`snakemake figures paper --configfile config/quick.yaml --cores 2` trains every run, runs
every module's notebook and typesets the paper, all under the quick tree (results/quick/,
figures/quick/, paper/build/quick/). Afterwards: every declared figure exists in all three
files, the PDF holds the figures and no missing-number marker, the HTML edition shows them in
a real browser with every link resolving, and a second invocation has
nothing to do. Then the rerun rules: editing plotting code re-runs notebooks only; only a
change to the *code* that trains re-trains (touching a file, or editing a docstring, does
nothing; the lazily imported kernel-thread module counts); moving a run to another device
re-trains nothing; the paper scale shares no output with the quick one.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml
from pypdf import PdfReader
from workflow_helpers import BIN, copy_repo, run, snakemake

from spikeloc.pipeline import browser
from spikeloc.pipeline.paper import MISSING_MARKER

QUICK = ["--configfile", "config/quick.yaml"]


def jobs_to_run(root, *extra) -> set[str]:
    """Rule names a dry run would execute."""
    r = snakemake(["-n", "figures", "paper", *QUICK, *extra], root, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:]
    if "Nothing to be done" in r.stdout:
        return set()
    table = r.stdout.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in r.stdout else ""
    return {m.group(1) for m in re.finditer(r"^(\w+)\s+\d+\s*$", table, re.M)} - {"total"}


@pytest.mark.slow
def test_whole_quick_dag(tmp_path):
    root = copy_repo(tmp_path / "repo")
    t0 = time.perf_counter()
    r = snakemake(["figures", "paper", *QUICK, "--cores", "2"], root, timeout=1800)
    wall = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout[-8000:]
    print(f"\nquick DAG wall time: {wall:.0f} s")

    manifests = [yaml.safe_load(p.read_text()) for p in (root / "workflow/analyses").glob("*.yaml")]
    figure_ids = [f["id"] for m in manifests for f in m["figures"]]
    assert figure_ids
    for fid in figure_ids:
        for ext in ("pdf", "png", "json"):
            path = root / "figures" / "quick" / f"{fid}.{ext}"
            assert path.is_file(), f"figures/quick/{fid}.{ext} missing"
        sidecar = json.loads((root / "figures" / "quick" / f"{fid}.json").read_text())
        assert sidecar["figure_id"] == fid and sidecar["module"] and sidecar["config_hash"]

    pdf = root / "paper/build/quick/paper.pdf"
    reader = PdfReader(pdf)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert MISSING_MARKER not in text
    assert "config/quick.yaml" in text  # the stamp says which configuration made it
    forms = {
        ref.idnum
        for page in reader.pages
        for ref in page.get("/Resources", {}).get("/XObject", {}).values()
        if ref.get_object().get("/Subtype") == "/Form"
    }
    in_paper = [f for m in manifests for f in m["figures"] if f.get("in_paper", True)]
    assert len(forms) >= len(in_paper)
    # the HTML edition, read in a real browser (headless Chromium, offline): every in-paper
    # figure shown with its image decoded, every in-page link resolving, no missing number
    page = browser.inspect_page(root / "paper/build/quick/paper.html", marker=MISSING_MARKER)
    assert page["broken_images"] == [] and page["dangling_links"] == [], page
    assert page["missing_markers"] == 0 and page["figures_without_image"] == [], page
    assert page["figures_unreferenced"] == [], page["figures_unreferenced"]
    assert {f["id"] for f in in_paper} <= set(page["figure_ids"]), page["figure_ids"]
    assert page["images"] >= len(in_paper) and page["internal_links"] > len(in_paper) / 2
    claims = json.loads((root / "results/quick/claims.json").read_text())
    assert claims["n_claims"] == sum(len(m.get("claims") or []) for m in manifests)
    for nb in (root / "results/quick/notebooks").glob("*.ipynb"):
        assert json.loads(nb.read_text())["cells"], nb

    # a second run has nothing to do
    assert jobs_to_run(root) == set()

    # plotting/analysis code: notebooks and paper re-run, training does not
    with open(root / "src/spikeloc/analysis/plots.py", "a") as fh:
        fh.write("\n# a change to a plot\n")
    todo = jobs_to_run(root)
    assert "train_chunk" not in todo and {"analyse_basic_model", "typeset"} <= todo

    # moving runs to a GPU is not a change of what they compute
    assert "train_chunk" not in jobs_to_run(root, "--config", "device=cuda")

    # touching core code, or editing a comment, changes no code: no re-training
    models = root / "src/spikeloc/core/models.py"
    models.touch()
    with open(models, "a") as fh:
        fh.write("\n# a comment about the core\n")
    assert "train_chunk" not in jobs_to_run(root)
    # editing code that training imports (even lazily, as the kernel threads) re-trains
    with open(root / "src/spikeloc/engine/kernel_threads.py", "a") as fh:
        fh.write("\n_EDITED = True\n")
    assert "train_chunk" in jobs_to_run(root)

    # the paper scale shares nothing with the quick one: its dry run wants every job
    r = snakemake(["-n", "figures", "paper"], root, timeout=300)
    assert r.returncode == 0 and "results/paper/chunks/basic_model/runs.0.json" in r.stdout

    # a notebook runs standalone from its parameters cell's defaults, from Jupyter's working
    # directory (workflow/notebooks), once the runs it reads exist (here: the quick ones)
    nb_dir = root / "workflow" / "notebooks"
    out_nb = tmp_path / "standalone.ipynb"
    variables_file = root / "results/quick/variables/tutorial_surrogate.json"
    variables_file.unlink()
    r = run(
        [str(BIN / "papermill"), "tutorial_surrogate.ipynb", str(out_nb), "--kernel", "python3"]
        + ["-p", "scale", "quick"],
        nb_dir,
    )
    assert r.returncode == 0, r.stdout[-4000:]
    standalone = json.loads(variables_file.read_text())
    assert standalone["variables"]["n_hidden"]["value"] == 30
