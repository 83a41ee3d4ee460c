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
        "dales_law.contiguous_half",
        "output_readouts.max_membrane",
        "output_readouts.spike_count",
        "filter_and_fire.three_segments",
        "filter_and_fire.one_segment",
        "dynamic_threshold.adaptive_subtract",
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


def test_combine_pools_models_over_test_sets():
    p = lb.EvaluationProtocol(seeds=(1, 2), n_per_seed=100)
    a, b = lb.evaluate(_Fixed(2.0), p), lb.evaluate(_Fixed(6.0), p)
    both = lb.combine([a, b])
    assert both["mae_deg"] == pytest.approx(4.0)
    # sd over the four (model, test set) MAEs 2, 2, 6, 6
    assert both["mae_sd_deg"] == pytest.approx(np.std([2, 2, 6, 6], ddof=1))
    assert (both["n_models"], both["n_test"], both["n_parameters"]) == (2, 400, 7)
    assert both["accuracy_pct"] == pytest.approx((a["accuracy_pct"] + b["accuracy_pct"]) / 2)
    assert lb.combine([a]) == a


def test_protocol_spec_states_the_protocol():
    spec = lb.PROTOCOLS["paper"].spec()
    assert spec["n_test"] == len(spec["seeds"]) * spec["n_per_seed"]
    assert (spec["n_classes"], spec["class_width_deg"]) == (12, 15.0)


def _sweep_module(tmp_path, entry_yaml):
    (tmp_path / "workflow").mkdir()
    shutil.copytree(ROOT / "workflow/schemas", tmp_path / "workflow/schemas")
    (tmp_path / "workflow/analyses").mkdir()
    (tmp_path / "workflow/analyses/mine.yaml").write_text(
        "title: Mine\nowners: [x]\nfigures: []\nruns: {}\nsweeps:\n"
        "  s:\n    preset: tutorial\n    seeds: 3\n"
        "    grid: {model.readout: [mean_membrane, max_membrane]}\n"
        "    zip: {model.tau_hidden_s: [0.02, 0.002], model.tau_output_s: [0.02, 0.002]}\n"
        "    quick: {seeds: 1}\n"
        "leaderboard:\n" + entry_yaml
    )
    return tmp_path


def test_sweep_point_entry_evaluates_every_seed(tmp_path):
    root = _sweep_module(
        tmp_path,
        "  - {name: a, title: A, localiser: trained_run, sweep: s,"
        " point: {model.readout: max_membrane, model.tau_hidden_s: 0.002}}\n",
    )
    (entry,) = reg.entries(root=root, analyses_dir=root / "workflow/analyses")
    paper = [s.path for s in reg.members(entry, "paper", root=root)]
    assert len(paper) == 3 and all("readout=max_membrane" in p for p in paper)
    assert all("tau_hidden_s=0.002" in p for p in paper)
    assert len(reg.members(entry, "quick", root=root)) == 1
    row = reg.evaluate_entry(entry, "quick", root=root)  # nothing trained in tmp_path
    assert row["status"].startswith("not trained: snakemake ")


@pytest.mark.parametrize(
    "entry,message",
    [
        ("sweep: nope", r"leaderboard\[0\]\.sweep: 'nope' is not a sweep"),
        ("sweep: s, point: {model.readout: max_membrane}", r"matches 2 points"),
        ("sweep: s, point: {model.n_hidden: 3}", r"point\.model\.n_hidden: not a swept key"),
        ("run: r, sweep: s", "run or sweep, not both"),
        ("point: {model.readout: max_membrane}", r"point: only with sweep"),
    ],
)
def test_bad_sweep_entries_are_rejected(tmp_path, entry, message):
    root = _sweep_module(tmp_path, f"  - {{name: a, title: A, localiser: trained_run, {entry}}}\n")
    with pytest.raises(SpikelocError, match=message):
        reg.entries(root=root, analyses_dir=root / "workflow/analyses")


def test_rank_orders_evaluated_rows_and_keeps_the_rest():
    p = lb.PROTOCOLS["quick"]
    rows = [
        {"entry": "m.c", "status": "not trained: x"},
        {"entry": "m.b", "status": "ok", **lb.evaluate(_Fixed(9.0), p)},
        {"entry": "m.a", "status": "ok", **lb.evaluate(_Fixed(1.0), p)},
    ]
    assert [(r["entry"], r["rank"]) for r in reg.rank(rows)] == [
        ("m.a", 1),
        ("m.b", 2),
        ("m.c", None),
    ]


