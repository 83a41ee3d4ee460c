"""The project's own quick DAG (Snakefile + config/quick.yaml) runs through profiles/slurm.

Separate from the demo tests: it needs the real pipeline, which is skipped while the root
Snakefile does not exist, and it takes minutes (marked slow as well).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_helpers import (  # noqa: E402
    REPO,
    copy_repo,
    mem_mb,
    minutes,
    profile_config,
    run_snakemake,
    sacct_until_final,
    tres,
)

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# snakemake targets. The SLURM test checks the executor and the profile (jobs submitted with
# the right resources, all completed), not every module again: tests/workflow/test_quick_dag.py
# runs the whole quick DAG locally. By default it runs the two core modules (training chunks and
# notebooks); SPIKELOC_SLURM_DAG_TARGETS="figures paper" runs everything on SLURM.
TARGETS = os.environ.get(
    "SPIKELOC_SLURM_DAG_TARGETS", "analyse_basic_model analyse_tutorial_surrogate"
).split()
TIMEOUT_S = int(os.environ.get("SPIKELOC_SLURM_DAG_TIMEOUT", "3000"))


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def expected_train_resources(work: Path) -> dict:
    """What a `train_chunk` job should ask SLURM for: config/config.yaml's `train:` block with
    config/quick.yaml laid over it, then the profile's set-threads/set-resources if it has any
    (the runtime there is minutes per run: a job asks for that times the runs of its chunk)."""
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg = deep_merge(cfg, yaml.safe_load((work / "config" / "quick.yaml").read_text()))
    want = dict(cfg["train"])
    prof = profile_config()
    if "train_chunk" in prof.get("set-threads", {}):
        want["threads"] = prof["set-threads"]["train_chunk"]
    want.update(prof.get("set-resources", {}).get("train_chunk", {}))
    return want


def test_quick_dag_on_slurm(tmp_path):
    if not (REPO / "Snakefile").exists():
        pytest.skip("no Snakefile at the repository root yet (the pipeline is not written)")
    if not (REPO / "config" / "quick.yaml").exists():
        pytest.skip("no config/quick.yaml yet")
    work = copy_repo(tmp_path / "repo")
    args = [
        *TARGETS,
        "--configfile",
        "config/quick.yaml",
        "--workflow-profile",
        "profiles/slurm",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--config",
        "device=cpu",
    ]
    run = run_snakemake(args, cwd=work, timeout_s=TIMEOUT_S)
    tail = run.output[-6000:]
    print(f"quick DAG on SLURM: {run.seconds:.1f} s")
    assert run.returncode == 0, (
        f"snakemake failed (rc {run.returncode}) after {run.seconds:.0f}s:\n{tail}"
    )

    jobs = run.jobs()
    train = [jid for jid, rule in jobs.items() if rule == "train_chunk"]
    assert train, f"no job of rule `train_chunk` was submitted to SLURM: {jobs}"
    rows = sacct_until_final(jobs)
    want = expected_train_resources(work)
    want_cpus, want_mem, want_min = want["threads"], want["mem_mb"], want["runtime"]
    for jid in train:
        row = rows[jid]
        assert row["State"] == "COMPLETED", row
        assert int(row["AllocCPUS"]) == want_cpus, row
        assert mem_mb(row["ReqMem"]) == want_mem, row
        # minutes per run times the runs of the chunk
        assert minutes(row["Timelimit"]) % want_min == 0, row
        assert "gres/gpu" not in tres(row["AllocTRES"]), (
            f"device=cpu but a GPU was allocated: {row}"
        )
    for jid, row in rows.items():
        assert row["State"] == "COMPLETED", (jobs[jid], row)

    figures = [
        p for p in (work / "figures" / "quick").glob("*") if p.suffix in {".pdf", ".png", ".svg"}
    ]
    assert figures, "no figure in figures/quick/"
    if "paper" in TARGETS:
        pdf = work / "paper" / "build" / "quick" / "paper.pdf"
        assert pdf.is_file(), "paper/build/quick/paper.pdf missing"
