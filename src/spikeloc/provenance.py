"""Provenance: which code, packages, config and machine produced an artefact."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

__all__ = ["git_commit", "package_versions", "provenance_record"]


@cache
def git_commit(cwd: str | None = None) -> dict[str, object]:
    """``{"commit": sha or "unknown", "dirty": bool | None}``.

    ``SPIKELOC_GIT_COMMIT`` overrides (for builds outside a git checkout, e.g. a tarball).
    """
    env = os.environ.get("SPIKELOC_GIT_COMMIT")
    if env:
        return {"commit": env, "dirty": None}
    where = cwd or str(Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def package_versions(names: tuple[str, ...] = ("spikeloc", "torch", "numpy", "scipy")) -> dict:
    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def provenance_record(**extra: object) -> dict:
    """A JSON-ready record: git commit, package versions, platform, command line + ``extra``."""
    rec = {
        "git": git_commit(),
        "packages": package_versions(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "argv": sys.argv,
    }
    rec.update(extra)
    return rec
