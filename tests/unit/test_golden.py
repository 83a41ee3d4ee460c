"""The published basic model through the library and the CLI (the golden tests)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from spikeloc.core import evaluation
from spikeloc.core.config import config_from_dict
from spikeloc.core.stimuli import make_dataset
from spikeloc.pipeline.results import load_trained_model

PUBLISHED_RATES = [124.1, 133.7, 116.8, 132.1, 124.1, 138.3, 135.6, 118.6]


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_exact_published_numbers_on_the_published_test_set(published_weights, backend):
    """Catalogue §2.2: the notebook's numpy stream (seed 32844534) and the published weights
    give accuracy 3384/4096, MAE 2.607 deg (midpoints), 4.505 deg (continuous), and the hidden
    firing rates of fig05 -- bit for bit."""
    model, cfg = load_trained_model(published_weights, preset="basic")
    model.backend = backend
    data = make_dataset(4096, cfg.stimulus, legacy_numpy_seed=32844534)
    p = evaluation.predict(model, data)
    assert int((p.predicted == p.labels).sum()) == 3384
    assert evaluation.accuracy(p) == 0.826171875
    assert evaluation.mae_midpoint_deg(p) == pytest.approx(2.607, abs=5e-4)
    assert evaluation.mae_continuous_deg(p) == pytest.approx(4.505, abs=5e-4)
    assert np.round(evaluation.firing_rates_hz(p), 1).tolist() == PUBLISHED_RATES


def test_cli_evaluate_published_weights_on_a_fresh_test_set(published_weights):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "spikeloc.cli",
            "evaluate",
            "--preset",
            "basic",
            "--weights",
            str(published_weights),
            "--samples",
            "4096",
            "--seed",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    res = json.loads(out.stdout)
    assert 0.80 <= res["accuracy"] <= 0.85
    assert 2.3 <= res["mae_midpoint_deg"] <= 3.0
    assert res["mae_continuous_deg"] > res["mae_midpoint_deg"]
    assert len(res["hidden_rates_hz"]) == 8
    assert all(110 <= r <= 150 for r in res["hidden_rates_hz"])


def test_published_weights_model_file_round_trip(tmp_path, published_weights):
    from spikeloc.io import save_model

    model, cfg = load_trained_model(published_weights, preset="basic")
    save_model(tmp_path / "model.pt", model, cfg.to_dict())
    again, cfg2 = load_trained_model(tmp_path / "model.pt")
    assert cfg2 == cfg
    assert torch.equal(again.W1, model.W1) and torch.equal(again.W2, model.W2)


def test_basic_preset_is_the_published_architecture():
    cfg = config_from_dict({"preset": "basic"})
    assert (
        cfg.stimulus.frequency_hz,
        cfg.model.n_inputs,
        cfg.model.n_hidden,
        cfg.model.n_classes,
    ) == (50.0, 200, 8, 12)
    assert cfg.model.tau_hidden_s == cfg.model.tau_output_s == 0.002
    assert cfg.stimulus.probability == "exact"
    t = cfg.training
    assert (t.n_train, t.batch_size, t.epochs, t.lr, t.optimizer) == (
        16384,
        128,
        100,
        0.001,
        "adam",
    )
    assert t.regulariser.enabled and t.regulariser.form == "code"
    tut = config_from_dict({"preset": "tutorial"})
    assert (tut.stimulus.frequency_hz, tut.model.n_hidden, tut.model.tau_hidden_s) == (
        20.0,
        30,
        0.02,
    )
    assert tut.model.init == "starting_notebook"
