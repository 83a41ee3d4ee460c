"""The brainstem model of sound localisation (new_inh_model.ipynb, paper appendix "inhib"),
on NEST 3.10.

Auditory nerve (pulse-packet generators through parrot neurons) -> spherical and globular
bushy cells (SBC, GBC) -> MNTB -> LSO and MSO, per side, driven by a synthetic spectrogram
of a 100 Hz tone at 13 azimuths. Every population, weight, delay and time constant is in
the tables below (``POPULATIONS``, ``CONNECTIONS``, ``IAF_PARAMS``, ``MSO_TYPES``); the
circuit diagram and the paper's two tables are drawn from the same tables.

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

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
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
        if self.noise_rate_hz != 0 and self.network == "shortcut":
            raise ConfigError(
                src, "noise_rate_hz", "the shortcut needs silent inactive channels (rate 0)"
            )

    def key(self) -> str:
        """A fingerprint of everything that changes the result."""
        d = asdict(self)
        if d["margin_blocks"] == 0:  # added later: runs stored before it keep their key
            del d["margin_blocks"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


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


# ---------------------------------------------------------------------------------------
# the sweep: 4 MSO types x 13 azimuths, both batteries (control and blocked) per run


@dataclass(frozen=True)
class SweepSpec:
    azimuths_deg: tuple[float, ...] = tuple(float(a) for a in range(-90, 91, 15))
    mso_types: tuple[int, ...] = (1, 2, 3, 4)
    seeds: tuple[int, ...] = (NEST_DEFAULT_SEED,)
    base: BrainstemConfig = field(default_factory=BrainstemConfig)

    def configs(self) -> list[BrainstemConfig]:
        return [
            replace(self.base, mso_type=t, azimuth_deg=a, seed=s)
            for s in self.seeds
            for t in self.mso_types
            for a in self.azimuths_deg
        ]


def run_name(cfg: BrainstemConfig) -> str:
    loop = "stepped" if cfg.stepped else "once"
    return f"type={cfg.mso_type}__az={cfg.azimuth_deg:+.0f}__seed={cfg.seed}__{loop}"


def _load_done(path: Path, cfg: BrainstemConfig) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        done = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return done if done.get("key") == cfg.key() else None


def _run_one(cfg: BrainstemConfig, path: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    res = build_and_run(cfg)
    done = {
        "key": cfg.key(),
        "run": run_name(cfg),
        "config": res["config"],
        "rates_hz": res["rates_hz"],
        "network_size": res["network_size"],
        "sim_wall_s": res["sim_wall_s"],
        "wall_s": time.perf_counter() - t0,
    }
    atomic_write_json(path, done)
    return done


def run_sweep(
    spec: SweepSpec, out_dir: str | Path, *, workers: int = 1, log=None
) -> list[dict[str, Any]]:
    """Run every point of ``spec`` not already done; one JSON per run written atomically in
    ``out_dir`` (a killed sweep resumes where it stopped; a run whose settings changed is
    redone). ``workers`` > 1 runs that many NEST kernels in parallel processes. Returns the
    results of every point in ``spec.configs()`` order (the rates, not the spike counts)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfgs = spec.configs()
    paths = [out / f"{run_name(c)}.json" for c in cfgs]
    results: list[dict[str, Any] | None] = [_load_done(p, c) for p, c in zip(paths, cfgs, strict=False)]
    todo = [i for i, r in enumerate(results) if r is None]
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(_run_one, cfgs[i], paths[i]): i for i in todo}
            for f in as_completed(futs):
                results[futs[f]] = f.result()
                if log:
                    log(f"{results[futs[f]]['run']}: {results[futs[f]]['wall_s']:.1f} s")
    else:
        for i in todo:
            results[i] = _run_one(cfgs[i], paths[i])
            if log:
                log(f"{results[i]['run']}: {results[i]['wall_s']:.1f} s")
    return results  # type: ignore[return-value]


def sweep_table(results: list[dict[str, Any]]):
    """One row per run: mso_type, azimuth_deg, seed and every rate of the readout."""
    import pandas as pd

    rows = []
    for r in results:
        c = r["config"]
        rows.append(
            {"mso_type": c["mso_type"], "azimuth_deg": c["azimuth_deg"], "seed": c["seed"],
             "wall_s": r["wall_s"], **r["rates_hz"]}
        )
    return pd.DataFrame(rows)


def curves(table, column: str):
    """Mean and sd over seeds of ``column`` per (mso_type, azimuth)."""
    g = table.groupby(["mso_type", "azimuth_deg"])[column]
    return g.agg(["mean", "std", "count"]).reset_index()


def peak_azimuths(table, column: str) -> dict[int, dict[int, float]]:
    """Azimuth of the highest rate, per MSO type and per seed."""
    out: dict[int, dict[int, float]] = {}
    for (t, s), g in table.groupby(["mso_type", "seed"]):
        out.setdefault(int(t), {})[int(s)] = float(g.loc[g[column].idxmax(), "azimuth_deg"])
    return out


