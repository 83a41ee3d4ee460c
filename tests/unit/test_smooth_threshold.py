"""The smooth-threshold module: the forward pass tends to the core's spiking network as the
slope goes to zero, its gradient is autograd's (checked against finite differences), the
annealing schedule and the distance from spiking are exact, bad parameters are refused by
name, and a tiny training run resumes from its checkpoint to the same result and enters the
leaderboard."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spikeloc.analysis import leaderboard as lb
from spikeloc.analysis import smooth_threshold as st
from spikeloc.core import evaluation
from spikeloc.core.config import config_from_dict
from spikeloc.core.models import SNN
from spikeloc.core.stimuli import make_dataset
from spikeloc.core.training import make_test_set, seeded_generator
from spikeloc.errors import ConfigError
from spikeloc.io import load_model_file

TINY = {"n_hidden": 6, "epochs": 2, "n_train": 64, "n_val": 32, "n_test": 64, "batch_size": 32}


def _cfg(n_hidden=7):
    return config_from_dict(
        {
            "preset": "tutorial",
            "model": {"n_hidden": n_hidden},
            "stimulus": {"phase_offset": "per_sample"},
        }
    )


def test_small_kappa_is_the_core_spiking_network():
    cfg = _cfg()
    net = st.SmoothThresholdNet(cfg, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        net.W1.mul_(3.0)  # enough drive for many spikes
    data = make_dataset(16, cfg.stimulus, generator=torch.Generator().manual_seed(4))
    x = data.spikes.float()
    with torch.no_grad():
        readout, s = net(x, kappa=1e-7)
        out = net.spiking()(x)
    assert out.hidden_spikes.sum() > 100
    # sigma(z / kappa) -> H(z): the same spikes and the same readout
    assert torch.equal(s.round(), out.hidden_spikes)
    assert float((s - out.hidden_spikes).abs().max()) < 1e-6
    torch.testing.assert_close(readout, out.readout, atol=1e-5, rtol=1e-5)


def test_weights_are_drawn_as_the_core_draws_them():
    cfg = _cfg()
    net = st.SmoothThresholdNet(cfg, generator=seeded_generator(5, "model"))
    core = SNN(cfg.model, cfg.stimulus.dt_s, generator=seeded_generator(5, "model"))
    assert torch.equal(net.W1, core.W1) and torch.equal(net.W2, core.W2)


def test_gradient_is_autograds_against_finite_differences():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 12, 5, generator=g) < 0.4).double()
    W1 = (torch.rand(5, 4, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()
    W2 = (torch.rand(4, 3, generator=g, dtype=torch.float64) * 2 - 1).requires_grad_()

    def f(a, b):
        return st.smooth_forward(x, a, b, kappa=0.3, alpha=math.exp(-0.05), beta=math.exp(-0.05))[0]

    assert torch.autograd.gradcheck(f, (W1, W2), eps=1e-6, atol=1e-6)


def test_smooth_forward_by_hand():
    # one input, one hidden unit, one output; theta 1, kappa 0.5, alpha = beta = 0.5
    x = torch.tensor([[[1.0], [1.0], [0.0], [0.0]]])
    W1, W2 = torch.tensor([[2.0]]), torch.tensor([[1.0]])
    readout, s = st.smooth_forward(x, W1, W2, kappa=0.5, alpha=0.5, beta=0.5)
    sig = torch.sigmoid
    # v1 = 2, s1 = sig(-2); v2 = (0.5*2 + 2)(1 - s1), s2 = sig((v1 - 1)/0.5) = sig(2)
    s1 = sig(torch.tensor((0 - 1) / 0.5))
    s2 = sig(torch.tensor((2 - 1) / 0.5))
    v2 = (0.5 * 2 + 2) * (1 - s1)
    s3 = sig((v2 - 1) / 0.5)
    torch.testing.assert_close(s[0, :, 0], torch.stack([torch.tensor(0.0), s1, s2, s3]))
    u = [0.0, 0.0, float(s1), 0.5 * float(s1) + float(s2)]
    assert float(readout) == pytest.approx(np.mean(u), rel=1e-6)


def test_kappa_schedule_and_spiking_distance():
    assert st.kappa_schedule(1.0, 0.01, 3) == pytest.approx([1.0, 0.1, 0.01])
    assert st.kappa_schedule(1.0, 0.2, 5, "linear") == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert st.kappa_schedule(1.0, 0.3, 4, "none") == [0.3] * 4
    assert st.kappa_schedule(1.0, 0.3, 1) == [0.3]
    d, frac = st.spiking_distance(torch.tensor([0.0, 0.3, 0.95, 1.0, 0.5]))
    assert d == pytest.approx((0.3 + 0.05 + 0.5) / 5)
    assert frac == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"n_hidden": 0}, "n_hidden"),
        ({"epochs": 1.5}, "epochs"),
        ({"kappa_end": -0.1}, "kappa_end"),
        ({"anneal": "cosine"}, "anneal"),
        ({"n_val": -1}, "n_val"),
        ({"phase_offset": "per_epoch"}, "phase_offset"),
        ({"n_hiden": 3}, "n_hiden"),
    ],
)
def test_bad_parameters_are_refused_by_name(params, field, tmp_path):
    with pytest.raises(ConfigError) as exc:
        st.train_smooth_threshold(params, seed=0, out_dir=tmp_path, device="cpu")
    assert exc.value.field == field
    assert not (tmp_path / "model.pt").exists()


def test_run_config_shares_the_snn_runs_datasets():
    cfg = st.run_config({"n_test": 64}, seed=3)
    snn = config_from_dict(
        {
            "preset": "tutorial",
            "seed": 3,
            "stimulus": {"phase_offset": "per_sample"},
            "training": {"n_test": 64},
        }
    )
    assert torch.equal(make_test_set(cfg).spikes, make_test_set(snn).spikes)


def test_tiny_run_resumes_to_the_same_result_and_enters_the_leaderboard(tmp_path, monkeypatch):
    full = st.train_smooth_threshold(TINY, seed=1, out_dir=tmp_path / "full", device="cpu")
    assert full["epochs_run"] == 2 and len(full["curve_kappa"]) == 2
    assert full["curve_kappa"] == pytest.approx([1.0, 0.02])
    assert 0 <= full["spiking_distance"] <= 0.5 and 0 <= full["binary_fraction"] <= 1
    assert full["train_wall_s"] > 0
    assert not (tmp_path / "full" / "checkpoint.pt").exists()
    # the hard accuracy is the core model's on the run's own test set
    cfg = st.run_config(TINY, seed=1)
    model = SNN(cfg.model, cfg.stimulus.dt_s)
    model.load_state_dict(load_model_file(tmp_path / "full" / "model.pt")["state_dict"])
    p = evaluation.predict(model, make_test_set(cfg))
    assert evaluation.accuracy(p) == full["accuracy_hard"]

    # kill the run during epoch 2 (its validation pass), then run it again
    calls = {"n": 0}
    real = st._evaluate_hard

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "_evaluate_hard", dying)
    with pytest.raises(KeyboardInterrupt):
        st.train_smooth_threshold(TINY, seed=1, out_dir=tmp_path / "killed", device="cpu")
    assert (tmp_path / "killed" / "checkpoint.pt").exists()
    monkeypatch.setattr(st, "_evaluate_hard", real)
    again = st.train_smooth_threshold(TINY, seed=1, out_dir=tmp_path / "killed", device="cpu")
    for key in ("accuracy_smooth", "accuracy_hard", "spiking_distance", "curve_train_loss"):
        assert again[key] == full[key], key

    run = SimpleNamespace(path=tmp_path / "full", params=TINY, seed=1, metrics=full)
    proto = lb.EvaluationProtocol(seeds=(9001,), n_per_seed=16)
    hard = lb.evaluate(st.leaderboard_localiser({}, run), proto)
    smooth = lb.evaluate(st.leaderboard_localiser({"forward": "smooth"}, run), proto)
    assert hard["n_parameters"] == smooth["n_parameters"] == 200 * 6 + 6 * 12
    assert hard["training_time_s"] == full["train_wall_s"]
    assert 0 <= hard["accuracy_pct"] <= 100 and hard["n_test"] == 16
    with pytest.raises(Exception, match="forward"):
        st.leaderboard_localiser({"forward": "soft"}, run)


@pytest.mark.slow
def test_a_short_training_learns(tmp_path):
    # a wide fixed slope learns fastest (the annealed schedule pays for spiking at the end)
    params = {
        "epochs": 3,
        "n_train": 512,
        "n_val": 0,
        "n_test": 256,
        "batch_size": 32,
        "anneal": "none",
        "kappa_end": 1.0,
    }
    m = st.train_smooth_threshold(params, seed=0, out_dir=tmp_path, device="cpu")
    assert m["accuracy_smooth"] > 2 * m["chance"]
    assert "curve_val_accuracy_smooth" not in m  # no validation set, no validation curve
    assert Path(tmp_path / "history.csv").read_text().startswith("epoch,kappa,train_loss")


def test_learning_figure_draws_every_setting():
    import pandas as pd

    from spikeloc.analysis import smooth_threshold_plots

    rows = [
        {
            "params.kappa_end": k,
            "seed": s,
            "chance": 1 / 12,
            "train_wall_s": 10.0 + s,
            "accuracy_smooth": 0.5,
            "accuracy_hard": 0.4,
            "curve_kappa": [1.0, k],
            "curve_val_accuracy_smooth": [0.2, 0.5],
            "curve_val_accuracy_hard": [0.1, 0.4],
            "curve_val_distance": [0.1, 0.01],
        }
        for k in (1.0, 0.05)
        for s in (0, 1)
    ]
    surrogate = pd.DataFrame({"train_wall_s": [2.0, 3.0], "accuracy": [0.7, 0.75]})
    fig = smooth_threshold_plots.learning_figure(pd.DataFrame(rows), surrogate)
    a, b, c = fig.axes
    assert len(a.get_lines()) == 2 * 2 + 1  # smooth and spiking per slope, chance
    assert len(b.get_lines()) == 2
    assert c.get_xlabel() == "Training wall time (s)" and c.get_xscale() == "log"
    assert [t.get_text() for t in c.get_legend().get_texts()][-1] == "surrogate gradients"
