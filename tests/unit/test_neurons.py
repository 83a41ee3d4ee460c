"""Neuron dynamics: exact traces for both update orders and reset modes, decay, surrogates."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloc.core.models import SNN
from spikeloc.core.neurons import (
    LIFParameters,
    LIParameters,
    li_initial_state,
    li_step,
    lif_initial_state,
    lif_step,
    spike_fn,
    surrogate_grad,
)

HALF = 1e-3 / math.log(2)  # tau giving alpha = exp(-dt/tau) = 0.5 at dt = 1 ms


def run_lif(h: list[float], **kw) -> tuple[list[float], list[float]]:
    """Recorded spikes and the membrane potential after each step (single neuron)."""
    p = LIFParameters(tau_s=HALF, dt_s=1e-3, **kw)
    traces = SNN._lif_loop(torch.tensor(h, dtype=torch.float64)[None, :, None], p)
    state = lif_initial_state((1,), p, dtype=torch.float64)
    vs = []
    for x in h:
        _, state = lif_step(torch.tensor([x], dtype=torch.float64), state, p)
        vs.append(float(state.v))
    return traces[0, :, 0].tolist(), vs


def test_alpha_is_exact_exponential_decay():
    p = LIFParameters(tau_s=0.02, dt_s=1e-3)
    assert p.alpha == pytest.approx(math.exp(-0.05), rel=1e-15)
    # a leaky integrator started at 1 decays as exp(-t/tau): seconds everywhere
    q = LIParameters(tau_s=0.02, dt_s=1e-3)
    state = li_initial_state((1,), q, dtype=torch.float64)
    v, state = li_step(torch.ones(1, dtype=torch.float64), state, q)
    for _ in range(20):
        v, state = li_step(torch.zeros(1, dtype=torch.float64), state, q)
    assert float(v) == pytest.approx(math.exp(-20 * 1e-3 / 0.02), rel=1e-12)


def test_published_order_reset_zero_gives_doublets():
    # v1 = 1.5; v2 = 0.75 + 1.5 = 2.25; s2 = H(v1 - 1) = 1; v3 = (1.125 + 1.5) * (1 - s2) = 0;
    # s3 = H(v2 - 1) = 1 (the one-step-late reset: a doublet); v4 = 1.5 * (1 - s3) = 0; ...
    spikes, vs = run_lif([1.5] * 6)
    assert spikes == [0, 0, 1, 1, 0, 0]
    assert vs[:5] == pytest.approx([1.5, 2.25, 0.0, 0.0, 1.5])


def test_published_order_reset_subtract():
    # v_{t+1} = 0.5 v_t + 1.5 - s_t with s_{t+1} = H(v_t - 1)
    spikes, vs = run_lif([1.5] * 5, reset="subtract")
    assert vs[:4] == pytest.approx([1.5, 2.25, 1.625, 1.3125])
    assert spikes == [0, 0, 1, 1, 1]


def test_published_order_subthreshold_no_spike():
    spikes, vs = run_lif([0.6, 0.6, 0.6, 0.0, 0.0])
    # v3 = 1.05 crossed: its spike s4 is recorded at t = 4 and zeroes v5 one step late
    assert vs == pytest.approx([0.6, 0.9, 1.05, 0.525, 0.0])
    assert spikes == [0, 0, 0, 0, 1]


def test_immediate_order_reset_zero():
    spikes, vs = run_lif([0.8] * 4, update_order="immediate")
    assert spikes == [0, 1, 0, 1]
    assert vs == pytest.approx([0.8, 0.0, 0.8, 0.0])


def test_immediate_order_reset_subtract():
    spikes, vs = run_lif([0.8] * 4, update_order="immediate", reset="subtract")
    assert spikes == [0, 1, 0, 1]
    assert vs == pytest.approx([0.8, 0.2, 0.9, 0.25])


def test_adaptive_threshold_raises_threshold_after_spike():
    # immediate order, rho = 0.5 (tau_a = HALF), beta_a = 1: after a spike a = 0.5, so the
    # threshold is 1.5 on the next step and an input that crossed 1 no longer suffices
    spikes, _ = run_lif(
        [1.2, 1.2, 1.2], update_order="immediate", adaptive_beta=1.0, adaptive_tau_s=HALF
    )
    assert spikes == [1, 0, 1]


@pytest.mark.parametrize("beta", [1.0, 5.0, 10.0])
def test_sigmoid_surrogate_matches_formula(beta):
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    spike_fn(x, "sigmoid", beta).sum().backward()
    sig = torch.sigmoid(beta * x.detach())
    assert torch.allclose(x.grad, beta * sig * (1 - sig), rtol=0, atol=1e-15)
    # ... which is autograd's derivative of sigmoid(beta x)
    y = x.detach().clone().requires_grad_(True)
    torch.sigmoid(beta * y).sum().backward()
    assert torch.allclose(x.grad, y.grad, rtol=1e-12, atol=1e-15)


def test_superspike_surrogate_matches_formula():
    x = torch.linspace(-1, 1, 41, dtype=torch.float64, requires_grad=True)
    spike_fn(x, "superspike", 100.0).sum().backward()
    assert torch.allclose(x.grad, 1 / (100 * x.detach().abs() + 1) ** 2)
    assert torch.equal(surrogate_grad(torch.zeros(1), "superspike", 100.0), torch.ones(1))


def test_forward_is_heaviside_strict():
    x = torch.tensor([-1.0, 0.0, 1e-7, 2.0])
    assert spike_fn(x).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_gradient_flows_through_reset_unless_detached():
    h = torch.full((1, 6, 1), 1.5, dtype=torch.float64, requires_grad=True)
    p = LIFParameters(tau_s=HALF, dt_s=1e-3)
    SNN._lif_loop(h, p).sum().backward()
    g_attached = h.grad.clone()
    h.grad = None
    SNN._lif_loop(h, p._replace(detach_reset=True)).sum().backward()
    assert not torch.allclose(g_attached, h.grad)