def monotone_fraction(values: np.ndarray, decreasing: bool = True) -> float:
    """Fraction of successive steps that go the stated way (1.0: strictly monotone)."""
    d = np.diff(np.asarray(values, dtype=float))
    return float(np.mean(d < 0 if decreasing else d > 0))


# ---------------------------------------------------------------------------------------
# tables and figures (matplotlib Figures, no pyplot state)


# what the paper's table_brainstem prints (per population; MSO 7000 = both sides of 3500)
PUBLISHED_TABLE = {"anf_generators": (35000, "poisson generator"), "anf": (35000, None),
                   "sbc": (8750, None), "gbc": (1750, None), "mntb": (1750, None),
                   "lso": (1750, None), "mso": (7000, None)}


def population_table(network: str = "full"):
    """The paper's table_brainstem from POPULATIONS / CONNECTIONS: cells per side, per
    channel, NEST model, the projections each population sends, and the published row."""
    import pandas as pd

    counts = node_counts(network)
    lo, hi = simulated_channels(100.0, network)
    rows = []
    for name, (_, model) in POPULATIONS.items():
        out = [
            f"{c.convergence}:1 to {'contralateral ' if c.side == 'contra' else ''}{c.post.upper()}"
            f" ({'inh' if c.inhibitory else 'exc'}, "
            f"{'0 | -30' if c.weight == 'w_inh' else c.weight} nS, {c.delay_ms} ms)"
            for c in CONNECTIONS
            if c.pre == name and c.pre != "anf_generators"
        ]
        pub_n, pub_model = PUBLISHED_TABLE[name]
        rows.append({"population": name.upper(), "per side": counts[name],
                     "per channel": counts[name] / (hi - lo), "NEST model": model,
                     "projections": "; ".join(out), "published count": pub_n,
                     "published model": pub_model or model})
    return pd.DataFrame(rows)


def iaf_table():
    import pandas as pd

    return pd.DataFrame(IAF_TABLE, columns=["parameter", "unit", "paper table", "code (used)"])


def circuit_figure(network: str = "full"):
    """Figure 18 drawn from the tables: one box per population and side with its size, an
    arrow per projection (green excitatory, red inhibitory) labelled with its convergence."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    counts = node_counts(network)
    fig = Figure(figsize=(9, 5.5))
    ax = fig.add_subplot()
    ax.set_xlim(-1, 11)
    ax.set_ylim(-0.6, 5.2)
    ax.axis("off")
    rows = {"anf": 4.5, "sbc": 3.3, "gbc": 3.3, "mntb": 2.1, "lso": 0.6, "mso": 0.6}
    colx = {"anf": 1.6, "sbc": 0.7, "gbc": 2.6, "mntb": 3.2, "lso": 1.0, "mso": 3.2}
    pos = {}
    for side, sign in (("left", -1), ("right", 1)):
        for name, y in rows.items():
            x = 5 + sign * (5 - colx[name]) if side == "right" else colx[name]
            pos[(side, name)] = (x, y)
            label = f"{side[0].upper()} {name.upper()}\n{counts[name]:,}"
            if name == "anf":
                label += " (+ gens)"
            ax.add_patch(FancyBboxPatch((x - 0.55, y - 0.3), 1.1, 0.6,
                                        boxstyle="round,pad=0.05", fc="0.93", ec="0.3"))
            ax.text(x, y, label, ha="center", va="center", fontsize=7.5)
    other = {"left": "right", "right": "left"}
    seen = set()
    for side in SIDES:
        for c in CONNECTIONS:
            if c.pre == "anf_generators":
                continue
            src = (side if c.side == "ipsi" else other[side], c.pre)
            dst = (side, c.post)
            k = (src, dst, c.inhibitory)
            if k in seen:
                continue
            seen.add(k)
            (x0, y0), (x1, y1) = pos[src], pos[dst]
            colour = "tab:red" if c.inhibitory else "tab:green"
            rad = 0.25 if c.side == "contra" else (0.15 if c.inhibitory else 0.0)
            ax.annotate("", xy=(x1, y1 + 0.32), xytext=(x0, y0 - 0.32),
                        arrowprops=dict(arrowstyle="-|>" if not c.inhibitory else "-[",
                                        color=colour, lw=1.2,
                                        connectionstyle=f"arc3,rad={rad}"))
            if side == "left":
                f = 0.3 if c.inhibitory else 0.55
                tx, ty = x0 + f * (x1 - x0), y0 + f * (y1 - y0)
                w = c.weight if not isinstance(c.weight, str) else "0|-30"
                ax.text(tx + (-0.12 if c.inhibitory else 0.12), ty,
                        f"{c.convergence}:1, {w} nS\n{c.delay_ms} ms",
                        fontsize=6, color=colour, ha="right" if c.inhibitory else "left",
                        va="center", bbox=dict(fc="white", ec="none", alpha=0.7, pad=0.5))
    ax.text(5, 5.1, "tone spectrogram: 3500 channels, 21 active (100 Hz), ITD + ILD",
            ha="center", fontsize=8)
    ax.plot([], [], color="tab:green", label="excitatory")
    ax.plot([], [], color="tab:red", label="inhibitory (MSO: 0 blocked / -30 nS control)")
    ax.legend(loc="lower center", fontsize=7, frameon=False, ncol=2, bbox_to_anchor=(0.5, -0.08))
    tot = total_nodes(network)
    ax.set_title(f"Brainstem model ({network}): {tot['populations']:,} NEST nodes "
                 f"({tot['generator_devices']:,} generators, {tot['neurons']:,} neurons)",
                 fontsize=9)
    return fig


def _curve(ax, summary, label, colour, style="-"):
    ax.errorbar(summary["azimuth_deg"], summary["mean"],
                yerr=summary["std"].fillna(0) if "std" in summary else None,
                color=colour, ls=style, marker="o", ms=3, capsize=2, label=label)


def rates_figure(table, side: str = "left"):
    """Figure 19: mean rate of the LSO and of the four MSO types vs azimuth (control)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    a, m = fig.subplots(1, 2)
    lso = table.groupby("azimuth_deg")[f"{side}_lso"].agg(["mean", "std"]).reset_index()
    _curve(a, lso, f"{side} LSO", "k")
    a.set(xlabel="Azimuth (deg)", ylabel="Mean firing rate (Hz)", title=f"A  {side.capitalize()} LSO")
    for t in sorted(table["mso_type"].unique()):
        s = curves(table[table["mso_type"] == t], f"{side}_mso1")
        _curve(m, s, f"neuron {t}", f"C{t - 1}")
    m.set(xlabel="Azimuth (deg)", ylabel="Mean firing rate (Hz)",
          title=f"B  {side.capitalize()} MSO (control)")
    m.legend(fontsize=7)
    for ax in (a, m):
        ax.set_xticks(range(-90, 91, 30))
    fig.tight_layout()
    return fig


