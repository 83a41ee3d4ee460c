"""Stimuli: Poisson input statistics, the exact-bin integral, seeding, chunking, classes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from spikeloc.core.stimuli import (
    StimulusConfig,
    class_centres,
    continuise,
    discretise,
    generate_spikes,
    make_dataset,
    sample_ipds,
    spike_probability,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("probability", ["point", "exact"])
def test_mean_spike_probability_is_0225_per_ms_bin(probability):
    # envelope power 2, 600 Hz: mean rate 600 * 3/8 = 225 Hz -> 0.225 spikes per 1 ms bin.
    cfg = StimulusConfig(probability=probability)
    d = make_dataset(2048, cfg, generator=gen(1))
    n = d.spikes.numel()
    mean = float(d.spikes.double().mean())
    # 100 ms at 20 Hz covers whole cycles, so the mean is 0.225 whatever phi0 is; the
    # Bernoulli standard error of the mean is sqrt(p (1-p) / n) ~ 6.5e-5: allow 5 sigma.
    assert abs(mean - 0.225) < 5 * math.sqrt(0.225 * 0.775 / n)


def test_per_bin_spike_frequency_matches_probability():
    # many samples with the same IPD and (per-dataset) phi0: empirical rate per bin and fibre
    cfg = StimulusConfig(frequency_hz=50.0, duration_s=0.02, anf_per_ear=4)
    ipd = torch.full((20000,), 0.3, dtype=torch.float64)
    g = gen(3)
    phi0 = torch.rand((), generator=gen(3), dtype=torch.float64)
    spikes = generate_spikes(ipd, cfg, generator=g)
    from spikeloc.core.stimuli import _phase_delays, _phase_grid

    p = spike_probability(_phase_grid(cfg, _phase_delays(cfg, None), ipd[:1], phi0), cfg)[0]
    emp = spikes.double().mean(0)
    se = torch.sqrt(p * (1 - p) / ipd.shape[0]).clamp_min(1e-4)
    z = ((emp - p) / se).abs()
    assert float(z.max()) < 5.0


def test_exact_bin_probability_is_the_integral_of_the_rate():
    for k in (2.0, 3.0):
        cfg = StimulusConfig(frequency_hz=50.0, dt_s=1e-3, probability="exact", envelope_power=k)
        theta = torch.tensor([0.0, 0.7, 2.0, -1.3], dtype=torch.float64)
        got = spike_probability(theta, cfg)
        for th, g in zip(theta.tolist(), got.tolist(), strict=True):
            f = lambda s, th=th, k=k: 600 * ((1 + math.sin(th + 2 * math.pi * 50 * s)) / 2) ** k  # noqa: E731
            want, _ = integrate.quad(f, 0, 1e-3, epsabs=1e-14)
            assert g == pytest.approx(want, rel=1e-9)


def test_point_probability_formula():
    cfg = StimulusConfig(envelope_power=2.0, rate_max_hz=600.0, dt_s=1e-3)
    theta = torch.tensor([math.pi / 2, -math.pi / 2, 0.0], dtype=torch.float64)
    assert spike_probability(theta, cfg).tolist() == pytest.approx([0.6, 0.0, 0.15])


def test_seeded_generation_repeats_and_differs_between_seeds():
    cfg = StimulusConfig(anf_per_ear=10)
    a = make_dataset(64, cfg, generator=gen(5))
    b = make_dataset(64, cfg, generator=gen(5))
    c = make_dataset(64, cfg, generator=gen(6))
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.ipd, b.ipd)
    assert not torch.equal(a.spikes, c.spikes)


def test_chunking_does_not_change_the_draws():
    cfg = StimulusConfig(anf_per_ear=10, phase_offset="per_sample")
    a = make_dataset(50, cfg, generator=gen(9), chunk_size=7)
    b = make_dataset(50, cfg, generator=gen(9), chunk_size=1024)
    assert torch.equal(a.spikes, b.spikes)


def test_output_is_float32_on_requested_device_and_shape():
    cfg = StimulusConfig(anf_per_ear=10, duration_s=0.05)
    d = make_dataset(3, cfg, generator=gen(0))
    assert d.spikes.dtype == torch.float32 and d.spikes.device.type == "cpu"
    assert d.spikes.shape == (3, 50, 20)
    assert set(d.spikes.unique().tolist()) <= {0.0, 1.0}


def test_phase_offset_policy():
    cfg = StimulusConfig(anf_per_ear=5)
    u = torch.rand(2, cfg.n_steps, cfg.n_inputs, generator=gen(1), dtype=torch.float64)
    u[1] = u[0]  # same uniforms for both samples
    ipd = torch.zeros(2, dtype=torch.float64)
    same = generate_spikes(ipd, cfg, generator=gen(2), uniforms=u)
    assert torch.equal(same[0], same[1])  # one phi0 for the whole dataset (published)
    per = generate_spikes(
        ipd, StimulusConfig(anf_per_ear=5, phase_offset="per_sample"), generator=gen(2), uniforms=u
    )
    assert not torch.equal(per[0], per[1])


def test_fixed_uniforms_mode_redraws_only_phi0():
    cfg = StimulusConfig(anf_per_ear=5)
    u = torch.rand(4, cfg.n_steps, cfg.n_inputs, generator=gen(1), dtype=torch.float64)
    ipd = sample_ipds(4, generator=gen(3))
    a = generate_spikes(ipd, cfg, generator=gen(10), uniforms=u)
    b = generate_spikes(ipd, cfg, generator=gen(10), uniforms=u)
    c = generate_spikes(ipd, cfg, generator=gen(11), uniforms=u)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_phase_delays_off_and_noise():
    ipd = torch.zeros(1, dtype=torch.float64)
    u = torch.full((1, 100, 200), 0.5, dtype=torch.float64)
    no_delays = generate_spikes(
        ipd, StimulusConfig(phase_delays=False), generator=gen(0), uniforms=u
    )
    # without phase delays and IPD 0, all 200 fibres see the same probability
    assert torch.equal(no_delays[0], no_delays[0, :, :1].expand(-1, 200))
    noisy = generate_spikes(
        ipd, StimulusConfig(phase_delay_noise_rad=0.3), generator=gen(0), uniforms=u
    )
    clean = generate_spikes(ipd, StimulusConfig(), generator=gen(0), uniforms=u)
    assert not torch.equal(noisy, clean)


def test_legacy_numpy_stream_reproduces_published_test_set_titles():
    # fig03 of the paper: int(deg) of the first 8 test IPDs at numpy seed 32844534
    cfg = StimulusConfig(frequency_hz=50.0, probability="exact", anf_per_ear=2)
    d = make_dataset(8, cfg, legacy_numpy_seed=32844534)
    assert [int(x) for x in (d.ipd * 180 / math.pi).tolist()] == [
        77,
        -83,
        -42,
        -44,
        -61,
        -88,
        57,
        12,
    ]
    # and the spikes follow the same stream: IPDs, phi0, then uniforms in C order
    rs = np.random.RandomState(32844534)
    rs.rand(8)
    rs.rand()
    u = rs.rand(8, cfg.n_steps, cfg.n_inputs)
    assert d.spikes.sum() > 0 and d.spikes.shape == u.shape


def test_ipd_samplers():
    u = sample_ipds(10000, "uniform", generator=gen(0))
    assert float(u.min()) >= -math.pi / 2 and float(u.max()) < math.pi / 2
    assert abs(float(u.mean())) < 0.05
    c = sample_ipds(100, "classes", n_classes=12, generator=gen(0))
    assert set(np.round(c.numpy(), 12)) <= set(np.round(class_centres(12).numpy(), 12))
    lin = sample_ipds(5, "linspace")
    assert lin.tolist() == pytest.approx(np.linspace(-np.pi / 2, np.pi / 2, 5).tolist())


def test_discretise_continuise():
    n = 12
    centres = class_centres(n)
    assert torch.equal(discretise(centres, n), torch.arange(n))
    assert torch.allclose(continuise(torch.arange(n), n), centres)
    edges = torch.tensor(
        [-math.pi / 2, -math.pi / 2 + math.pi / 12 - 1e-9, math.pi / 2], dtype=torch.float64
    )
    assert discretise(edges, n).tolist() == [0, 0, 11]
    assert float(centres[0]) == pytest.approx(math.radians(-82.5))


@pytest.mark.parametrize(
    "cfg",
    [
        StimulusConfig(),
        StimulusConfig(probability="exact", frequency_hz=50.0),
        StimulusConfig(envelope_power=3.0),
        StimulusConfig(probability="exact", envelope_power=1.5, phase_offset="per_sample"),
    ],
)
def test_fast_probability_grid_equals_direct_formula(cfg):
    from spikeloc.core.stimuli import _phase_delays, _phase_grid, _probability_grid

    ipd = sample_ipds(16, generator=gen(0))
    phi0 = torch.rand(16 if cfg.phase_offset == "per_sample" else (), dtype=torch.float64)
    psi = _phase_delays(cfg, None)
    direct = spike_probability(_phase_grid(cfg, psi, ipd, phi0), cfg)
    fast = _probability_grid(cfg, psi, ipd, phi0)
    assert torch.allclose(fast, direct, rtol=0, atol=1e-13)
