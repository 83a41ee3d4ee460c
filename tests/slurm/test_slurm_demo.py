"""profiles/slurm runs a small demo workflow (tests/slurm/demo/Snakefile) as real SLURM jobs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_helpers import (  # noqa: E402
    DEMO_SNAKEFILE,
    PROFILE,
    mem_mb,
    minutes,
    run_snakemake,
    sacct_until_final,
    tres,
)

pytestmark = pytest.mark.slurm

# the init wait of the plugin is 40 s by default; jobs here take seconds
FAST = ["--slurm-init-seconds-before-status-checks", "2"]


def demo_args(target: str) -> list[str]:
    return ["-s", str(DEMO_SNAKEFILE), target, "--workflow-profile", str(PROFILE), *FAST]


def report(path: Path) -> dict[str, str]:
    """KEY=VALUE lines a demo job wrote (the first block, before '---')."""
    out = {}
    for line in path.read_text().split("---")[0].splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def test_demo_workflow_on_slurm(tmp_path):
    run = run_snakemake(demo_args("all"), cwd=tmp_path, timeout_s=600)
    tail = run.output[-4000:]
    assert run.returncode == 0, (
        f"snakemake failed (rc {run.returncode}) after {run.seconds:.0f}s:\n{tail}"
    )
    print(f"demo workflow on SLURM: {run.seconds:.1f} s")

    jobs = run.jobs()
    assert sorted(jobs.values()) == ["consume", "fit"], f"submitted jobs {jobs}:\n{tail}"
    by_rule = {rule: jid for jid, rule in jobs.items()}
    rows = sacct_until_final(jobs)
    assert set(rows) == set(jobs), f"sacct knows {sorted(rows)}, snakemake submitted {jobs}"
    for jid, row in rows.items():
        assert row["State"] == "COMPLETED", row
        assert row["Comment"].startswith(f"rule_{jobs[jid]}"), row
    assert len({r["JobName"] for r in rows.values()}) == 1, "one run uuid as job name"

    fit = rows[by_rule["fit"]]
    assert int(fit["AllocCPUS"]) == 1, fit
    assert mem_mb(fit["ReqMem"]) == 300, fit
    assert minutes(fit["Timelimit"]) == 5, fit
    assert tres(fit["AllocTRES"]).get("gres/gpu") == "1", fit

    consume = rows[by_rule["consume"]]
    assert int(consume["AllocCPUS"]) == 1, consume
    assert mem_mb(consume["ReqMem"]) == 200, consume
    assert minutes(consume["Timelimit"]) == 2, consume
    assert "gres/gpu" not in tres(consume["AllocTRES"]), consume

    # inside the job: the allocation the rule asked for, and a visible (fake) GPU
    inside = report(tmp_path / "results" / "fit.txt")
    assert inside["SLURM_JOB_ID"] == by_rule["fit"], inside
    assert inside["CUDA_VISIBLE_DEVICES"] not in ("", "unset"), inside
    assert inside["SLURM_CPUS_PER_TASK"] == "1", inside
    assert inside["MEM_MB"] == "300M", inside
    assert (tmp_path / "results" / "consumed.txt").read_text().count("SLURM_JOB_ID=") == 2


def test_failing_job_reported(tmp_path):
    run = run_snakemake(demo_args("failing"), cwd=tmp_path, timeout_s=300)
    tail = run.output[-4000:]
    print(f"failing rule reported after {run.seconds:.1f} s")
    assert run.returncode not in (0, 124, 137), f"rc {run.returncode}:\n{tail}"
    assert run.seconds < 240, f"failure took {run.seconds:.0f}s to be reported"
    assert "Error in rule failing" in run.output, tail
    jobs = run.jobs()
    assert list(jobs.values()) == ["failing"], jobs
    rows = sacct_until_final(jobs)
    (row,) = rows.values()
    assert row["State"] == "FAILED", row
    assert row["ExitCode"] == "1:0", row
    assert not (tmp_path / "results" / "never.txt").exists()
