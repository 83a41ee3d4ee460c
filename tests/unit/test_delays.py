"""The delay layers of spikeloc.core.delays: exact integer shifts, the local-difference
gradient, straight-through rounding, the DCLS synapse against a plain delayed weight."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloc.core import delays

DCLS = pytest.importorskip("DCLS")


def test_integer_delay_shifts_a_spike_train_exactly():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 40, generator=g) < 0.3).float()
    for d in (-7, -1, 0, 1, 4, 39, 45):
        y = delays.shift_linear(x, torch.full((3,), float(d)))
        want = torch.zeros_like(x)
        if d >= 0:
            want[:, : max(0, 40 - d)] = x[:, d:]
        else:
            want[:, -d:] = x[:, : 40 + d]
        assert torch.equal(y, want), d


def test_gradient_is_the_local_difference_and_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 30, generator=g, dtype=torch.float64)
    d = torch.tensor([3.0, -2.0], dtype=torch.float64, requires_grad=True)
    w = torch.rand(2, 30, generator=g, dtype=torch.float64)
    (delays.shift_linear(x, d) * w).sum().backward()
    xp = torch.nn.functional.pad(x, (0, 40))
    t = torch.arange(30)
    for b, di in enumerate((3, -2)):
        src = t + di
        lo = torch.where(src >= 0, xp[b, src.clamp(min=0)], torch.zeros(()))
        hi = torch.where(src + 1 >= 0, xp[b, (src + 1).clamp(min=0)], torch.zeros(()))
        assert d.grad[b].item() == pytest.approx(float(((hi - lo) * w[b]).sum()), abs=1e-12)
    # at a non-integer delay the interpolation is differentiable: autograd = finite differences
    d2 = torch.tensor([2.3, -1.6], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda dd: delays.shift_linear(x, dd), (d2,))


def test_delay_layer_rounds_clamps_and_passes_gradients_straight_through():
    layer = delays.DelayLayer(4, max_delay=5)
    with torch.no_grad():
        layer.delay.copy_(torch.tensor([[0.4, 2.6, -9.0, 7.2]]))
    assert layer.integer_delays().tolist() == [[0.0, 3.0, -5.0, 5.0]]
    x = torch.zeros(1, 2, 4, 12)
    x[0, 1, :, 6] = 1.0
    y = layer(x)
    assert torch.equal(y[:, 0], x[:, 0])  # the first ear is fixed
    assert [int(torch.argmax(y[0, 1, c])) for c in range(4)] == [6, 3, 11, 1]
    y[0, 1].sum().backward()
    assert layer.delay.grad is not None and layer.delay.grad.shape == (1, 4)


def test_leaky_integration_and_coincidence_outputs():
    s = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    a = math.exp(-1 / 4.0)
    assert torch.allclose(delays.leaky_integrate(s, 4.0), torch.tensor([[1, a, a * a, a**3 + 1]]))
    u = torch.rand(2, 2, 3, 5)
    assert torch.allclose(delays.coincidence_output(u), -((u[:, 1] - u[:, 0]) ** 2).sum(-1))
    assert torch.allclose(delays.coincidence_output(u, "multiplicative"), (u[:, 0] * u[:, 1]).sum(-1))
    with pytest.raises(ValueError, match="subtractive or multiplicative"):
        delays.coincidence_output(u, "divisive")
    assert delays.tau_schedule(0) == 40.0
    # the notebook's printed values after epochs 150 and 151 (its evaluation uses the latter)
    assert delays.tau_schedule(150) == pytest.approx(18.894662109640603, rel=1e-14)
    assert delays.tau_schedule(151) == pytest.approx(18.80042458922153, rel=1e-14)
    # below the floor the notebook's rule alternates: tau < 5 -> 5 -> 5 exp(-0.005) -> 5 ...
    tail = [delays.tau_schedule(e) for e in range(9_996, 10_000)]
    low = 5.0 * math.exp(-0.005)
    assert sorted(set(tail)) == [low, 5.0] and tail[0] != tail[1]


def test_ddl_output_leaves_out_the_last_step_as_the_notebook_does():
    net = delays.DDLNetwork(3, max_delay=2)
    with torch.no_grad():
        net.ddl.delay.zero_()
    x = torch.zeros(1, 2, 3, 8)
    x[0, 0, 1, 7] = 1.0  # a spike of ear 1, class 1, at the last step only
    assert torch.equal(net(x, 4.0), torch.log_softmax(torch.zeros(1, 3), 1))
    net.integrate_last_step = True
    assert torch.allclose(net(x, 4.0), torch.log_softmax(torch.tensor([[0.0, -1.0, 0.0]]), 1))


def test_dcls_max_mode_is_one_integer_tap_a_plain_delayed_weight():
    torch.manual_seed(0)
    syn = delays.DCLSSynapse(3, 2, taps=7)
    with torch.no_grad():
        syn.conv.P.copy_(torch.tensor([[[-3.0, 0.2, 2.7], [1.4, -0.6, 3.0]]]).unsqueeze(-1))
    syn.set_mode("max")
    x = (torch.rand(4, 3, 20) < 0.4).float()
    y = syn(x)
    d = syn.delays().long()
    assert d.tolist() == [[6, 3, 0], [2, 4, 0]]
    w = syn.weight[:, :, 0].detach()
    want = torch.zeros(4, 2, 20 + 3)
    for i in range(2):
        for j in range(3):
            shifted = torch.nn.functional.pad(x[:, j], (int(d[i, j]), 0))[:, :20]
            want[:, i, :20] += w[i, j] * shifted
    assert torch.allclose(y[:, :, :20], want[:, :, :20], atol=1e-6)


def test_dcls_gauss_kernel_gets_position_gradients_and_the_network_runs():
    torch.manual_seed(0)
    net = delays.DCLSNetwork(10, 4, 3, taps=9, n_steps=19)
    net.set_mode("gauss")
    out = net((torch.rand(2, 10, 20) < 0.5).float())
    assert out.shape == (2, 3)
    out.sum().backward()
    assert net.w1.P.grad is not None and float(net.w1.P.grad.abs().sum()) > 0
    k = net.w1.kernel()
    assert torch.allclose(k.sum(-1), net.w1.weight[:, :, 0], atol=1e-5)  # normalised taps
    with pytest.raises(ValueError, match="gauss or max"):
        net.set_mode("v0")


def test_study_settings_reject_bad_options_and_the_ddl_stimulus_has_the_published_shape():
    from spikeloc.analysis import dcls, delay_layer

    with pytest.raises(ValueError, match="references or copy"):
        dcls.settings_from({"best_weights": "best"})
    with pytest.raises(ValueError, match="subtractive or multiplicative"):
        delays.DDLNetwork(36, synapse="additive")
    s = delay_layer.DDLSettings()
    x, y = delay_layer.make_batch(s, 5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 2, 36, 110) and s.n_steps == 110
    assert float(x[..., :40].abs().sum()) == 0 and float(x[..., 90:].abs().sum()) == 0
    assert s.ipd_deg()[0] == -90 and s.ipd_deg()[-1] == 85
    assert dcls.DCLSSettings().taps == 31 and dcls.settings_from({"taps": 25}).taps == 25
