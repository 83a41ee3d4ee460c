"""Fixtures for the tests that need the local SLURM cluster (scripts/slurm/start-local-slurm.sh).

Every test in this folder is skipped, with the reason, when `sinfo` is missing or the cluster
is not up (no idle node, or no `sacct`, i.e. no slurmdbd).  With SPIKELOC_REQUIRE_SLURM=1
(CI, once it has started the cluster) they fail instead of being skipped.

Bring the cluster up and run them by hand:
    bash scripts/slurm/start-local-slurm.sh && .venv/bin/pytest -m slurm tests/slurm
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

REQUIRE = os.environ.get("SPIKELOC_REQUIRE_SLURM", "") == "1"
START_HINT = "start it with: bash scripts/slurm/start-local-slurm.sh"


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def cluster_problem() -> str | None:
    """Why the local cluster cannot be used, or None when it can."""
    if shutil.which("sinfo") is None:
        return "SLURM client not installed (no `sinfo` on PATH)"
    try:
        r = _run(["sinfo", "-h", "-N", "-o", "%N %T"])
    except subprocess.TimeoutExpired:
        return "`sinfo` timed out: slurmctld is not answering"
    if r.returncode != 0:
        return f"`sinfo` failed (slurmctld down?): {r.stderr.strip()[:200]}"
    states = [line.split()[-1] for line in r.stdout.splitlines() if line.strip()]
    if not any(re.match(r"(idle|mixed|allocated|completing)", s) for s in states):
        return f"no SLURM node is up (node states: {states or 'none'})"
    try:
        r = _run(["sacct", "-n", "-X", "-S", "now-5minutes", "-o", "JobID"])
    except subprocess.TimeoutExpired:
        return "`sacct` timed out: slurmdbd is not answering"
    if r.returncode != 0:
        return (
            "SLURM accounting is off (`sacct` fails; the snakemake plugin's default status "
            f"command needs slurmdbd; LOCAL_SLURM_ACCOUNTING=1): {r.stderr.strip()[:200]}"
        )
    return None


@pytest.fixture(scope="session", autouse=True)
def slurm_cluster():
    """Skip (or, with SPIKELOC_REQUIRE_SLURM=1, fail) every test here without a cluster."""
    problem = cluster_problem()
    if problem:
        msg = f"local SLURM cluster not usable: {problem}; {START_HINT}"
        if REQUIRE:
            pytest.fail(msg + " (SPIKELOC_REQUIRE_SLURM=1, so this fails instead of skipping)")
        pytest.skip(msg)
