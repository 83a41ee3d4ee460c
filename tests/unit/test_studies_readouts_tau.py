"""Analysis helpers of membrane_time_constant, output_readouts and dynamic_threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spikeloc.analysis import membrane_time_constant as mtc
from spikeloc.analysis import output_readouts as orr


def table():
    return pd.DataFrame(
        {
            "model.readout": ["mean_membrane", "spike_count"] * 4,
            "model.tau_hidden_s": [0.002, 0.002, 0.02, 0.02] * 2,
            "seed": [1, 1, 1, 1, 0, 0, 0, 0],
            "accuracy": [0.8, 0.5, 0.4, 0.6, 0.85, 0.55, 0.45, 0.65],
            "train_accuracy": np.linspace(0.1, 0.8, 8),
        }
    )


def test_condition_samples_select_rows_in_seed_order():
    got = orr.condition_samples(
        table(),
        {
            "oc_2ms": {"model.readout": "mean_membrane", "model.tau_hidden_s": 0.002},
            "fr_20ms": {"model.readout": "spike_count", "model.tau_hidden_s": 0.02},
        },
    )
    np.testing.assert_array_equal(got["oc_2ms"], [0.85, 0.8])
    np.testing.assert_array_equal(got["fr_20ms"], [0.65, 0.6])


def test_condition_samples_reject_an_empty_condition_and_a_missing_column():
    with pytest.raises(ValueError, match="condition x: no run matches"):
        orr.condition_samples(table(), {"x": {"model.readout": "max_membrane"}})
    with pytest.raises(KeyError, match="no column 'model.reset'"):
        orr.condition_samples(table(), {"x": {"model.reset": "zero"}})


def test_extremes_of_a_tau_sweep():
    lo, acc_lo, hi, acc_hi = mtc.extremes(table())
    assert (lo, hi) == (0.002, 0.02)
    np.testing.assert_array_equal(acc_lo, [0.85, 0.55, 0.8, 0.5])
    assert len(acc_hi) == 4
    assert list(mtc.PUBLISHED_ACCURACY_PCT) == list(range(2, 30, 3))


def test_boxplot_has_one_tick_per_condition():
    t = {"a": [0.1, 0.2], "b": [0.3, 0.4]}
    fig = orr.condition_boxplot(t, t)
    assert [x.get_text() for x in fig.axes[0].get_xticklabels()] == ["a", "b"]
