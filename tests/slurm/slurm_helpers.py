"""Helpers shared by the tests in tests/slurm (imported by path, see each test module)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_SNAKEFILE = REPO / "tests" / "slurm" / "demo" / "Snakefile"
PROFILE = REPO / "profiles" / "slurm"


def _run(cmd: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

SUBMITTED = re.compile(
    r"submitted with SLURM jobid (\d+)(?:_\d+)? \(log: (\S*?/rule_([A-Za-z_][A-Za-z0-9_]*)/)?"
)
SACCT_FIELDS = [
    "JobID",
    "JobName",
    "State",
    "AllocCPUS",
    "ReqMem",
    "Timelimit",
    "AllocTRES",
    "Comment",
    "ExitCode",
]


@dataclass
class SnakemakeRun:
    returncode: int
    output: str
    seconds: float

    def jobs(self) -> dict[str, str]:
        """SLURM job id -> rule name, from snakemake's 'submitted with SLURM jobid' lines."""
        out = {}
        for m in SUBMITTED.finditer(self.output):
            out[m.group(1)] = m.group(3) or "?"
        return out


def snakemake_bin() -> str:
    """The snakemake next to the interpreter running pytest (the project venv), else PATH."""
    cand = Path(sys.executable).parent / "snakemake"
    if cand.exists():
        return str(cand)
    found = shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed (pip install -e '.[workflow]')")
    return found


def job_env() -> dict[str, str]:
    """Environment for snakemake: the venv's bin first on PATH (jobs inherit it via
    sbatch --export=ALL, so papermill/typst are found inside the jobs)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)  # only the workflow profile under test
    return env


def run_snakemake(args: list[str], cwd: Path, timeout_s: int = 600) -> SnakemakeRun:
    """Run snakemake under `timeout -k 10` (snakemake traps SIGTERM), output captured."""
    cmd = ["timeout", "-k", "10", str(timeout_s), snakemake_bin(), *args]
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            cmd,
            cwd=cwd,
            env=job_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout_s + 60,
        )
        rc, out = r.returncode, r.stdout
    except subprocess.TimeoutExpired as e:  # pragma: no cover - backstop only
        rc, out = (
            124,
            (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""),
        )
    run = SnakemakeRun(rc, out, time.monotonic() - t0)
    (cwd / "snakemake-test-output.log").write_text(out)
    return run


def sacct(jobids) -> dict[str, dict[str, str]]:
    """sacct rows of the given jobs' allocations (-X), keyed by job id."""
    jobids = sorted(set(jobids), key=int)
    assert jobids, "no SLURM job ids to look up"
    r = _run(["sacct", "-X", "-P", "-n", "-j", ",".join(jobids), "-o", ",".join(SACCT_FIELDS)])
    assert r.returncode == 0, f"sacct failed: {r.stderr}"
    rows = {}
    for line in r.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == len(SACCT_FIELDS):
            rows[parts[0]] = dict(zip(SACCT_FIELDS, parts, strict=True))
    return rows


def sacct_until_final(jobids, seconds: float = 30) -> dict[str, dict[str, str]]:
    """sacct rows once no job is PENDING/RUNNING any more (accounting lags a second or two)."""
    end = time.monotonic() + seconds
    while True:
        rows = sacct(jobids)
        done = len(rows) == len(set(jobids)) and not any(
            r["State"].split()[0] in {"PENDING", "RUNNING", "COMPLETING", "REQUEUED"}
            for r in rows.values()
        )
        if done or time.monotonic() > end:
            return rows
        time.sleep(1)


def minutes(timelimit: str) -> int:
    """sacct Timelimit ([D-]HH:MM:SS or MM:SS) -> whole minutes."""
    days = 0
    if "-" in timelimit:
        d, timelimit = timelimit.split("-", 1)
        days = int(d)
    parts = [int(p) for p in timelimit.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return days * 1440 + h * 60 + m + (1 if s else 0)


def mem_mb(reqmem: str) -> int:
    """sacct ReqMem (e.g. 300M, 8000M, 2G, 300Mn/300Mc in older Slurm) -> MB."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)[nc]?", reqmem.strip())
    assert m, f"cannot parse ReqMem {reqmem!r}"
    factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2)]
    return round(float(m.group(1)) * factor)


def tres(alloc_tres: str) -> dict[str, str]:
    """AllocTRES 'billing=1,cpu=1,gres/gpu=1,mem=300M,node=1' -> dict."""
    return dict(kv.split("=", 1) for kv in alloc_tres.split(",") if "=" in kv)


def copy_repo(dest: Path) -> Path:
    """Copy the repository's tracked and untracked-not-ignored files to dest (git ls-files)."""
    r = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    for rel in r.stdout.decode().split("\0"):
        if not rel:
            continue
        src = REPO / rel
        if not src.is_file():  # deleted but still in the index
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def profile_config() -> dict:
    import yaml

    return yaml.safe_load((PROFILE / "config.yaml").read_text())
