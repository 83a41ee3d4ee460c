"""Reward-modulated STDP (spikeloc.analysis.rstdp): the rule against hand-computed values, the
decision, the task's parameters and a tiny training run; no autograd anywhere."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from spikeloc.analysis import rstdp
from spikeloc.errors import ConfigError

DT = 1e-3
RULE = {"dt_s": DT, "tau_plus_s": 2e-3, "tau_minus_s": 4e-3, "tau_eligibility_s": 4e-3}
KP, KM, KE = math.exp(-0.5), math.exp(-0.25), math.exp(-0.25)


def _train(T, times):
    """(1, T, n) spike trains with neuron k spiking at the steps times[k]."""
    s = torch.zeros(1, T, len(times))
    for k, ts in enumerate(times):
        for t in ts:
            s[0, t, k] = 1
    return s


def test_trace_by_hand():
    s = _train(5, [[1, 3]])
    x = rstdp.trace(s, 2e-3, DT)[0, :, 0]
    expected = [0, 1, KP, KP**2 + 1, KP**3 + KP]
    assert torch.allclose(x, torch.tensor(expected, dtype=torch.float64), atol=1e-15)


def test_eligibility_by_hand():
    # T = 5; post neuron spikes at t = 3. Pre 0 at t = 1 (before: potentiation decayed by
    # kappa+^2, read out at T-1 = 4, one step after the pairing: kappa_e^1); pre 1 at t = 4
    # (after: depression by y(3) = 1, no eligibility decay); pre 2 at t = 3 (same step:
    # potentiation only, x(3) = 1).
    T = 5
    pre = _train(T, [[1], [4], [3]])
    post = _train(T, [[3]])
    e = rstdp.eligibility(pre, post, a_plus=1.0, a_minus=0.5, **RULE)[0, :, 0]
    expected = torch.tensor([KP**2 * KE, -0.5, 1.0 * KE], dtype=torch.float64)
    assert torch.allclose(e, expected, atol=1e-15)
    # two post spikes around one pre spike: post at 0 and 3, pre at 2 ->
    # depression y(1) = kappa-^1 decayed by kappa_e^(4-2), potentiation x(3) = kappa+ at t=3
    e2 = rstdp.eligibility(_train(T, [[2]]), _train(T, [[0, 3]]), a_plus=1.0, a_minus=0.5, **RULE)[
        0, 0, 0
    ]
    by_hand = KP * KE**1 - 0.5 * KM**1 * KE**2
    assert float(e2) == pytest.approx(by_hand, abs=1e-15)


def test_update_by_hand_clips_and_uses_no_autograd():
    T = 5
    pre = torch.cat([_train(T, [[1], [4]]), _train(T, [[1], [4]])]).requires_grad_(True)
    post = torch.cat([_train(T, [[3]]), torch.zeros(1, T, 1)]).requires_grad_(True)
    W = torch.zeros(2, 1)
    W[1, 0] = -1.99
    mod = torch.tensor([1.0, -0.5], dtype=torch.float64)
    dW = rstdp.rstdp_update(W, pre, post, mod, lr=0.1, w_max=2.0, a_plus=1.0, a_minus=0.5, **RULE)
    # only sample 0 has a post spike: dW = lr / B * 1 * e(sample 0)
    expected = 0.1 / 2 * torch.tensor([[KP**2 * KE], [-0.5]], dtype=torch.float64)
    assert torch.allclose(dW, expected, atol=1e-15)
    assert W[0, 0].item() == pytest.approx(float(expected[0, 0]), rel=1e-6)
    assert W[1, 0].item() == -2.0  # -1.99 - 0.025 clipped at -w_max
    assert dW.grad_fn is None and not dW.requires_grad and W.grad_fn is None
    assert W.grad is None


def test_batch_weighted_eligibility_equals_sum():
    g = torch.Generator().manual_seed(3)
    pre = (torch.rand(4, 20, 6, generator=g) < 0.2).float()
    post = (torch.rand(4, 20, 3, generator=g) < 0.2).float()
    w = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    per = rstdp.eligibility(pre, post, **RULE)
    summed = rstdp.eligibility(pre, post, weights=w, **RULE)
    assert torch.allclose(summed, (w[:, None, None] * per).sum(0), atol=1e-12)


def test_decide_counts_then_first_spike_then_random():
    T = 6
    out = torch.zeros(3, T, 4)
    out[0, [1, 2], 1] = 1  # sample 0: neuron 1 has two spikes, neuron 3 one
    out[0, 0, 3] = 1
    out[1, 4, 0] = 1  # sample 1: tie of one spike each, neuron 2 spikes first
    out[1, 2, 2] = 1
    g = torch.Generator().manual_seed(0)
    choice = rstdp.decide(out, g)
    assert choice[:2].tolist() == [1, 2]
    g2 = torch.Generator().manual_seed(0)
    assert rstdp.decide(out, g2)[2] == choice[2]  # silent sample: a seeded random guess
    assert 0 <= int(choice[2]) < 4


@pytest.mark.parametrize(
    "params, field",
    [
        ({"lr_outptu": 0.1}, "lr_outptu"),
        ({"post": "every"}, "post"),
        ({"epochs": 0}, "epochs"),
        ({"a_minus": -1.0}, "a_minus"),
        ({"n_hidden": 2.5}, "n_hidden"),
        ({"stimulus": {"phase_ofset": "per_sample"}}, "stimulus.phase_ofset"),
    ],
)
def test_bad_params_name_their_field(params, field):
    with pytest.raises(ConfigError) as err:
        rstdp.task_config(rstdp.check_params(params), 0)
    assert err.value.field == field


def test_tiny_training_run(tmp_path):
    params = {
        "epochs": 1,
        "n_train": 32,
        "n_test": 32,
        "batch_size": 8,
        "evals_per_epoch": 2,
        "lr_output": 0.01,
        "linear_bound": False,
    }
    m = rstdp.train_rstdp(params, seed=0, out_dir=tmp_path / "a")
    assert m["samples"] == 32 and len(m["curve_test_accuracy"]) == 3
    assert m["curve_samples"] == [0, 16, 32]
    assert m["n_parameters"] == 30 * 12
    w = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    run = SimpleNamespace(path=tmp_path / "a", params=params, seed=0, metrics=m)
    init = rstdp.build_model(
        rstdp.task_config(rstdp.check_params(params), 0),
        generator=rstdp.seeded_generator(0, "model"),
    )
    assert torch.equal(w["W1"], init.W1.detach())  # the hidden layer stays fixed
    assert not torch.equal(w["W2"], init.W2.detach())
    again = rstdp.train_rstdp(params, seed=0, out_dir=tmp_path / "b")
    assert again["curve_test_accuracy"] == m["curve_test_accuracy"]  # deterministic
    loc = rstdp.rstdp_localiser({}, run)
    est, spikes = loc.localise(torch.linspace(-1.4, 1.4, 5).numpy(), seed=9001)
    assert est.shape == (5,) and (spikes >= 0).all() and loc.n_parameters == 360
    both = rstdp.train_rstdp(
        {**params, "learn_hidden": True, "lr_hidden": 0.01}, seed=0, out_dir=tmp_path / "c"
    )
    w_both = torch.load(tmp_path / "c" / "weights.pt", weights_only=True)
    assert not torch.equal(w_both["W1"], init.W1.detach())
    assert both["n_parameters"] == 30 * 12 + 200 * 30
