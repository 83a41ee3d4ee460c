"""The NEST brainstem model (spikeloc.analysis.brainstem): stimulus, tables, the
active-channel shortcut against the full network, the stepped loop against one Simulate, the
pipeline's task functions (simulate, check_shortcut) and the sweep-table statistics."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import numpy as np
import pytest

from spikeloc.analysis import brainstem as b
from spikeloc.analysis import brainstem_plots as bp
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


def _params(cfg: b.BrainstemConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items() if k != "seed"}


def test_simulate_task_returns_the_runs_metrics(short_run, tmp_path):
    """The task function is build_and_run with the run's seed, flat metrics and the spike
    counts in its scratch directory."""
    m = b.simulate(_params(SHORT), seed=SHORT.seed, out_dir=tmp_path, device="cpu",
                   threads=2, progress=False)
    assert json.loads((tmp_path / "spike_counts.json").read_text()) == json.loads(
        json.dumps(short_run["counts"]))
    for k, v in short_run["rates_hz"].items():
        assert m[k] == v
    totals = {k.removesuffix("_spikes"): v for k, v in m.items() if k.endswith("_spikes")}
    assert {k: v for k, v in totals.items() if not k.endswith("_anf")} == EXPECTED_TOTALS
    assert m["network_size"] == short_run["network_size"]
    assert m["train_wall_s"] >= m["sim_wall_s"] > 0
    assert all(isinstance(v, (int, float)) for v in m.values())
    json.dumps(m)  # JSON values only
    # only the given parameters change; the rest are the published defaults
    assert b.config_from_params({"azimuth_deg": 30.0, "mso_type": 2}, 7) == replace(
        b.BrainstemConfig(), azimuth_deg=30.0, mso_type=2, seed=7)


@pytest.mark.parametrize(
    ("params", "seed", "field"),
    [
        ({"azimuth": 30}, 1, "azimuth"),  # unknown key
        ({"mso_type": 5}, 1, "mso_type"),
        ({"mso_type": 1.0}, 1, "mso_type"),  # an int field
        ({"stepped": 1}, 1, "stepped"),  # a bool field
        ({"azimuth_deg": "30"}, 1, "azimuth_deg"),
        ({"azimuth_deg": 95}, 1, "azimuth_deg"),
        ({"duration_ms": 0}, 1, "duration_ms"),
        ({"network": "half"}, 1, "network"),
        ({"tone_hz": 19.0}, 1, "tone_hz"),
        ({"stepped": True, "duration_ms": 10.0, "step_ms": 3.0}, 1, "step_ms"),
        ({}, 0, "seed"),  # NEST refuses seed 0
        ({"seed": 3}, 1, "seed"),  # the run's seed, not a parameter
    ],
)
def test_bad_task_params_name_the_field(params, seed, field, tmp_path):
    with pytest.raises(ConfigError) as err:
        b.simulate(params, seed=seed, out_dir=tmp_path, device="cpu", threads=1, progress=False)
    assert err.value.field == field
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_check_shortcut_task(short_run, tmp_path):
    m = b.check_shortcut({**_params(SHORT), "reference_margin_blocks": 20}, seed=SHORT.seed,
                         out_dir=tmp_path, device="cpu", threads=1, progress=False)
    fired = sum(len(per_cell) for side in b.SIDES for per_cell in short_run["counts"][side].values())
    assert m["equal"] == 1 and m["n_cells_differing"] == 0 and m["n_cells_fired"] == fired > 600
    assert m["reference_nodes"] > 3 * m["shortcut_nodes"] == 3 * short_run["network_size"]
    assert m["shortcut_left_lso"] == short_run["rates_hz"]["left_lso"]
    ref = json.loads((tmp_path / "reference_spike_counts.json").read_text())
    assert ref == json.loads((tmp_path / "spike_counts.json").read_text())
    for bad, field in (({"reference_margin_blocks": 0}, "reference_margin_blocks"),
                       ({"network": "full"}, "network")):
        with pytest.raises(ConfigError) as err:
            b.check_shortcut(bad, seed=1, out_dir=tmp_path, device="cpu", threads=1,
                             progress=False)
        assert err.value.field == field


def test_differing_cells():
    a = {"left": {"lso": {3: 5, 4: 1}}, "right": {"lso": {}}}
    same, none = b.differing_cells(a, a)
    assert len(same) == 2 and none == []
    c = {"left": {"lso": {3: 5, 7: 2}}, "right": {"lso": {1: 1}}}
    cells, diff = b.differing_cells(a, c)
    assert len(cells) == 4
    assert diff == [("left", "lso", 4), ("left", "lso", 7), ("right", "lso", 1)]


def test_task_module_does_not_import_plotting():
    """The pipeline fingerprints the task's module and the spikeloc modules it imports: a
    figure edit must not retrain the sweep."""
    from spikeloc.pipeline.codehash import code_files

    names = {p.name for p in code_files(["spikeloc.analysis.brainstem"])}
    assert "brainstem.py" in names and "brainstem_plots.py" not in names
    assert not {"figures.py", "plots.py"} & names
    import ast
    tree = ast.parse(open(b.__file__).read())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module}
    assert "matplotlib" not in imported and "pandas" not in imported


def _table(rows):
    import pandas as pd

    return bp.tidy(pd.DataFrame(rows))


def test_summary_of_a_sweep_table():
    """Peaks are each seed's argmax, summarised by the median; the LSO trend is averaged
    over types and seeds; the columns the pipeline writes (params.*) are accepted."""
    rows = []
    for seed in (1, 2, 3):
        for t in (1, 2):
            for az in (-30.0, 0.0, 30.0):
                peak = 30.0 if t == 2 or seed != 3 else 0.0
                rows.append({"params.mso_type": t, "params.azimuth_deg": az, "seed": seed,
                             "left_mso1": 100.0 - abs(az - peak), "left_mso0": 150.0 - abs(az),
                             "left_lso": 200.0 - az - seed})
    s = bp.summarise(_table(rows), "left")
    assert s["control_peak_deg"] == {1: 30.0, 2: 30.0}
    assert s["blocked_peak_deg"] == {1: 0.0, 2: 0.0}
    assert s["blocked_max_abs_peak_deg"] == 0.0
    assert s["peak_seed_agreement"] == pytest.approx(5 / 6)
    # control peak of the seed-mean curve of type 1: az 30: (100 + 100 + 70) / 3
    assert s["control_peak_hz"][1] == pytest.approx(90.0)
    assert s["blocked_peak_hz"][1] == 150.0
    assert s["blocked_minus_control_hz"] == pytest.approx(50.0)
    assert s["lso_first_hz"] == 228.0 and s["lso_mid_hz"] == 198.0 and s["lso_last_hz"] == 168.0
    assert s["lso_falling_fraction"] == 1.0
    assert bp.monotone_fraction([3, 2, 2, 1]) == pytest.approx(2 / 3)
    import pandas as pd
    with pytest.raises(ValueError, match="azimuth_deg"):
        bp.tidy(pd.DataFrame({"mso_type": [1], "seed": [1]}))
