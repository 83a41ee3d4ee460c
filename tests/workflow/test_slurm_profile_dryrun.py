"""Dry runs through profiles/slurm (no cluster needed): which resources a job would ask for.

`snakemake -n` prints each job's resources ("resources: ..., gpu=1"); the SLURM plugin turns
gpu=N into `sbatch --gpus=N`, mem_mb into --mem, runtime into -t, threads into
--cpus-per-task.  The training rule must ask for a GPU exactly when the config says
device: cuda, and any set-resources the profile has for it must apply.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
DEMO_SNAKEFILE = REPO / "tests" / "slurm" / "demo" / "Snakefile"

JOB_HEADER = re.compile(r"^\s*(?:local)?rule (\w+):\s*$")
RESOURCES = re.compile(r"^\s+resources: (.*)$")


def snakemake_bin() -> str:
    cand = Path(sys.executable).parent / "snakemake"
    if cand.exists():
        return str(cand)
    found = shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed (pip install -e '.[workflow]')")
    return found


def dry_run(args: list[str], cwd: Path) -> str:
    cmd = [snakemake_bin(), "-n", "--workflow-profile", str(PROFILE), *args]
    r = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600
    )
    assert r.returncode == 0, f"{' '.join(cmd)} failed (rc {r.returncode}):\n{r.stdout[-4000:]}"
    return r.stdout


def parse_resources(text: str) -> dict[str, str]:
    """'tmpdir=/tmp, mem_mb=300, mem=300 MB, gpu=1' -> {'tmpdir': '/tmp', ...}"""
    out = {}
    for item in text.split(", "):
        if "=" in item:
            k, v = item.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def jobs_of(output: str, rule: str) -> list[dict[str, str]]:
    """The resources of every job of `rule` in a dry-run listing."""
    found, current = [], None
    for line in output.splitlines():
        m = JOB_HEADER.match(line)
        if m:
            current = m.group(1)
            continue
        m = RESOURCES.match(line)
        if m and current == rule:
            found.append(parse_resources(m.group(1)))
            current = None
    return found


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def copy_repo(dest: Path) -> Path:
    """Tracked and untracked-not-ignored files of the repository (no results/, no .snakemake/)."""
    r = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    for rel in r.stdout.decode().split("\0"):
        if rel and (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    return dest


def test_profile_is_fully_commented():
    """Every setting line of the profile has a comment right above it or on the line."""
    lines = (PROFILE / "config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        prev = lines[i - 1].strip() if i else ""
        assert "#" in line or prev.startswith("#"), (
            f"config.yaml line {i + 1} has no comment: {line}"
        )
    prof = profile()
    assert prof["executor"] == "slurm"
    assert prof["default-resources"]["slurm_partition"]
    assert "slurm_account" not in prof["default-resources"], "the account is the user's to set"
    assert "gpu" not in prof.get("set-resources", {}).get("train_chunk", {}), (
        "GPU use follows the config"
    )


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_dry_run_gpu_resources_demo(tmp_path, device):
    """The demo workflow's `train` mirrors the pipeline's: gpu=1 only with device=cuda."""
    out = dry_run(
        ["-s", str(DEMO_SNAKEFILE), "sweep", "all", "--config", f"device={device}"], tmp_path
    )
    train = jobs_of(out, "train")
    assert len(train) == 2, out[-3000:]
    # the rule's own 500 MB / 10 min, unless the profile overrides them for `train`
    want = {"mem_mb": 500, "runtime": 10, **profile().get("set-resources", {}).get("train", {})}
    for res in train:
        assert res.get("gpu", "0") == ("1" if device == "cuda" else "0"), res
        assert int(res["mem_mb"]) == want["mem_mb"], res
        assert int(res["runtime"]) == want["runtime"], res
        partition = want.get("slurm_partition", profile()["default-resources"]["slurm_partition"])
        assert res["slurm_partition"] == partition, res
    (fit,) = jobs_of(out, "fit")
    assert fit["gpu"] == "1" and fit["mem_mb"] == "300" and fit["runtime"] == "5", fit


def test_dry_run_gpu_resources(tmp_path):
    """The project's quick DAG: `train_chunk` jobs ask for gpu=1 with device=cuda, none with cpu."""
    if not (REPO / "Snakefile").exists():
        pytest.skip("no Snakefile at the repository root yet (the pipeline is not written)")
    if not (REPO / "config" / "quick.yaml").exists():
        pytest.skip("no config/quick.yaml yet")
    work = copy_repo(tmp_path / "repo")
    base = ["figures", "--configfile", "config/quick.yaml"]
    cuda = jobs_of(dry_run([*base, "--config", "device=cuda"], work), "train_chunk")
    assert cuda, "no job of rule `train_chunk` in the DAG of `figures`"
    assert all(res.get("gpu") == "1" for res in cuda), cuda
    cpu = jobs_of(dry_run([*base, "--config", "device=cpu"], work), "train_chunk")
    assert cpu, "no job of rule `train_chunk` in the DAG of `figures`"
    # no GPU request: gpu absent (or 0, which the plugin also sends no --gpus for)
    assert all(res.get("gpu", "0") == "0" for res in cpu), cpu
    assert not any("gpu_model" in res for res in cpu), cpu
