"""Cross-check of the LIF and 2D LIF traces against Brian2 (numpy code generation), the
simulator the tutorial used. brian2 2.9.0 (the newest on the index) needs numpy < 2.4
(``ndarray.ptp``); run in an environment that has it, e.g. ``pip install brian2==2.9.0
numpy==2.3.5``; skipped where brian2 does not import."""

import numpy as np
import pytest

from spikeloc.analysis import classical

try:
    import brian2 as b2
except (ImportError, AttributeError) as exc:  # AttributeError: brian2 2.9 on numpy >= 2.4
    pytest.skip(f"brian2 unavailable: {exc}", allow_module_level=True)


def _brian(times_ms, w, tau_ms, tau_t_ms, delta, duration_ms, v0=0.0):
    b2.start_scope()
    b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = 0.1 * b2.ms
    tau, tau_t = tau_ms * b2.ms, (tau_t_ms or 1e9) * b2.ms
    eqs = "dv/dt = -v/tau : 1\ndvt/dt = (1 - vt)/tau_t : 1"
    g = b2.NeuronGroup(1, eqs, threshold="v > vt", reset="v = 0; vt += delta", method="exact")
    g.v, g.vt = v0, 1.0
    net = [g]
    if times_ms:
        inp = b2.SpikeGeneratorGroup(1, np.zeros(len(times_ms), int), np.array(times_ms) * b2.ms)
        s = b2.Synapses(inp, g, on_pre="v += w")
        s.connect()
        net.append(inp)
        net.append(s)
    mon, spk = b2.StateMonitor(g, ["v", "vt"], record=0), b2.SpikeMonitor(g)
    b2.Network(*net, mon, spk).run(
        duration_ms * b2.ms, namespace={"w": w, "tau": tau, "tau_t": tau_t, "delta": delta}
    )
    return mon.v[0], mon.vt[0], np.asarray(spk.t / b2.second)


@pytest.mark.parametrize(
    "times_ms,w,v0,duration_ms",
    [([], 0.0, 0.8, 50), ([10], 0.5, 0.0, 50), ([5 * (k + 1) for k in range(10)], 0.55, 0.0, 60)],
)
def test_lif_matches_brian2(times_ms, w, v0, duration_ms):
    v, _, spikes = _brian(times_ms, w, 10, None, 0.0, duration_ms, v0)
    ours = classical.lif_trace(
        [t / 1e3 for t in times_ms], w=w, tau_s=0.01, v0=v0, duration_s=duration_ms / 1e3
    )
    np.testing.assert_allclose(ours.v, v, atol=1e-12)
    np.testing.assert_allclose(ours.spike_times_s, spikes, atol=1e-12)


def test_lif2d_matches_brian2():
    times = [3 * (k + 1) for k in range(20)]
    v, vt, spikes = _brian(times, 0.7, 10, 50, 0.2, 60)
    ours = classical.lif2d_trace(
        [t / 1e3 for t in times], w=0.7, tau_s=0.01, tau_t_s=0.05, delta=0.2, duration_s=0.06
    )
    assert len(spikes) >= 3
    np.testing.assert_allclose(ours.v, v, atol=1e-12)
    np.testing.assert_allclose(ours.v_threshold, vt, atol=1e-12)
    np.testing.assert_allclose(ours.spike_times_s, spikes, atol=1e-12)