def blocked_figure(table, side: str = "left"):
    """Figure 20: the four MSO types, control (blue) vs blocked inhibition (red)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, t in zip(axes, sorted(table["mso_type"].unique()), strict=False):
        sub = table[table["mso_type"] == t]
        _curve(ax, curves(sub, f"{side}_mso1"), "control (-30 nS)", "tab:blue")
        _curve(ax, curves(sub, f"{side}_mso0"), "inhibition blocked (0 nS)", "tab:red")
        ax.set(title=f"{side.capitalize()} MSO neuron {t}", ylabel="Mean firing rate (Hz)")
        ax.set_xticks(range(-90, 91, 30))
    n = len(table["mso_type"].unique())
    for ax in axes[n:]:
        ax.set_visible(False)
    for ax in axes[max(n - 2, 0) : n]:
        ax.set_xlabel("Azimuth (deg)")
        ax.xaxis.set_tick_params(labelbottom=True)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def summarise(table, side: str = "left") -> dict[str, Any]:
    """The claims' statistics over seeds: control and blocked peak azimuths per MSO type
    (median over seeds of each seed's argmax), peak rates of the seed-mean curves, the
    smallest blocked-minus-control peak-rate difference, and the LSO trend."""
    ctrl, blk = f"{side}_mso1", f"{side}_mso0"
    pk_c, pk_b = peak_azimuths(table, ctrl), peak_azimuths(table, blk)
    out: dict[str, Any] = {"control_peak_deg": {}, "blocked_peak_deg": {},
                           "control_peak_hz": {}, "blocked_peak_hz": {}}
    agree = []
    for t in sorted(pk_c):
        out["control_peak_deg"][t] = float(np.median(list(pk_c[t].values())))
        out["blocked_peak_deg"][t] = float(np.median(list(pk_b[t].values())))
        agree += [p == out["control_peak_deg"][t] for p in pk_c[t].values()]
        sub = table[table["mso_type"] == t]
        out["control_peak_hz"][t] = float(curves(sub, ctrl)["mean"].max())
        out["blocked_peak_hz"][t] = float(curves(sub, blk)["mean"].max())
    out["blocked_max_abs_peak_deg"] = max(abs(v) for v in out["blocked_peak_deg"].values())
    out["blocked_minus_control_hz"] = min(
        out["blocked_peak_hz"][t] - out["control_peak_hz"][t] for t in out["control_peak_hz"]
    )
    out["peak_seed_agreement"] = float(np.mean(agree))
    # the LSO does not depend on the MSO type: average over types and seeds
    lso = table.groupby("azimuth_deg")[f"{side}_lso"].mean().sort_index()
    out["lso_first_hz"] = float(lso.iloc[0])
    out["lso_last_hz"] = float(lso.iloc[-1])
    out["lso_mid_hz"] = float(lso.loc[0.0]) if 0.0 in lso.index else float("nan")
    out["lso_falling_fraction"] = monotone_fraction(lso.values, decreasing=side == "left")
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
    }
