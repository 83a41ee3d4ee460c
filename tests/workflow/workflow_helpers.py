"""Helpers for the workflow and paper tests: a throw-away copy of the repository and snakemake in it.

Tests never run the workflow in the working tree: each gets a copy of the tracked and
untracked-but-not-ignored files (what a fresh clone plus uncommitted work would hold), with
the copy's ``src/`` first on PYTHONPATH and the interpreter's ``bin/`` first on PATH, so the
rules' ``spikeloc``, ``papermill`` and ``python`` are the ones under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# what a copy leaves out when the repository is not a git checkout (e.g. an unpacked tarball)
_GENERATED = {
    ".git",
    ".snakemake",
    "results",
    "logs",
    "figures",
    ".venv",
    "build",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
}


def repo_files(repo: Path = REPO) -> list[str]:
    """Tracked + untracked-not-ignored files (``git ls-files -co --exclude-standard``)."""
    try:
        r = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=repo,
            capture_output=True,
            check=True,
            timeout=60,
        )
        files = [f for f in r.stdout.decode().split("\0") if f]
        if files:
            return files
    except (OSError, subprocess.SubprocessError):
        pass
    out = []
    for p in repo.rglob("*"):
        rel = p.relative_to(repo)
        if p.is_file() and not (set(rel.parts) & _GENERATED):
            out.append(str(rel))
    return sorted(out)


def copy_repo(dest: Path, repo: Path = REPO) -> Path:
    """Copy the repository's source files into ``dest`` (created); returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in repo_files(repo):
        src = repo / rel
        if not src.is_file():  # deleted in the working tree but still tracked
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    (dest / "figures").mkdir(exist_ok=True)
    return dest


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{root / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env.setdefault("SPIKELOC_GIT_COMMIT", "test0000000000000000000000000000000000000")
    env["MPLBACKEND"] = "Agg"
    return env


def snakemake_exe() -> str:
    exe = BIN / "snakemake"
    if exe.exists():
        return str(exe)
    found = shutil.which("snakemake")
    if not found:
        pytest.skip("snakemake is not installed (pip install -e '.[workflow]')")
    return found


def run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env_for(cwd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def snakemake(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``snakemake ARGS`` in ``cwd`` (the default workflow profile applies)."""
    return run([snakemake_exe(), *args], cwd, timeout)
