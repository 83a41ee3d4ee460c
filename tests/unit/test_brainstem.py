"""The NEST brainstem model (spikeloc.analysis.brainstem): stimulus, tables, the
active-channel shortcut against the full network, the stepped loop against one Simulate."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from spikeloc.analysis import brainstem as b
from spikeloc.errors import ConfigError

nest = pytest.importorskip("nest")


def test_stimulus_matches_the_catalogue():
    f = b.channel_frequencies()
    assert f.shape == (3500,) and f[0] == 20.0 and f[-1] == 20000.0
    g = b.gaussian_profile()
    assert g.shape == (21,) and g[10] == 1.0 and g[0] == g[-1] == 0.04
    act = b.active_channels(100.0)
    assert len(act) == 21 and f[act[10]] >= 100 > f[act[10] - 1]
    assert b.itd_ms(90) == 0.67 and b.itd_ms(-90) == -0.67 and b.itd_ms(0) == 0.0
    assert b.itd_ms(30) == 0.33
    assert b.ild_spikes(-90, "right") == 10 and b.ild_spikes(90, "right") == 100
    assert b.ild_spikes(45, "left") == 30 and b.ild_spikes(0, "left") == 50


def test_node_counts_full_and_shortcut():
    full = b.total_nodes("full")
    assert full["populations"] == 175_000
    assert full["generator_devices"] == 70_000 and full["parrots"] == 70_000
    assert full["model_neurons"] == 35_000
    per_side = b.node_counts("full")
    assert per_side == {"anf_generators": 35000, "anf": 35000, "sbc": 8750, "gbc": 1750,
                        "mntb": 1750, "lso": 1750, "mso": 3500}
    lo, hi = b.simulated_channels(100.0, "shortcut")
    act = b.active_channels(100.0)
    assert lo <= act[0] and hi > act[-1] and lo % 2 == 0 and hi % 2 == 0 and hi - lo == 22
    assert b.total_nodes("shortcut")["populations"] == 2 * 22 * 25


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="network"):
        b.BrainstemConfig(network="half")
    with pytest.raises(ConfigError, match="mso_type"):
        b.BrainstemConfig(mso_type=5)
    with pytest.raises(ConfigError, match="azimuth_deg"):
        b.BrainstemConfig(azimuth_deg=120)


SHORT = b.BrainstemConfig(azimuth_deg=30.0, mso_type=2, duration_ms=40.0, seed=12345, stepped=False)


@pytest.fixture(scope="module")
def short_run():
    return b.build_and_run(SHORT)


def test_short_run_spikes_exactly(short_run):
    c = short_run["counts"]
    # only active channels spike: fibres 10 * channel index of the 21 active channels
    act = b.active_channels(100.0)
    anf = np.array(sorted(c["left"]["anf"]))
    assert anf.min() >= 10 * act[0] and anf.max() < 10 * (act[-1] + 1)
    # 4 pulse packets (1, 11, 21, 31 ms) in 40 ms; each fibre emits int(amp * ILD) per packet
    amp = b.spectrogram_amplitude(100.0)
    for side in b.SIDES:
        ild = b.ild_spikes(30.0, side)
        expect = {10 * ch + k: 4 * int(amp[ch] * ild) for ch in act for k in range(10)
                  if int(amp[ch] * ild) > 0}
        got = c[side]["anf"]
        # packets whose jittered spikes fall after 40 ms are cut; the last packet is at 31 ms
        assert got == expect
    # the fixed seed gives fixed counts downstream (regression values, NEST 3.10.0)
    totals = {f"{s}_{p}": sum(c[s][p].values()) for s in b.SIDES for p in c[s] if p != "anf"}
    assert totals == pytest.approx(EXPECTED_TOTALS), totals


EXPECTED_TOTALS = {'left_sbc': 246, 'left_gbc': 68, 'left_mntb': 68, 'left_lso': 55, 'left_mso0': 60,
                   'left_mso1': 51, 'right_sbc': 309, 'right_gbc': 72, 'right_mntb': 72,
                   'right_lso': 67, 'right_mso0': 60, 'right_mso1': 20}


def test_silent_channels_change_nothing(short_run):
    """The shortcut against a network with 40 silent channels on each side of it: the
    inactive cells never spike and the random streams of the active generators coincide."""
    wide = b.build_and_run(replace(SHORT, margin_blocks=20))
    assert wide["network_size"] > 3 * short_run["network_size"]
    assert wide["counts"] == short_run["counts"]
    assert wide["rates_hz"] == short_run["rates_hz"]


@pytest.mark.slow
def test_shortcut_equals_full_model():
    """The whole 175 000-node network (several GB of memory) against the shortcut."""
    cfg = replace(SHORT, duration_ms=15.0)
    check = b.compare_full_and_shortcut(cfg)
    assert check["full_nodes"] > 175_000 > check["shortcut_nodes"]
    assert check["equal"]
    assert sum(check["rates_hz"][k] for k in check["rates_hz"] if k.endswith("_sbc")) > 0


def test_stepped_loop_redraws_packets(short_run):
    """The published 1 ms loop is not neutral in NEST: at every Simulate call the
    pulse-packet generator's pre-run hook puts every pulse centre within 10 sd (1 ms) of the
    current time back into its window, and the next update draws those packets again (the
    spikes already drawn stay queued). Stepping 1 ms nearly doubles the fibres' spikes."""
    one_call = b.build_and_run(replace(SHORT, stepped=True, step_ms=SHORT.duration_ms))
    assert one_call["counts"] == short_run["counts"]  # one step: the same as scheduling once
    stepped = b.build_and_run(replace(SHORT, stepped=True))
    for side in b.SIDES:
        a, c = short_run["counts"][side]["anf"], stepped["counts"][side]["anf"]
        assert set(a) == set(c) and all(c[i] >= a[i] for i in a)
    assert sum(stepped["counts"]["left"]["anf"].values()) == 27840  # 2.0 x 13920
    assert sum(stepped["counts"]["right"]["anf"].values()) == 47856  # 1.84 x 26000
    assert stepped["rates_hz"]["left_lso"] > short_run["rates_hz"]["left_lso"]


