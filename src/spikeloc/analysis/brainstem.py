"""The brainstem model of sound localisation (new_inh_model.ipynb, paper appendix "inhib"),
on NEST 3.10.

Auditory nerve (pulse-packet generators through parrot neurons) -> spherical and globular
bushy cells (SBC, GBC) -> MNTB -> LSO and MSO, per side, driven by a synthetic spectrogram
of a 100 Hz tone at 13 azimuths. Every population, weight, delay and time constant is in
the tables below (``POPULATIONS``, ``CONNECTIONS``, ``IAF_PARAMS``, ``MSO_TYPES``); the
circuit diagram and the paper's two tables are drawn from the same tables.

The pipeline runs the model as *task runs* (``workflow/analyses/brainstem.yaml``): the sweep
``mso`` (4 MSO types x 13 azimuths x NEST seeds) calls :func:`simulate` once per point, in
chunk jobs, and the run ``shortcut_check`` calls :func:`check_shortcut`. Tables, statistics
and figures are in :mod:`spikeloc.analysis.brainstem_plots`, so editing a figure retrains
nothing.

Two network sizes give the same rates:

- ``full``: all 3500 frequency channels per side (175 000 NEST nodes), as published;
- ``shortcut`` (default): only the frequency channels whose fibres can spike (the 21 active
  channels, widened to the 2-channel blocks that feed one LSO/MSO cell). Cells outside them
  receive no input (the background noise rate is 0), so they never spike and never enter
  the readout, which averages over *active* cells only. Nodes are created in the same order
  and inactive generators draw no random numbers, so with one NEST thread the shortcut
  reproduces the full model spike for spike (``tests/unit/test_brainstem.py``).

The published notebook advanced the simulation 1 ms at a time (``nest.Simulate(1)`` 1000
times), re-connecting a zero-rate Poisson generator to the active parrots at every step;
``stepped=True`` does the same. This is *not*
neutral in NEST: at every Simulate call the pulse-packet generator's pre-run hook puts every
pulse centre within 10 sd (1 ms) of the current time back into its window, so the next
update draws those packets again while the spikes already drawn stay queued; with 1 ms steps
the fibres fire about twice as often as the packets specify. ``stepped=False`` (the default)
schedules the pulse trains once and simulates once (one Simulate call), which gives the
packets as specified (and equals ``stepped=True`` with ``step_ms = duration_ms``; see the
tests). Neither reproduces the published LSO rates (the published ``ppg_set_up``, called
every step, is not in the catalogue), so the default is the cleaner and 2-3x faster one.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from spikeloc.errors import ConfigError
from spikeloc.io import atomic_write_json

# ---------------------------------------------------------------------------------------
# the model's tables (catalogue section 2.9)

N_CHANNELS = 3500  # "IHC" frequency channels, log-spaced 20 Hz - 20 kHz
ANF_PER_CHANNEL = 10
N_GAUSS = 21  # channels of the tone's Gaussian profile
HEAD_WIDTH_CM = 22.0
SOUND_SPEED_CM_S = 33000.0
ILD_ANGLES = (-90.0, 0.0, 90.0)
ILD_SPIKES = (10.0, 50.0, 100.0)  # spikes per packet in the right ear; mirrored for the left
NEST_DEFAULT_SEED = 143202461  # NEST's default rng_seed (the published runs used it)

# population name -> (cells per side, NEST model); sizes are per side at full scale
POPULATIONS: dict[str, tuple[int, str]] = {
    "anf_generators": (N_CHANNELS * ANF_PER_CHANNEL, "pulsepacket_generator"),
    "anf": (N_CHANNELS * ANF_PER_CHANNEL, "parrot_neuron"),
    "sbc": (N_CHANNELS * ANF_PER_CHANNEL // 4, "iaf_cond_alpha"),
    "gbc": (N_CHANNELS * ANF_PER_CHANNEL // 20, "iaf_cond_alpha"),
    "mntb": (N_CHANNELS * ANF_PER_CHANNEL // 20, "iaf_cond_alpha"),
    "lso": (N_CHANNELS * ANF_PER_CHANNEL // 20, "iaf_cond_alpha"),
    # 1750 positions x 2 "batteries": battery 0 has its inhibition blocked, battery 1 is control
    "mso": (2 * N_CHANNELS * ANF_PER_CHANNEL // 20, "iaf_cond_beta"),
}


@dataclass(frozen=True)
class Connection:
    """One projection: ``convergence`` consecutive presynaptic cells onto one target."""

    pre: str
    post: str
    side: str  # "ipsi" or "contra" (the presynaptic population's side)
    convergence: int
    weight: float | str  # nS; a string names the battery-dependent inhibitory weight
    delay_ms: float
    inhibitory: bool = False
    note: str = ""


CONNECTIONS: tuple[Connection, ...] = (
    Connection("anf_generators", "anf", "ipsi", 1, 1.0, 1.0, note="device -> parrot"),
    Connection("anf", "sbc", "ipsi", 4, 16.0, 1.0),
    Connection("anf", "gbc", "ipsi", 20, 8.0, 1.0),
    Connection("gbc", "mntb", "ipsi", 1, 16.0, 0.45),
    Connection("sbc", "lso", "ipsi", 5, 8.0, 1.0),
    Connection("mntb", "lso", "contra", 1, -2.0, 1.0, inhibitory=True),
    Connection("sbc", "mso", "ipsi", 5, 1.0, 1.0),
    Connection("sbc", "mso", "contra", 5, 1.0, 1.0),
    Connection("sbc", "mso", "ipsi", 5, "w_inh", 1.3, inhibitory=True,
               note='"LNTB": the ipsilateral SBC block, no LNTB population exists in code'),
    Connection("mntb", "mso", "contra", 1, "w_inh", 0.44, inhibitory=True),
)
MSO_INH_WEIGHTS = (0.0, -30.0)  # nS, per battery: 0 blocked, -30 control

# iaf_cond_alpha / iaf_cond_beta: NEST defaults except C_m and V_reset
IAF_PARAMS = {"C_m": 1.0, "V_reset": -70.0}
# what the paper's table iaf_data prints (the NEST defaults), next to what the code uses
IAF_TABLE = [
    # name, unit, paper table, code
    ("C_m", "pF", 250.0, 1.0),
    ("g_L", "nS", 16.6667, 16.6667),
    ("E_L", "mV", -70.0, -70.0),
    ("t_ref", "ms", 2.0, 2.0),
    ("V_th", "mV", -55.0, -55.0),
    ("V_reset", "mV", -60.0, -70.0),
    ("E_ex", "mV", 0.0, 0.0),
    ("E_in", "mV", -85.0, -85.0),
    ("tau_syn_ex", "ms", 0.2, 0.2),
    ("tau_syn_in", "ms", 2.0, 2.0),
]
# MSO types: [tau_rise_ex, tau_rise_in, tau_decay_ex, tau_decay_in] (ms) and published peak
MSO_TYPES: dict[int, tuple[tuple[float, float, float, float], float]] = {
    1: ((0.2, 0.1, 0.2, 0.01), 15.0),
    2: ((0.2, 0.1, 0.5, 0.1), 30.0),
    3: ((0.2, 0.1, 0.75, 0.14), 45.0),
    4: ((0.2, 0.1, 1.2, 0.18), 90.0),
}
SIDES = ("left", "right")


# ---------------------------------------------------------------------------------------
# stimulus


def channel_frequencies() -> np.ndarray:
    """The 3500 channel centre frequencies (Hz): e-based logspace 20 Hz - 20 kHz, 0.01 Hz."""
    return np.round(np.logspace(np.log(20), np.log(20000), N_CHANNELS, base=np.e), 2)


def gaussian_profile() -> np.ndarray:
    """round(N(x; 0, 1/sqrt(2 pi)), 2) on linspace(-1, 1, 21): peak 1, edges 0.04."""
    x = np.linspace(-1, 1, N_GAUSS)
    sigma = 1 / np.sqrt(2 * np.pi)
    return np.round(np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi)), 2)


def spectrogram_amplitude(tone_hz: float) -> np.ndarray:
    """Amplitude per channel (constant in time): the Gaussian profile centred on the first
    channel at or above the tone, zero elsewhere."""
    freqs = channel_frequencies()
    centre = int(np.argmax(freqs >= tone_hz))
    amp = np.zeros(N_CHANNELS)
    lo = centre - N_GAUSS // 2
    amp[lo : lo + N_GAUSS] = gaussian_profile()
    return amp


def itd_ms(azimuth_deg: float) -> float:
    """w sin(az) / c, rounded to the 0.01 ms NEST resolution; > 0: the left ear lags."""
    return round(1000 * HEAD_WIDTH_CM * np.sin(np.deg2rad(azimuth_deg)) / SOUND_SPEED_CM_S, 2)


def ild_spikes(azimuth_deg: float, side: str) -> float:
    """Spikes per packet at full amplitude: (-90, 0, 90) deg -> (10, 50, 100), right ear;
    the left ear is the mirror image."""
    az = azimuth_deg if side == "right" else -azimuth_deg
    return float(np.interp(az, ILD_ANGLES, ILD_SPIKES))


def active_channels(tone_hz: float) -> np.ndarray:
    return np.flatnonzero(spectrogram_amplitude(tone_hz) > 0)


def simulated_channels(tone_hz: float, network: str, margin: int = 0) -> tuple[int, int]:
    """[lo, hi) channel range to build: everything (full) or the active channels widened to
    whole 2-channel blocks (20 fibres: one GBC/MNTB/LSO/MSO position, 5 SBCs), plus
    ``margin`` silent 2-channel blocks on each side (a network between the two, for tests)."""
    if network == "full":
        return 0, N_CHANNELS
    act = active_channels(tone_hz)
    block = 20 // ANF_PER_CHANNEL
    lo = (act[0] // block) * block - margin * block
    hi = -(-(act[-1] + 1) // block) * block + margin * block
    return int(max(lo, 0)), int(min(hi, N_CHANNELS))


# ---------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class BrainstemConfig:
    """One NEST run (one MSO type at one azimuth, both batteries, both sides)."""

    azimuth_deg: float = 0.0
    mso_type: int = 1
    tone_hz: float = 100.0
    duration_ms: float = 1000.0
    network: str = "shortcut"  # shortcut | full
    seed: int = NEST_DEFAULT_SEED
    threads: int = 1
    resolution_ms: float = 0.01
    jitter_ms: float = 0.1  # pulse-packet sdev
    first_pulse_ms: float = 1.0
    ild: bool = True  # the published ILD map (ild_on = 1)
    noise_rate_hz: float = 0.0  # background poisson_generator (published: 0)
    stepped: bool = False  # True: the published 1 ms loop (re-draws packets; see above)
    step_ms: float = 1.0
    margin_blocks: int = 0  # shortcut only: silent 2-channel blocks added on each side

    def __post_init__(self):
        src = "brainstem config"
        if self.network not in ("shortcut", "full"):
            raise ConfigError(src, "network", f"must be 'shortcut' or 'full', got {self.network!r}")
        if self.mso_type not in MSO_TYPES:
            raise ConfigError(src, "mso_type", f"must be one of 1-4, got {self.mso_type!r}")
        if not -90 <= self.azimuth_deg <= 90:
            raise ConfigError(src, "azimuth_deg", f"must be in -90..90, got {self.azimuth_deg!r}")
        if self.duration_ms <= 0:
            raise ConfigError(src, "duration_ms", f"must be > 0, got {self.duration_ms!r}")
        if self.threads < 1:
            raise ConfigError(src, "threads", f"must be >= 1, got {self.threads!r}")
        if not 1 <= self.seed <= 2**32 - 1:
            raise ConfigError(src, "seed", f"NEST seeds are 1..4294967295, got {self.seed!r}")
        if self.noise_rate_hz != 0 and self.network == "shortcut":
            raise ConfigError(
                src, "noise_rate_hz", "the shortcut needs silent inactive channels (rate 0)"
            )
        if self.noise_rate_hz < 0:
            raise ConfigError(src, "noise_rate_hz", f"must be >= 0, got {self.noise_rate_hz!r}")
        for name in ("resolution_ms", "step_ms", "jitter_ms"):
            if getattr(self, name) <= 0:
                raise ConfigError(src, name, f"must be > 0, got {getattr(self, name)!r}")
        if self.margin_blocks < 0:
            raise ConfigError(src, "margin_blocks", f"must be >= 0, got {self.margin_blocks!r}")
        centre = int(np.argmax(channel_frequencies() >= self.tone_hz))
        if self.tone_hz > 20000.0 or not N_GAUSS // 2 <= centre < N_CHANNELS - N_GAUSS // 2:
            raise ConfigError(src, "tone_hz", "the tone's 21-channel profile must lie inside "
                              f"the 20 Hz - 20 kHz channels, got {self.tone_hz!r}")
        if self.stepped and abs(self.duration_ms / self.step_ms - round(self.duration_ms / self.step_ms)) > 1e-9:
            raise ConfigError(src, "step_ms", f"must divide duration_ms ({self.duration_ms}), "
                              f"got {self.step_ms!r}")


def _param_error(field: str, problem: str) -> ConfigError:
    # the pipeline reports it as `<manifest>: runs.<name>.params.<field>: <problem>`
    return ConfigError("brainstem params", field, problem)


_TYPES = {"float": (int, float), "int": (int,), "str": (str,), "bool": (bool,)}


def config_from_params(params: Mapping[str, Any], seed: int = NEST_DEFAULT_SEED) -> BrainstemConfig:
    """A :class:`BrainstemConfig` from a task run's ``params`` (any of its fields but
    ``seed``, which is the run's seed) -- unknown keys and wrongly typed values are refused
    with a :class:`ConfigError` naming the key."""
    if not isinstance(params, Mapping):
        raise _param_error("(params)", f"must be a mapping, got {type(params).__name__}")
    known = {f.name: f.type for f in fields(BrainstemConfig) if f.name != "seed"}
    for key, value in params.items():
        if key not in known:
            raise _param_error(key, f"unknown parameter (known: {', '.join(sorted(known))})")
        ok = _TYPES[known[key]]
        if not isinstance(value, ok) or (isinstance(value, bool) and bool not in ok):
            raise _param_error(key, f"must be {known[key]}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise _param_error("seed", f"must be an integer NEST seed, got {seed!r}")
    try:
        return BrainstemConfig(**params, seed=seed)
    except ConfigError as exc:
        raise _param_error(exc.field, exc.problem) from None


# ---------------------------------------------------------------------------------------
# network


def node_counts(network: str = "full", tone_hz: float = 100.0) -> dict[str, int]:
    """NEST nodes per population and side for a network size (recorders and the noise
    generator are counted separately as ``other``)."""
    lo, hi = simulated_channels(tone_hz, network)
    frac = (hi - lo) / N_CHANNELS
    out = {name: int(round(n * frac)) for name, (n, _) in POPULATIONS.items()}
    return out


def total_nodes(network: str = "full", tone_hz: float = 100.0) -> dict[str, int]:
    per_side = node_counts(network, tone_hz)
    devices = 2 * per_side["anf_generators"]
    neurons = 2 * sum(v for k, v in per_side.items() if k != "anf_generators")
    # one zero-rate noise generator and one spike recorder per recorded population and side
    other = 1 + 2 * (len(POPULATIONS) - 1)
    return {
        "populations": devices + neurons,
        "generator_devices": devices,
        "parrots": 2 * per_side["anf"],
        "model_neurons": neurons - 2 * per_side["anf"],
        "neurons": neurons,
        "recorders_and_noise": other,
    }


def _nest():
    import nest  # imported lazily: NEST prints a banner and starts a kernel

    return nest


def _pulse_times(cfg: BrainstemConfig, side: str) -> np.ndarray:
    # published: right from 1 ms, left from 1 + ITD ms (ITD < 0 moves the left earlier)
    shift = itd_ms(cfg.azimuth_deg) if side == "left" else 0.0
    period = 1000.0 / cfg.tone_hz
    return np.round(np.arange(cfg.first_pulse_ms + shift, cfg.duration_ms, period), 2)


def build_and_run(cfg: BrainstemConfig) -> dict[str, Any]:
    """Build the network in a fresh NEST kernel, simulate ``cfg.duration_ms`` and return
    spike counts per cell (only cells that spiked) and the rates of the readout."""
    nest = _nest()
    nest.ResetKernel()
    with warnings.catch_warnings():  # NEST 3.10 deprecates set_verbosity, 3.7 lacks its successor
        warnings.simplefilter("ignore")
        nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus(
        {
            "resolution": cfg.resolution_ms,
            "local_num_threads": cfg.threads,
            "rng_seed": cfg.seed,
            "print_time": False,
        }
    )
    lo, hi = simulated_channels(cfg.tone_hz, cfg.network, cfg.margin_blocks)
    n_ch = hi - lo
    amp = spectrogram_amplitude(cfg.tone_hz)[lo:hi]
    taus = MSO_TYPES[cfg.mso_type][0]
    mso_params = dict(
        IAF_PARAMS,
        tau_rise_ex=taus[0], tau_rise_in=taus[1], tau_decay_ex=taus[2], tau_decay_in=taus[3],
    )
    n_anf = n_ch * ANF_PER_CHANNEL
    pops: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        p: dict[str, Any] = {}
        times = _pulse_times(cfg, side)
        ild = ild_spikes(cfg.azimuth_deg, side) if cfg.ild else ILD_SPIKES[1]
        activity = np.repeat([int(a * ild) for a in amp], ANF_PER_CHANNEL)
        gens = nest.Create("pulsepacket_generator", n_anf)
        gens.set(
            [{"pulse_times": times, "activity": int(a), "sdev": cfg.jitter_ms} for a in activity]
        )
        p["anf_generators"] = gens
        p["activity"] = activity
        p["anf"] = nest.Create("parrot_neuron", n_anf)
        p["sbc"] = nest.Create("iaf_cond_alpha", n_anf // 4, params=IAF_PARAMS)
        p["gbc"] = nest.Create("iaf_cond_alpha", n_anf // 20, params=IAF_PARAMS)
        p["mntb"] = nest.Create("iaf_cond_alpha", n_anf // 20, params=IAF_PARAMS)
        p["lso"] = nest.Create("iaf_cond_alpha", n_anf // 20, params=IAF_PARAMS)
        p["mso"] = nest.Create("iaf_cond_beta", 2 * (n_anf // 20), params=mso_params)
        pops[side] = p
    noise = nest.Create("poisson_generator", params={"rate": cfg.noise_rate_hz})
    other = {"left": "right", "right": "left"}
    for side in SIDES:
        me, op = pops[side], pops[other[side]]
        n_pos = n_anf // 20
        for c in CONNECTIONS:
            src = me if c.side == "ipsi" else op
            pre_all = src[c.pre]
            targets = [me[c.post]] if c.post != "mso" else [
                me["mso"][j * n_pos : (j + 1) * n_pos] for j in range(2)
            ]
            for j, post in enumerate(targets):
                w = MSO_INH_WEIGHTS[j] if c.weight == "w_inh" else c.weight
                syn = {"weight": float(w), "delay": float(c.delay_ms)}
                if c.pre == "anf_generators":
                    syn = {"weight": 1.0, "delay": c.delay_ms}
                for k in range(c.convergence):
                    nest.Connect(pre_all[k :: c.convergence], post, "one_to_one", syn)
    recorders = {}
    for side in SIDES:
        for name in ("anf", "sbc", "gbc", "mntb", "lso", "mso"):
            rec = nest.Create("spike_recorder")
            nest.Connect(pops[side][name], rec)
            recorders[(side, name)] = rec
    active_parrots = {
        side: pops[side]["anf"][np.flatnonzero(pops[side]["activity"] > 0).tolist()]
        for side in SIDES
    }
    t0 = time.perf_counter()
    if cfg.stepped:
        n_steps = int(round(cfg.duration_ms / cfg.step_ms))
        for _ in range(n_steps):
            for side in SIDES:
                nest.Connect(noise, active_parrots[side], syn_spec={"weight": 1.0, "delay": 1.0})
            nest.Simulate(cfg.step_ms)
    else:
        for side in SIDES:
            nest.Connect(noise, active_parrots[side], syn_spec={"weight": 1.0, "delay": 1.0})
        nest.Simulate(cfg.duration_ms)
    sim_wall = time.perf_counter() - t0
    counts: dict[str, dict[str, dict[int, int]]] = {s: {} for s in SIDES}
    for (side, name), rec in recorders.items():
        senders = np.asarray(rec.get("events")["senders"], dtype=int)
        first = pops[side][name][0].global_id
        # index of the cell in its population, in *full-network* numbering (channel offset)
        offset = {"anf": lo * ANF_PER_CHANNEL, "sbc": lo * ANF_PER_CHANNEL // 4}.get(
            name, lo * ANF_PER_CHANNEL // 20
        )
        idx, cnt = np.unique(senders - first, return_counts=True)
        if name == "mso":
            n_pos = n_anf // 20
            for j in range(2):
                sel = (idx >= j * n_pos) & (idx < (j + 1) * n_pos)
                counts[side][f"mso{j}"] = {
                    int(i - j * n_pos + offset): int(n) for i, n in zip(idx[sel], cnt[sel], strict=False)
                }
        else:
            counts[side][name] = {int(i + offset): int(n) for i, n in zip(idx, cnt, strict=False)}
    n_nodes = int(nest.GetKernelStatus("network_size"))
    return {
        "config": asdict(cfg),
        "counts": counts,
        "rates_hz": readout(counts, cfg.duration_ms),
        "network_size": n_nodes,
        "sim_wall_s": sim_wall,
    }


def readout(counts: dict[str, dict[str, dict[int, int]]], duration_ms: float) -> dict[str, Any]:
    """Mean rate per *active* cell (cells that spiked at least once), in Hz, as published:
    total spikes of the population / number of active cells / duration."""
    out: dict[str, Any] = {}
    for side, pops in counts.items():
        for name, per_cell in pops.items():
            n = len(per_cell)
            rate = sum(per_cell.values()) / n / (duration_ms / 1000) if n else 0.0
            out[f"{side}_{name}"] = rate
            out[f"{side}_{name}_n_active"] = n
    return out


def compare_full_and_shortcut(cfg: BrainstemConfig, margin_blocks: int | None = None) -> dict[str, Any]:
    """Run ``cfg`` as the shortcut and as the full network (or, with ``margin_blocks``, as
    the shortcut with that many silent 2-channel blocks on each side: the same check on a
    smaller network), one NEST thread each (the condition under which the random streams
    coincide), and compare the spike counts of every cell."""
    a = build_and_run(replace(cfg, network="shortcut", threads=1, margin_blocks=0))
    big = (replace(cfg, network="full", threads=1, margin_blocks=0) if margin_blocks is None
           else replace(cfg, network="shortcut", threads=1, margin_blocks=margin_blocks))
    t0 = time.perf_counter()
    b = build_and_run(big)
    big_wall = time.perf_counter() - t0
    return {
        "equal": a["counts"] == b["counts"],
        "shortcut_nodes": a["network_size"],
        "full_nodes": b["network_size"],
        "shortcut_sim_s": a["sim_wall_s"],
        "full_sim_s": b["sim_wall_s"],
        "full_wall_s": big_wall,
        "rates_hz": a["rates_hz"],
        "counts": a["counts"],
        "reference_counts": b["counts"],
    }



# ---------------------------------------------------------------------------------------
# the pipeline's task runs (workflow/analyses/brainstem.yaml: sweeps.mso and runs.shortcut_check)


def _check_device(device: str | None) -> None:
    if device not in (None, "cpu", "auto"):
        raise _param_error("device", f"NEST runs on CPUs only, got {device!r}")


def _flat_metrics(res: dict[str, Any]) -> dict[str, Any]:
    """Rates (Hz), active cells and total spikes per population and side, flat."""
    out: dict[str, Any] = dict(res["rates_hz"])
    for side, pops in res["counts"].items():
        for name, per_cell in pops.items():
            out[f"{side}_{name}_spikes"] = int(sum(per_cell.values()))
    out["network_size"] = res["network_size"]
    out["sim_wall_s"] = res["sim_wall_s"]
    out["max_rss_mb"] = _max_rss_mb()
    return out


def _max_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; on Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def simulate(
    params: Mapping[str, Any],
    *,
    seed: int,
    out_dir: Path,
    device: str | None = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """One NEST run of the sweep: one MSO type at one azimuth, both batteries (control and
    blocked inhibition) and both sides, in a fresh kernel.

    ``params`` holds any :class:`BrainstemConfig` field but ``seed`` (``azimuth_deg``,
    ``mso_type``, ``duration_ms``, ``network``, ``stepped``, ...; the rest keep their
    published values); ``seed`` is NEST's ``rng_seed`` (143202461, NEST's default, is the
    published one). NEST threads are ``params.threads`` (default 1), not the job's
    ``threads``: the thread count changes NEST's random streams, so it belongs to the run's
    fingerprint. Writes the spike count of every cell that fired to
    ``out_dir/spike_counts.json`` and returns, per side and population (``left_lso``,
    ``left_mso1`` control, ``left_mso0`` blocked, ...), the readout rate in Hz (mean over
    the cells that fired), ``*_n_active`` and ``*_spikes``, plus ``network_size``,
    ``sim_wall_s`` and ``train_wall_s``."""
    cfg = config_from_params(params, seed)
    _check_device(device)
    t0 = time.perf_counter()
    res = build_and_run(cfg)
    atomic_write_json(Path(out_dir) / "spike_counts.json", res["counts"])
    metrics = _flat_metrics(res)
    metrics["train_wall_s"] = time.perf_counter() - t0
    if progress:
        print(f"brainstem type {cfg.mso_type} az {cfg.azimuth_deg:+.0f} seed {cfg.seed}: "
              f"left LSO {metrics['left_lso']:.1f} Hz, left MSO control "
              f"{metrics['left_mso1']:.1f} / blocked {metrics['left_mso0']:.1f} Hz "
              f"({metrics['train_wall_s']:.1f} s)", flush=True)
    return metrics


def differing_cells(mine: dict, ref: dict) -> tuple[set, list]:
    """Every (side, population, cell) that fired in either count table, and those whose
    spike counts differ (a cell missing from one table fired 0 times there)."""
    cells = {(side, name, cell) for counts in (mine, ref) for side in counts
             for name, per_cell in counts[side].items() for cell in per_cell}
    differing = sorted(c for c in cells
                       if mine.get(c[0], {}).get(c[1], {}).get(c[2])
                       != ref.get(c[0], {}).get(c[1], {}).get(c[2]))
    return cells, differing


def check_shortcut(
    params: Mapping[str, Any],
    *,
    seed: int,
    out_dir: Path,
    device: str | None = "cpu",
    threads: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The active-channel shortcut against a larger network with the same seed, one NEST
    thread each: ``params`` as for :func:`simulate` (``network`` must stay the shortcut)
    plus ``reference_margin_blocks``, the silent 2-channel blocks the reference adds on each
    side of the active ones (>= 1750: every channel, i.e. the full 175 000-node network).
    Returns ``equal`` (1 if every cell of both networks fired the same number of spikes),
    the cells that differ, both node counts and wall times, and the shortcut's rates."""
    params = dict(params)
    margin = params.pop("reference_margin_blocks", N_CHANNELS // 2)
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 1:
        raise _param_error("reference_margin_blocks", f"must be an integer >= 1, got {margin!r}")
    if params.get("network", "shortcut") != "shortcut":
        raise _param_error("network", "the check runs the shortcut against a wider network")
    cfg = config_from_params(params, seed)
    _check_device(device)
    t0 = time.perf_counter()
    check = compare_full_and_shortcut(cfg, margin_blocks=margin)
    cells, differing = differing_cells(check["counts"], check["reference_counts"])
    atomic_write_json(Path(out_dir) / "spike_counts.json", check["counts"])
    atomic_write_json(Path(out_dir) / "reference_spike_counts.json", check["reference_counts"])
    metrics = {
        "equal": int(check["equal"]),
        "n_cells_fired": len(cells),
        "n_cells_differing": len(differing),
        "shortcut_nodes": check["shortcut_nodes"],
        "reference_nodes": check["full_nodes"],
        "reference_margin_blocks": margin,
        "shortcut_sim_s": check["shortcut_sim_s"],
        "reference_sim_s": check["full_sim_s"],
        "reference_wall_s": check["full_wall_s"],
        "max_rss_mb": _max_rss_mb(),
        **{f"shortcut_{k}": v for k, v in check["rates_hz"].items()},
    }
    metrics["train_wall_s"] = time.perf_counter() - t0
    if progress:
        print(f"brainstem shortcut check: {metrics['shortcut_nodes']} vs "
              f"{metrics['reference_nodes']} nodes, equal = {metrics['equal']}", flush=True)
    return metrics
