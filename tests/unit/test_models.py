"""Network readouts, architectures and dropout (reference backend: the oracle)."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloc.core.config import config_from_dict
from spikeloc.core.models import build_model
from spikeloc.core.training import train


def model_for(backend="reference", **model):
    cfg = config_from_dict({"preset": "tutorial", "backend": backend, "model": model})
    torch.manual_seed(0)
    return build_model(cfg, generator=torch.Generator().manual_seed(1)), cfg


def inputs(batch=4, T=100, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, T, n, generator=g) < 0.2).float()


def test_mean_membrane_readout_is_time_mean_of_leaky_integrator():
    m, cfg = model_for()
    x = inputs()
    out = m(x)
    # recompute the output layer by hand from the hidden spikes
    alpha = math.exp(-cfg.stimulus.dt_s / cfg.model.tau_output_s)
    i_out = out.hidden_spikes @ m.W2
    v = torch.zeros(4, 12)
    rec = [v]
    for t in range(99):
        v = alpha * v + i_out[:, t]
        rec.append(v)
    v_rec = torch.stack(rec, 1)
    assert torch.allclose(out.output_v, v_rec, atol=1e-6)
    assert torch.allclose(out.readout, v_rec.mean(1), atol=1e-6)
    assert out.hidden_spikes.shape == (4, 100, 30)
    assert bool((out.hidden_spikes[:, :2] == 0).all())  # s_0 = s_1 = 0 in the published order


def test_max_membrane_and_spike_count_readouts():
    m, _ = model_for(readout="max_membrane")
    out = m(inputs())
    assert torch.equal(out.readout, out.output_v.max(1).values)
    m, _ = model_for(readout="spike_count")
    out = m(inputs())
    assert set(out.output_v.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(out.readout, out.output_v.mean(1))


def test_membrane_only_model_matches_hand_recurrence():
    m, cfg = model_for(architecture="membrane_only")
    x = inputs()
    out = m(x)
    assert m.W1.shape == (200, 12) and m.W2 is None
    assert out.hidden_spikes.shape == (4, 100, 0)
    alpha = math.exp(-1e-3 / 0.02)
    h = x @ m.W1
    v, acc = torch.zeros(4, 12), torch.zeros(4, 12)
    for t in range(99):
        v = alpha * v + h[:, t]
        acc += v
    assert torch.allclose(out.readout, acc / 100, atol=1e-6)


def test_regression_readout_trains_with_mse():
    cfg = config_from_dict(
        {
            "preset": "tutorial",
            "backend": "reference",
            "stimulus": {"phase_offset": "per_sample"},
            "model": {"readout": "regression", "tau_hidden_s": 0.005, "tau_output_s": 0.005},
            "training": {"n_train": 512, "n_test": 128, "epochs": 4, "lr": 0.01},
        }
    )
    res = train(cfg, progress=False)
    losses = [h["train_loss"] for h in res.history]
    assert res.model.W2.shape == (30, 1)
    assert losses[-1] < losses[0]


def test_dropout_only_in_training_and_drawn_from_the_generator():
    m, _ = model_for(dropout=0.5)
    x = inputs()
    m.eval()
    a, b = m(x).readout, m(x).readout
    assert torch.equal(a, b)
    m.train()
    r1 = m(x, dropout_generator=torch.Generator().manual_seed(3)).readout
    r2 = m(x, dropout_generator=torch.Generator().manual_seed(3)).readout
    r3 = m(x, dropout_generator=torch.Generator().manual_seed(4)).readout
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    assert not torch.allclose(r1, a)


@pytest.mark.parametrize("order", ["published", "immediate"])
def test_hidden_spike_train_lengths(order):
    m, _ = model_for(update_order=order)
    out = m(inputs(T=100))
    assert out.hidden_spikes.shape[1] == 100 and out.output_v.shape[1] == 100


def test_a_membrane_only_model_loads_its_own_state_dict():
    # regression: the filter-and-fire kernel hook read an attribute the membrane-only
    # architecture did not set, so loading its model.pt failed in the tutorial notebook
    from spikeloc.core.config import config_from_dict
    from spikeloc.core.models import build_model

    cfg = config_from_dict({"preset": "tutorial", "model": {"architecture": "membrane_only"}})
    a, b = build_model(cfg), build_model(cfg)
    with torch.no_grad():
        a.W1.add_(1.0)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.W1, b.W1)
