"""Fixtures of the workflow tests (helpers live in workflow_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_helpers import copy_repo


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A fresh copy of the repository for one test."""
    return copy_repo(tmp_path / "repo")
