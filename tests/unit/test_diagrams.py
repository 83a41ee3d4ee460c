"""Figures 1 and 2 are drawn from the project's own definitions."""

import numpy as np
import pytest

from spikeloc.analysis import diagrams
from spikeloc.core.config import config_from_dict


def test_workflow_graph_follows_the_manifests():
    pytest.importorskip("graphviz")
    mods = {
        "a": {
            "owners": ["x"],
            "original_authors": ["y"],
            "figures": [1, 2],
            "variables": [],
            "leaderboard": [1],
        },
        "b": {"owners": ["x"], "original_authors": [], "figures": [], "variables": [1]},
    }
    src = diagrams.workflow_graph(mods, {"a": 3}, {"x": "Ann X"}).source
    assert "train_chunk x3" in src and "t_b" not in src  # b trains nothing
    assert '"Ann X"' in src or "Ann X" in src
    assert "p_y -> m_a" in src and "p_x -> m_b" in src
    assert "m_a -> leaderboard" in src and "m_b -> leaderboard" not in src
    assert "analyse_a\n(2 figures, 0 numbers)" in src


def test_figure2_input_is_seeded_and_matches_the_stimulus():
    cfg = config_from_dict({"preset": "tutorial"}).stimulus
    s1, th = diagrams.figure2_input(cfg, np.radians(36), 123414)
    s2, _ = diagrams.figure2_input(cfg, np.radians(36), 123414)
    np.testing.assert_array_equal(s1, s2)
    assert s1.shape == th.shape == (100, 200)
    # right-ear fibre j leads left-ear fibre j by the IPD
    np.testing.assert_allclose(th[:, 100] - th[:, 0], np.radians(36), atol=1e-12)
    assert 0.15 < s1.mean() < 0.3  # mean rate ~225 Hz at dt 1 ms
