"""Library features of the minimal-model studies II (issue 15): filter-and-fire neurons,
clean test sets under phase-delay noise, and the study analyses (Dale rows zeroed, ablation)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikeloc.analysis import analysing_trained_networks as atn
from spikeloc.analysis import dales_law, excitatory_only
from spikeloc.core import ensemble, evaluation
from spikeloc.core.config import config_from_dict
from spikeloc.core.models import build_model, dendrite_kernels, filter_segments
from spikeloc.core.training import make_datasets, make_test_set, seeded_generator
from spikeloc.errors import ConfigError

FF = {
    "preset": "tutorial",
    "model": {
        "tau_hidden_s": 0.005,
        "tau_output_s": 0.005,
        "update_order": "immediate",
        "dendrites": {"enabled": True, "segments": 3},
    },
    "training": {"n_train": 64, "n_test": 64, "epochs": 1},
}


def _cfg(d):
    return config_from_dict(d, "test.yaml")


def test_kernels_follow_the_notebook_rule():
    cfg = _cfg(FF).model.dendrites
    g = torch.Generator().manual_seed(3)
    k = dendrite_kernels(cfg, g)
    # redraw the same uniforms: tau_rise, tau_decay, the 1.5x rule and the length
    u = torch.rand(2, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    tau_r = 1 + 15 * u[0]
    tau_d = 8 + 22 * u[1]
    tau_d = torch.where(tau_r >= tau_d / 1.5, 1.5 * tau_r, tau_d)
    assert k.shape == (3, int(4 * float(tau_d.max())) + 1)
    assert torch.allclose(k.max(1).values, torch.ones(3))
    assert torch.all(k[:, 0] == 0)  # exp(0) - exp(0)
    t = torch.arange(k.shape[1], dtype=torch.float64)
    for m in range(3):
        ref = torch.exp(-t / tau_d[m]) - torch.exp(-t / tau_r[m])
        assert torch.allclose(k[m].double(), ref / ref.max(), atol=1e-6)


def test_filter_is_a_causal_convolution_summed_over_segments():
    g = torch.Generator().manual_seed(0)
    kernels = torch.rand(2, 5, generator=g)
    h = torch.randn(3, 7, 4 * 2, generator=g, dtype=torch.float64)  # 4 neurons x 2 segments
    out = filter_segments(h, kernels)
    ref = torch.zeros(3, 7, 4, dtype=torch.float64)
    for n in range(4):
        for m in range(2):
            for t in range(7):
                for k in range(5):
                    if t - k >= 0:
                        ref[:, t, n] += kernels[m, k].double() * h[:, t - k, n * 2 + m]
    assert torch.allclose(out, ref)
    tm = filter_segments(h.transpose(0, 1), kernels, time_major=True)
    assert torch.allclose(tm.transpose(0, 1), ref)


def test_filter_and_fire_fused_matches_reference_and_gradients():
    cfg = _cfg(FF)
    model = build_model(cfg, generator=seeded_generator(0, "model"))
    assert model.W1.shape == (200, 90) and model.kernels.shape[0] == 3
    x = torch.rand(4, 100, 200, generator=torch.Generator().manual_seed(1)) < 0.25
    out_f = model(x)
    g_f = torch.autograd.grad(out_f.readout.sum(), model.W1)[0]
    model.backend = "reference"
    out_r = model(x.float())
    g_r = torch.autograd.grad(out_r.readout.sum(), model.W1)[0]
    assert out_f.hidden_spikes.shape == (4, 100, 30)
    assert torch.equal(out_f.hidden_spikes.float(), out_r.hidden_spikes.float())
    assert float(out_r.hidden_spikes.detach().sum()) > 0
    assert torch.allclose(out_f.readout, out_r.readout, atol=1e-5)
    assert torch.allclose(g_f, g_r, atol=1e-5, rtol=1e-4)


def test_filter_and_fire_trains_alone_in_an_ensemble_sweep():
    ff, lif = _cfg(FF), _cfg({**FF, "model": {**FF["model"], "dendrites": {"enabled": False}}})
    assert ensemble.ensemble_key(ff) is None
    assert ensemble.ensemble_key(lif) is not None
    assert ensemble.group_for_ensembles([lif, ff, lif]) == [[0, 2], [1]]


def test_bad_dendrite_config_names_the_field():
    bad = {**FF, "model": {**FF["model"], "dendrites": {"enabled": True, "segments": 0}}}
    with pytest.raises(ConfigError, match="model.dendrites.segments"):
        _cfg(bad)
    bad = {**FF, "model": {**FF["model"],
                           "dendrites": {"enabled": True, "tau_rise_min_steps": 9, "tau_rise_max_steps": 2}}}
    with pytest.raises(ConfigError, match="tau_rise_max_steps"):
        _cfg(bad)


def test_clean_test_removes_noise_from_the_test_set_only():
    base = {"preset": "tutorial", "stimulus": {"phase_delay_noise_rad": 0.5},
            "training": {"n_train": 32, "n_test": 32, "n_val": 32}}
    noisy = _cfg(base)
    clean = _cfg({**base, "training": {**base["training"], "clean_test": True}})
    no_noise = _cfg({**base, "stimulus": {"phase_delay_noise_rad": 0.0}})
    d_noisy, d_clean = make_datasets(noisy, torch.device("cpu")), make_datasets(clean, torch.device("cpu"))
    assert torch.equal(d_noisy["train"].spikes, d_clean["train"].spikes)
    assert torch.equal(d_noisy["val"].spikes, d_clean["val"].spikes)
    assert not torch.equal(d_noisy["test"].spikes, d_clean["test"].spikes)
    assert torch.equal(d_clean["test"].spikes, make_test_set(no_noise).spikes)
    # members that differ only in clean_test do not share data in an ensemble
    assert ensemble._data_key(noisy) != ensemble._data_key(clean)


def test_zero_inhibitory_zeroes_exactly_the_inhibitory_rows():
    cfg = _cfg({"preset": "tutorial",
                "model": {"dale": {"enabled": True, "inhibitory_fraction": 0.5, "placement": "contiguous"}}})
    model = build_model(cfg, generator=seeded_generator(0, "model"))
    z = dales_law.zero_inhibitory(model)
    assert torch.all(z.W1[:100] == 0) and torch.equal(z.W1[100:], model.W1[100:])
    assert torch.all(z.W2[:15] == 0) and torch.equal(z.W2[15:], model.W2[15:])
    assert dales_law.condition_of("excitatory", "dale") == "inputs_excitatory"
    with pytest.raises(ValueError):
        dales_law.zero_inhibitory(build_model(_cfg({"preset": "tutorial"})))


def test_ablating_a_silent_unit_changes_nothing_and_a_spiking_one_changes_readouts():
    cfg = _cfg({"preset": "tutorial", "training": {"n_train": 64, "n_test": 64}})
    model = build_model(cfg, generator=seeded_generator(0, "model"))
    with torch.no_grad():
        model.W1[:, 3] = -1.0  # unit 3 can never spike
        model.W1[:, 5] = 0.5  # unit 5 spikes a lot
    data = make_test_set(cfg)
    silent = atn.silent_units(model, data)
    assert 3 in silent and 5 not in silent
    base = evaluation.predict(model, data)
    after = evaluation.predict(atn.ablate(model, [3]), data)
    assert torch.equal(base.readout, after.readout)
    after5 = evaluation.predict(atn.ablate(model, [5]), data)
    assert not torch.equal(base.readout, after5.readout)
    acc = atn.ablation_accuracies(model, data)
    assert acc.shape == (30,) and acc[3] == evaluation.accuracy(base)
    with pytest.raises(ValueError):
        atn.ablate(model, [30])


def test_diagonality_of_a_band_and_of_noise():
    assert excitatory_only.diagonality(np.eye(6)) == pytest.approx(1.0)
    assert excitatory_only.diagonality(np.fliplr(np.eye(6))) == pytest.approx(-1.0)
    assert abs(excitatory_only.diagonality(np.ones((6, 6)))) < 1e-12
    assert math.isfinite(excitatory_only.diagonality(np.zeros((3, 3))))


def test_filter_and_fire_weights_round_trip(tmp_path):
    from spikeloc.io import save_model
    from spikeloc.pipeline.results import load_trained_model

    cfg = _cfg(FF)
    model = build_model(cfg, generator=seeded_generator(4, "model"))
    save_model(tmp_path / "model.pt", model, cfg.to_dict())
    loaded, _ = load_trained_model(tmp_path / "model.pt")
    assert torch.equal(loaded.kernels, model.kernels)  # length from the file, not a new draw
    assert torch.equal(loaded.W1, model.W1)
    x = torch.rand(2, 100, 200, generator=torch.Generator().manual_seed(2)) < 0.2
    assert torch.equal(loaded(x).readout, model(x).readout)