def test_blocked_inhibition_raises_mso_rates(short_run):
    r = short_run["rates_hz"]
    assert r["left_mso0"] >= r["left_mso1"] > 0


def test_sweep_resumes_and_redoes_changed_runs(tmp_path):
    base = replace(SHORT, duration_ms=12.0)
    spec = b.SweepSpec(azimuths_deg=(-90.0, 90.0), mso_types=(1,), base=base)
    first = b.run_sweep(spec, tmp_path)
    assert len(first) == 2 and len(list(tmp_path.glob("*.json"))) == 2
    path = tmp_path / f"{b.run_name(spec.configs()[0])}.json"
    stamp = json.loads(path.read_text())["wall_s"]
    again = b.run_sweep(spec, tmp_path)
    assert json.loads(path.read_text())["wall_s"] == stamp and again == first
    # a changed setting is not mistaken for the stored run
    spec2 = b.SweepSpec(azimuths_deg=(-90.0,), mso_types=(1,), base=replace(base, jitter_ms=0.05))
    b.run_sweep(spec2, tmp_path)
    assert json.loads(path.read_text())["config"]["jitter_ms"] == 0.05
    # parallel workers give the same runs
    par = b.run_sweep(spec, tmp_path / "par", workers=2)
    assert [r["rates_hz"] for r in par] == [r["rates_hz"] for r in first]
    table = b.sweep_table(first)
    assert list(table["azimuth_deg"]) == [-90.0, 90.0]
    # the left LSO is driven by the left ear: louder on the left (-90 deg)
    assert table["left_lso"].iloc[0] > table["left_lso"].iloc[1]
