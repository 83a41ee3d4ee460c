"""The reservoir module: without recurrence the reservoir is the core's (untrained) tutorial
hidden layer spike for spike, the recurrent weights have the requested spectral radius and
act one step later, features and the ridge readout are what they say, bad parameters are
refused by name, and a tiny run's saved readout reproduces its test accuracy and enters the
leaderboard."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spikeloc.analysis import leaderboard as lb
from spikeloc.analysis import reservoir as rs
from spikeloc.core.config import config_from_dict
from spikeloc.core.models import SNN
from spikeloc.core.neurons import LIFParameters
from spikeloc.core.stimuli import make_dataset
from spikeloc.core.training import make_test_set, seeded_generator
from spikeloc.errors import ConfigError

TINY = {"n_reservoir": 20, "n_train": 96, "n_test": 48, "batch_size": 40}


def _reservoir(**params):
    p = rs._check_params(params)
    cfg = rs.run_config(p, 0)
    return rs.make_reservoir(p, cfg, seeded_generator(0, "model")), cfg


def test_without_recurrence_it_is_the_tutorial_hidden_layer():
    res, cfg = _reservoir(n_reservoir=30, spectral_radius=0.0)
    assert torch.count_nonzero(res.W_rec) == 0
    # the tutorial's initial input weights: U(-1/sqrt(12), 1/sqrt(12))
    assert float(res.W_in.abs().max()) <= 1 / np.sqrt(12)
    data = make_dataset(8, cfg.stimulus, generator=torch.Generator().manual_seed(1))
    snn = SNN(cfg.model, cfg.stimulus.dt_s, backend="reference")
    with torch.no_grad():
        snn.W1.copy_(res.W_in)
    spikes = rs.simulate(res, data.spikes)
    assert spikes.sum() > 0
    assert torch.equal(spikes, snn(data.spikes.float()).hidden_spikes)


def test_recurrent_weights_spectral_radius_and_sparsity():
    res, _ = _reservoir(n_reservoir=200, spectral_radius=1.3, connectivity=0.1)
    w = res.W_rec.double()
    assert float(torch.linalg.eigvals(w).abs().max()) == pytest.approx(1.3, rel=1e-5)
    assert torch.count_nonzero(torch.diagonal(w)) == 0
    density = float((w != 0).double().mean())
    assert 0.09 < density < 0.11
    scaled, _ = _reservoir(n_reservoir=200, input_scaling=2.5)
    base, _ = _reservoir(n_reservoir=200)
    torch.testing.assert_close(scaled.W_in, 2.5 * base.W_in)


def test_recurrent_current_arrives_one_step_after_the_spike():
    # neuron 0 is driven over threshold by the input; neuron 1 only through W_rec[0, 1]
    lif = LIFParameters(tau_s=0.02, dt_s=1e-3, threshold=1.0)
    res = rs.Reservoir(torch.tensor([[1.5, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 0.0]]), lif)
    x = torch.zeros(1, 6, 1)
    x[0, 0, 0] = 1.0
    s = rs.simulate(res, x)[0]
    # published order (spike from the previous potential, reset one step late): v_1 = 1.5,
    # so s_2 = 1, and v_2 = 1.43 (the reset uses s_1 = 0) gives the doublet s_3 = 1
    assert s[:, 0].tolist() == [0, 0, 1, 1, 0, 0]
    # s_2 of neuron 0 enters h_2: v_3 = 2, so s_4 = 1; h_3 = 2 again (s_3): v_4 = 3.9, s_5 = 1
    assert s[:, 1].tolist() == [0, 0, 0, 0, 1, 1]


def test_features():
    s = torch.zeros(2, 10, 3)
    s[0, [0, 3, 9], 1] = 1
    s[1, 5, 2] = 1
    assert rs.features(s, "counts").tolist() == [[0, 3, 0], [0, 0, 1]]
    b = rs.features(s, "binned", n_bins=2)  # windows 0-4 and 5-9, neurons in order per window
    assert b.tolist() == [[0, 2, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    assert np.array_equal(b.reshape(2, 2, 3).sum(1), rs.features(s, "counts"))


@pytest.mark.parametrize(
    "params, field",
    [
        ({"n_reservoir": 0}, "n_reservoir"),
        ({"spectral_radius": -1}, "spectral_radius"),
        ({"connectivity": 1.5}, "connectivity"),
        ({"features": "trace"}, "features"),
        ({"alphas": []}, "alphas"),
        ({"alphas": [1, -2]}, "alphas[1]"),
        ({"tau_ms": 0}, "tau_ms"),
        ({"phase_offset": "per_epoch"}, "phase_offset"),
        ({"size": 3}, "size"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, field, tmp_path):
    with pytest.raises(ConfigError) as exc:
        rs.train_reservoir(params, seed=0, out_dir=tmp_path)
    assert exc.value.field == field
    assert not (tmp_path / "reservoir.npz").exists()


def test_tiny_run_readout_reproduces_its_accuracy_and_enters_the_leaderboard(tmp_path):
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    m = rs.train_reservoir(TINY, seed=2, out_dir=tmp_path)
    assert m["n_features"] == 20 and m["n_parameters"] == 20 * 12 + 12
    assert m["ridge_alpha"] in rs.DEFAULTS["alphas"]
    assert m["train_wall_s"] == pytest.approx(m["simulate_train_wall_s"] + m["fit_wall_s"])
    cfg = rs.run_config(TINY, 2)
    trained = rs.load_reservoir(tmp_path / "reservoir.npz")
    test = make_test_set(cfg)
    pred, spikes = trained.predict(test.spikes)
    assert float((pred == test.labels.numpy()).mean()) == m["accuracy"]
    assert spikes.mean() == pytest.approx(m["spikes_per_sample"])
    # the saved readout is sklearn's ridge fit on the training counts
    train = make_dataset(
        TINY["n_train"], cfg.stimulus, generator=seeded_generator(2, "data"), dtype=torch.bool
    )
    z = rs.features(rs.simulate(trained.reservoir, train.spikes))
    clf = RidgeClassifierCV(alphas=rs.DEFAULTS["alphas"])
    clf.fit(StandardScaler().fit_transform(z), train.labels.numpy())
    np.testing.assert_allclose(trained.coef, clf.coef_, rtol=1e-10, atol=1e-12)

    run = SimpleNamespace(path=tmp_path, params=TINY, seed=2, metrics=m)
    loc = rs.leaderboard_localiser({}, run)
    row = lb.evaluate(loc, lb.EvaluationProtocol(seeds=(9001, 9002), n_per_seed=24))
    assert row["n_parameters"] == 252 and row["n_test"] == 48
    assert row["training_time_s"] == m["train_wall_s"]
    assert row["spikes_per_decision"] > 0


@pytest.mark.slow
def test_more_neurons_read_out_better(tmp_path):
    small = rs.train_reservoir(
        {**TINY, "n_reservoir": 5, "n_train": 512, "n_test": 256}, seed=0, out_dir=tmp_path / "a"
    )
    large = rs.train_reservoir(
        {**TINY, "n_reservoir": 200, "n_train": 512, "n_test": 256}, seed=0, out_dir=tmp_path / "b"
    )
    assert large["train_accuracy"] > small["train_accuracy"]
    assert large["accuracy"] > 1.5 * large["chance"]


def test_same_samples_as_the_snn_run():
    cfg = rs.run_config({"n_test": 32}, seed=4)
    snn = config_from_dict(
        {
            "preset": "tutorial",
            "seed": 4,
            "training": {"n_test": 32},
            "stimulus": {"phase_offset": "per_sample"},
        }
    )
    assert torch.equal(make_test_set(cfg).spikes, make_test_set(snn).spikes)


def test_size_figure_panels():
    import pandas as pd

    from spikeloc.analysis import reservoir_plots

    size = pd.DataFrame(
        {
            "params.n_reservoir": [10, 10, 100, 100],
            "seed": [0, 1, 0, 1],
            "chance": 1 / 12,
            "accuracy": [0.2, 0.22, 0.3, 0.32],
            "train_accuracy": [0.3, 0.3, 0.6, 0.62],
        }
    )
    radius = pd.DataFrame(
        {
            "params.spectral_radius": [0.0, 0.9],
            "seed": [0, 0],
            "chance": 1 / 12,
            "accuracy": [0.3, 0.31],
        }
    )
    surrogate = pd.DataFrame({"accuracy": [0.7, 0.74]})
    fig = reservoir_plots.size_figure(size, radius, surrogate, radius_size=100)
    a, b = fig.axes
    assert a.get_xscale() == "log" and a.get_xlabel() == "Reservoir neurons"
    assert b.get_title(loc="left") == "b  recurrence (100 neurons)"
    labels = [t.get_text() for t in a.get_legend().get_texts()]
    assert "surrogate gradients, 30 LIF (test)" in labels and "training, mean" in labels
