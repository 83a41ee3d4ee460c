"""Shared fixtures: repository paths and the published basic-model weights."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PUBLISHED_WEIGHTS = REPO / "data" / "published-basic-model" / "weights.npz"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def published_weights() -> Path:
    assert PUBLISHED_WEIGHTS.exists(), f"vendored weights missing: {PUBLISHED_WEIGHTS}"
    return PUBLISHED_WEIGHTS
