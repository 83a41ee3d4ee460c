"""The tutorial's classical neurons and the Jeffress localiser: exact traces, known properties."""

import math

import numpy as np
import pytest

from spikeloc.analysis import classical, jeffress


def test_lif_decay_is_exact():
    tr = classical.lif_trace([], w=0.0, tau_s=0.01, v0=0.8, duration_s=0.05, dt_s=1e-4)
    np.testing.assert_allclose(tr.v, 0.8 * np.exp(-tr.t_s / 0.01), rtol=1e-12)
    assert len(tr.spike_times_s) == 0


def test_lif_input_adds_weight_after_the_step_decay():
    tr = classical.lif_trace([0.001], w=0.5, tau_s=0.01, duration_s=0.003, dt_s=1e-4)
    # recorded at the start of each step: the input of step 10 shows from step 11 on
    assert tr.v[10] == 0.0
    assert tr.v[11] == 0.5
    assert tr.v[12] == pytest.approx(0.5 * math.exp(-1e-4 / 0.01), rel=1e-14)


def test_lif_fires_one_step_after_crossing_and_resets():
    # two inputs of 0.55 cross threshold at step 20 (brian order: spike at step 21)
    tr = classical.lif_trace([0.001, 0.002], w=0.55, tau_s=0.01, duration_s=0.004)
    a = math.exp(-1e-4 / 0.01)
    assert tr.v[21] == pytest.approx(0.55 * a**10 + 0.55, rel=1e-12)
    assert tr.spike_times_s.tolist() == pytest.approx([0.0021])
    assert tr.v[22] == 0.0
    nb = classical.lif_trace(
        [0.001, 0.002], w=0.55, tau_s=0.01, duration_s=0.004, update_order="notebook"
    )
    assert nb.spike_times_s.tolist() == pytest.approx([0.002])


def test_lif_rejects_unknown_order():
    with pytest.raises(ValueError, match="update_order"):
        classical.lif_trace([], w=0, tau_s=0.01, duration_s=0.001, update_order="x")


def test_lif2d_threshold_jumps_and_relaxes():
    tr = classical.lif2d_trace([0.001], w=1.5, tau_s=0.01, tau_t_s=0.05, delta=0.2, duration_s=0.01)
    k = int(round(tr.spike_times_s[0] / 1e-4))
    assert k == 11
    at = math.exp(-1e-4 / 0.05)
    assert tr.v_threshold[k + 1] == pytest.approx(1.2, rel=1e-12)
    assert tr.v_threshold[k + 2] == pytest.approx(1 + 0.2 * at, rel=1e-12)


def test_lif2d_adapts_and_exercise_is_solved():
    tr = classical.lif2d_trace(
        [0.003 * (k + 1) for k in range(20)],
        w=0.7,
        tau_s=0.01,
        tau_t_s=0.05,
        delta=0.2,
        duration_s=0.06,
    )
    isi = classical.interspike_intervals(tr.spike_times_s)
    assert len(isi) >= 3 and isi[-1] > isi[0]
    two_d, plain = classical.exercise_threshold_solution()
    assert len(two_d.spike_times_s) == 1 and len(plain.spike_times_s) == 2


def test_hh_rates_at_rest_and_singularities():
    r = classical.hh_rates(np.array([0.0, 10.0, 25.0]))
    assert r["alpha_n"][1] == pytest.approx(0.1)  # limit 0.01 * 10 at V = 10
    assert r["alpha_m"][2] == pytest.approx(1.0)  # limit 0.1 * 10 at V = 25
    assert r["beta_m"][0] == pytest.approx(4.0)
    assert r["alpha_h"][0] == pytest.approx(0.07)


def test_hh_spike_height_and_refractoriness():
    out = classical.hh_simulate(10.0, duration_s=0.03)
    assert abs(float(out["v_rest_mV"])) < 0.01
    assert 95 < out["v_mV"].max() < 110  # ~100 mV above rest

    # a brief pulse fires; the same pulse 3 ms after a spike does not, 40 ms later it does
    def pulses(times):
        return lambda t: 20.0 if any(s <= t < s + 1e-3 for s in times) else 0.0

    one = classical.hh_simulate(pulses([0.005]), duration_s=0.02)
    assert len(one["spike_times_s"]) == 1
    early = classical.hh_simulate(
        pulses([0.005, one["spike_times_s"][0] + 0.003]), duration_s=0.025
    )
    assert len(early["spike_times_s"]) == 1
    late = classical.hh_simulate(pulses([0.005, 0.045]), duration_s=0.06)
    assert len(late["spike_times_s"]) == 2


@pytest.mark.slow
def test_hh_rheobase_and_type_ii_onset():
    assert 2.0 < classical.hh_rheobase(tol=0.1) < 2.6
    rates = classical.hh_fi_curve([5.0, 7.0, 20.0], duration_s=0.3)
    assert rates[0] == 0 and rates[1] > 40 and rates[2] > rates[1]  # jump to ~50 Hz


def test_jeffress_delays_and_estimates():
    cfg = jeffress.JeffressConfig()
    assert cfg.best_ipds()[50] == pytest.approx(np.pi)
    assert cfg.delay_steps()[50] == 100  # pi / (2 pi 50 Hz) = 10 ms = 100 steps
    counts = np.zeros((1, 100), dtype=int)
    counts[0, [10, 12]] = 5
    assert jeffress.estimate_ipd(counts, cfg, "max")[0] == pytest.approx(2 * np.pi * 11 / 100)
    assert jeffress.circular_error_deg(np.radians(350), np.radians(10)) == pytest.approx(20)
    with pytest.raises(ValueError, match="method"):
        jeffress.estimate_ipd(counts, cfg, "mean")


def test_jeffress_localises_and_smoothing_helps():
    cfg = jeffress.JeffressConfig(duration_s=0.5)
    ipds = np.radians(np.arange(0, 360, 20))
    counts = jeffress.simulate_counts(ipds, cfg, np.random.default_rng(0))
    raw = jeffress.circular_error_deg(ipds, jeffress.estimate_ipd(counts, cfg, "max")).mean()
    smooth = jeffress.circular_error_deg(ipds, jeffress.estimate_ipd(counts, cfg, "savgol")).mean()
    assert smooth < raw < 45 and smooth < 25