def test_figure_numbers_points_by_rank(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from spikeloc.analysis.leaderboard_plots import error_vs_cost

    p = lb.PROTOCOLS["quick"]
    rows = [
        {"entry": "m.b", "module": "m", "status": "ok", **lb.evaluate(_Fixed(9.0), p)},
        {"entry": "n.a", "module": "n", "status": "ok", **lb.evaluate(_Fixed(1.0), p)},
        {"entry": "m.c", "module": "m", "status": "not trained: x"},
    ]
    fig = error_vs_cost(rows)
    a, b = fig.axes[:2]
    assert [t.get_text() for t in a.texts if t.get_text().isdigit()] == ["1", "2"]
    assert a.get_xscale() == "symlog" and b.get_xlabel() == "trainable parameters"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "1 n.a",
        "2 m.b",
        "always answering 0 deg (45 deg)",
    ]
    # the command writes pdf, png and the sidecar from a table
    table = tmp_path / "lb.json"
    table.write_text(__import__("json").dumps({"rows": rows}))
    assert reg.main(["figure", "--table", str(table), "--out-dir", str(tmp_path)]) == 0
    assert {f.suffix for f in tmp_path.glob("leaderboard.*")} == {".pdf", ".png", ".json"}
    (tmp_path / "bad.json").write_text("[]")
    assert reg.main(["figure", "--table", str(tmp_path / "bad.json"), "--out-dir", "x"]) == 2


def test_non_finite_costs_become_null_and_print_as_a_dash(monkeypatch):
    class _Untimed(_Fixed):
        training_time_s = float("nan")

    monkeypatch.setattr(reg, "_factory", lambda entry: lambda options, run: _Untimed(0.0))
    entry = reg.Entry("m", "x", "X", "pkg.mod:f", None, {}, "m.yaml")
    row = reg.evaluate_entry(entry, "quick")
    assert row["status"] == "ok" and row["training_time_s"] is None
    line = reg.format_table([row], "p").splitlines()[3]
    assert line.split()[:3] == ["1", "m.x", "0.0"] and " - " in line
    __import__("json").dumps(row, allow_nan=False)  # strict JSON


def test_task_sweep_point_gives_each_seed_its_task_run(tmp_path, monkeypatch):
    import json

    task = "spikeloc.analysis.jeffress:simulate_counts"
    (tmp_path / "workflow").mkdir()
    shutil.copytree(ROOT / "workflow/schemas", tmp_path / "workflow/schemas")
    (tmp_path / "workflow/analyses").mkdir()
    (tmp_path / "workflow/analyses/mine.yaml").write_text(
        "title: Mine\nowners: [x]\nfigures: []\nruns: {}\nsweeps:\n"
        f"  s: {{task: '{task}', params: {{n: 1}}, grid: {{params.n: [1, 2]}}, seeds: 2}}\n"
        "leaderboard:\n"
        "  - {name: a, title: A, localiser: 'spikeloc.analysis.leaderboard:jeffress_localiser',"
        " sweep: s, point: {params.n: 2}}\n"
    )
    (entry,) = reg.entries(root=tmp_path, analyses_dir=tmp_path / "workflow/analyses")
    assert reg.evaluate_entry(entry, "paper", root=tmp_path)["status"] == (
        "not computed: snakemake analyse_mine"
    )
    specs = reg.members(entry, "paper", root=tmp_path)
    assert [s.seed for s in specs] == [0, 1] and all(s.task == task for s in specs)
    for s in specs:
        d = tmp_path / s.path
        d.mkdir(parents=True)
        (d / "config.json").write_text(
            json.dumps({"task": task, "params": {"n": 2}, "seed": s.seed})
        )
        (d / "metrics.json").write_text(json.dumps({"train_wall_s": 2.0 + s.seed}))
        (d / "provenance.json").write_text("{}")
    got = []

    def factory(options, run):
        got.append(run)
        return _Fixed(float(run.seed))  # seed 0: exact, seed 1: 1 deg off

    monkeypatch.setattr(reg, "_factory", lambda e: factory)
    row = reg.evaluate_entry(entry, "paper", root=tmp_path)
    assert [(r.seed, r.params, r.metrics["train_wall_s"]) for r in got] == [
        (0, {"n": 2}, 2.0),
        (1, {"n": 2}, 3.0),
    ]
    assert row["status"] == "ok" and row["n_models"] == 2
    assert row["mae_deg"] == pytest.approx(0.5)
