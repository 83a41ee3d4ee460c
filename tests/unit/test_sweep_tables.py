"""Sweep tables: written (chunks.table_text), loaded (results.load_sweep), summarised
(spikeloc.analysis.sweep_stats), plotted (plots.sweep_curve); the code their runs' fingerprints
hash; the wording of a bad seeds value."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from spikeloc.analysis import plots, sweep_stats
from spikeloc.errors import SpikelocError
from spikeloc.pipeline import chunks, codehash, results
from spikeloc.pipeline.validation import schema_problems


def table() -> pd.DataFrame:
    """A sweep table as load_sweep returns it: two grid axes x seeds, one metric missing."""
    rows = []
    for tau, acc in ((0.01, [0.5, 0.7]), (0.02, [0.6, 0.6, 0.9]), (0.005, [0.3])):
        for seed, a in enumerate(acc):
            rows.append(
                {
                    "run": f"tau_hidden_s={tau:g}__seed={seed}",
                    "path": f"results/quick/runs/m/tau/tau_hidden_s={tau:g}__seed={seed}",
                    "model.tau_hidden_s": tau,
                    "training.lr": 0.01 if seed < 2 else 0.02,
                    "seed": seed,
                    "accuracy": a,
                    "device": "cpu",
                    "hidden_rates_hz": [1.0, 2.0],
                }
            )
    rows.append({**rows[0], "seed": 9, "accuracy": float("nan")})
    return pd.DataFrame(rows)


def test_swept_columns_are_the_dotted_ones_in_table_order():
    assert sweep_stats.swept_columns(table()) == ["model.tau_hidden_s", "training.lr"]


def test_mean_sd_per_swept_value():
    got = sweep_stats.mean_sd(table(), "accuracy", by="model.tau_hidden_s")
    assert list(got.columns) == ["model.tau_hidden_s", "mean", "sd", "n"]
    assert got["model.tau_hidden_s"].tolist() == [0.005, 0.01, 0.02]  # sorted
    assert got["n"].tolist() == [1, 2, 3]  # the NaN metric is left out
    assert got["mean"].tolist() == pytest.approx([0.3, 0.6, 0.7])
    assert math.isnan(got["sd"][0])  # one run: no spread
    assert got["sd"][1] == pytest.approx(0.1414213562, rel=1e-9)  # sample sd (ddof 1)
    assert got["sd"][2] == pytest.approx(0.1732050808, rel=1e-9)


def test_mean_sd_by_every_swept_key_by_default():
    got = sweep_stats.mean_sd(table(), "accuracy")
    assert list(got.columns) == ["model.tau_hidden_s", "training.lr", "mean", "sd", "n"]
    assert len(got) == 4  # (0.005, .01), (0.01, .01), (0.02, .01), (0.02, .02)
    last = got.iloc[-1]
    assert (last["model.tau_hidden_s"], last["training.lr"], last["n"]) == (0.02, 0.02, 1)


@pytest.mark.parametrize(
    ("metric", "by", "error", "match"),
    [
        ("acuracy", None, KeyError, "no column 'acuracy'"),
        ("accuracy", "model.tau", KeyError, "no column 'model.tau'"),
        ("device", None, ValueError, "'device' is not numeric"),
    ],
)
def test_mean_sd_refuses_unknown_or_non_numeric_columns(metric, by, error, match):
    with pytest.raises(error, match=match):
        sweep_stats.mean_sd(table(), metric, by=by)


def test_mean_sd_needs_a_key_when_nothing_was_swept():
    plain = table().drop(columns=["model.tau_hidden_s", "training.lr"])
    with pytest.raises(ValueError, match="no swept columns"):
        sweep_stats.mean_sd(plain, "accuracy")
    assert len(sweep_stats.mean_sd(plain, "accuracy", by="seed")) == 4


def test_sweep_curve_draws_means_spread_and_single_runs():
    t = table()
    summary = sweep_stats.mean_sd(t, "accuracy", by="model.tau_hidden_s")
    fig = plots.sweep_curve(
        summary,
        "model.tau_hidden_s",
        runs=t,
        metric="accuracy",
        xlabel="tau (ms)",
        ylabel="accuracy (%)",
        x_scale=1e3,
        y_scale=100,
    )
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "tau (ms)" and ax.get_ylabel() == "accuracy (%)"
    single, mean = ax.lines[0], ax.lines[1]
    assert len(single.get_xdata()) == len(t)
    assert mean.get_xdata().tolist() == pytest.approx([5, 10, 20])
    assert mean.get_ydata().tolist() == pytest.approx([30, 60, 70])
    # also from plain rows, without single runs; a summary must not be empty
    rows = summary.to_dict("records")
    labels = [
        line.get_label() for line in plots.sweep_curve(rows, "model.tau_hidden_s").axes[0].lines
    ]
    assert "single runs" not in labels
    with pytest.raises(ValueError, match="empty summary"):
        plots.sweep_curve([], "x")
    with pytest.raises(ValueError, match="needs `metric`"):
        plots.sweep_curve(rows, "model.tau_hidden_s", runs=t)


def test_a_written_table_loads_back_in_its_column_order(tmp_path):
    """chunks.table_text orders columns run, path, swept keys, seed, metrics (the result files
    have sorted keys); load_sweep parses list columns back, whatever pandas' text dtype."""
    rows = [
        {
            "run": f"tau_hidden_s=0.01__seed={s}",
            "path": f"r/tau_hidden_s=0.01__seed={s}",
            "model.tau_hidden_s": 0.01,
            "seed": s,
            "accuracy": 0.5 + s / 10,
            "device": "cpu",
            "hidden_rates_hz": [1.5, 2.0 + s],
        }
        for s in (0, 1)
    ]
    result = tmp_path / "tau.0.json"
    result.write_text(json.dumps({"format": chunks.RESULT_FORMAT, "rows": rows}, sort_keys=True))
    table = tmp_path / "tau.csv"
    chunks.write_table([result], table)
    header = table.read_text().splitlines()[0].split(",")
    assert header[:4] == ["run", "path", "model.tau_hidden_s", "seed"]
    df = results.load_sweep(table)
    assert df["hidden_rates_hz"].tolist() == [[1.5, 2.0], [1.5, 3.0]]
    assert df["device"].tolist() == ["cpu", "cpu"] and df["seed"].tolist() == [0, 1]
    assert sweep_stats.mean_sd(df, "accuracy")["mean"].tolist() == pytest.approx([0.55])
    with pytest.raises(SpikelocError, match=r"no such sweep table; build it first: `snakemake "):
        results.load_sweep(tmp_path / "nope.csv")


def test_ensemble_training_code_is_part_of_the_code_hash():
    """Runs trained as ensemble members retrain when the ensemble code changes."""
    files = {p.relative_to(codehash._package_dir()).as_posix() for p in codehash.code_files()}
    assert {"core/ensemble.py", "core/training.py"} <= files


@pytest.mark.parametrize(
    ("seeds", "problem"),
    [
        (0, "0 is less than the minimum of 1"),
        ([1, 1], "lists the same entry twice"),
        ("two", "must be an integer or a list, got a string"),
    ],
)
def test_a_bad_value_of_one_of_two_types_is_worded_for_its_own_type(seeds, problem):
    schema = {
        "oneOf": [
            {"type": "integer", "minimum": 1},
            {"type": "array", "uniqueItems": True, "items": {"type": "integer"}},
        ]
    }
    got = schema_problems({"seeds": seeds}, {"properties": {"seeds": schema}}, "m.yaml")
    assert got == [f"m.yaml: seeds: {problem}"]
