"""The leaderboard: the protocol's metrics on a localiser with known answers, the registry's
checks of manifest entries, and the command's table."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from spikeloc.analysis import leaderboard as lb
from spikeloc.errors import SpikelocError
from spikeloc.pipeline import leaderboard as reg

ROOT = Path(__file__).resolve().parents[2]


class _Fixed:
    """Estimates the true IPD plus a fixed offset; 3 spikes per decision."""

    n_parameters, training_time_s, stimulus = 7, 1.5, "none"

    def __init__(self, offset_deg):
        self.offset = np.radians(offset_deg)

    def localise(self, ipds, seed):
        return ipds + self.offset, np.full(len(ipds), 3.0)


def test_protocol_metrics_are_exact():
    p = lb.EvaluationProtocol(seeds=(1, 2), n_per_seed=200)
    row = lb.evaluate(_Fixed(0.0), p)
    assert row["mae_deg"] == 0 and row["accuracy_pct"] == 100
    assert (row["n_parameters"], row["spikes_per_decision"], row["n_test"]) == (7, 3.0, 400)
    row = lb.evaluate(_Fixed(10.0), p)
    assert row["mae_deg"] == pytest.approx(10.0)
    # a 10 deg shift moves 2/3 of the IPDs of a 15 deg class out of it (in expectation)
    assert 20 < row["accuracy_pct"] < 45


def test_circular_error_and_seeded_ipds():
    p = lb.EvaluationProtocol(seeds=(3,), n_per_seed=50)
    np.testing.assert_array_equal(lb.protocol_ipds(p, 3), lb.protocol_ipds(p, 3))
    assert np.all(np.abs(lb.protocol_ipds(p, 3)) < np.pi / 2)
    row = lb.evaluate(_Fixed(360.0 - 5.0), p)  # -5 deg, written the long way round
    assert row["mae_deg"] == pytest.approx(5.0)


def test_repository_entries_are_registered():
    ids = {e.id for e in reg.entries(root=ROOT, analyses_dir=ROOT / "workflow/analyses")}
    assert {
        "tutorial_classical.jeffress",
        "tutorial_classical.jeffress_smoothed",
        "tutorial_surrogate.spiking",
        "tutorial_surrogate.membrane_only",
        "basic_model.basic",
    } <= ids


def _module(tmp_path, entry_yaml):
    (tmp_path / "workflow").mkdir()
    shutil.copytree(ROOT / "workflow/schemas", tmp_path / "workflow/schemas")
    (tmp_path / "workflow/analyses").mkdir()
    (tmp_path / "workflow/analyses/mine.yaml").write_text(
        "title: Mine\nowners: [x]\nfigures: []\nruns:\n  r1: {preset: tutorial, seed: 0}\n"
        "leaderboard:\n" + entry_yaml
    )
    return tmp_path


@pytest.mark.parametrize(
    "entry,message",
    [
        (
            "  - {name: a, title: A, localiser: trained_run, run: nope}\n",
            r"leaderboard\[0\]\.run: .nope. is not a run",
        ),
        ("  - {name: a, title: A, localiser: trained_run}\n", "trained_run needs"),
        ("  - {name: a, title: A, localiser: 'spikeloc.nothing:f'}\n", "leaderboard.a.localiser"),
        (
            "  - {name: a, title: A, localiser: trained_run, run: r1}\n"
            "  - {name: a, title: B, localiser: trained_run, run: r1}\n",
            "used twice",
        ),
    ],
)
def test_bad_entries_are_rejected(tmp_path, entry, message):
    root = _module(tmp_path, entry)
    with pytest.raises(SpikelocError, match=message):
        reg.entries(root=root, analyses_dir=root / "workflow/analyses")


def test_schema_rejects_unknown_entry_field(tmp_path):
    from spikeloc.pipeline.validation import ProblemsError

    root = _module(
        tmp_path, "  - {name: a, title: A, localiser: trained_run, run: r1, weight: 2}\n"
    )
    with pytest.raises(ProblemsError, match="leaderboard"):
        reg.entries(root=root, analyses_dir=root / "workflow/analyses")


def test_table_ranks_by_error():
    rows = [
        {"entry": "m.b", "status": "ok", **lb.evaluate(_Fixed(10.0), lb.PROTOCOLS["quick"])},
        {"entry": "m.a", "status": "ok", **lb.evaluate(_Fixed(0.0), lb.PROTOCOLS["quick"])},
        {"entry": "m.c", "status": "not trained: snakemake x"},
    ]
    lines = reg.format_table(rows, "p").splitlines()
    assert lines[3].split()[:2] == ["1", "m.a"] and lines[4].split()[:2] == ["2", "m.b"]
    assert lines[5].startswith("--  m.c")


def test_cli_rejects_unknown_entry(capsys, monkeypatch):
    from spikeloc.cli import main

    monkeypatch.chdir(ROOT)
    assert main(["leaderboard", "--scale", "quick", "--entry", "nobody.nothing"]) == 2
    assert "--entry: 'nobody.nothing' is not registered" in capsys.readouterr().err
