"""Tables, statistics and figures of the brainstem model (:mod:`spikeloc.analysis.brainstem`).

Nothing here simulates: the notebook reads the pipeline's sweep table (one row per NEST run,
``results/<scale>/sweeps/brainstem/mso.csv``) and calls these. They live apart from the
model so that editing a figure does not change the code fingerprint of the runs (the
pipeline hashes the task's module and every ``spikeloc`` module it imports) and retrain
nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spikeloc.analysis.brainstem import (
    CONNECTIONS,
    IAF_TABLE,
    POPULATIONS,
    SIDES,
    node_counts,
    simulated_channels,
    total_nodes,
)

__all__ = [
    "blocked_figure",
    "circuit_figure",
    "curves",
    "iaf_table",
    "monotone_fraction",
    "peak_azimuths",
    "population_table",
    "rates_figure",
    "summarise",
    "tidy",
]


def tidy(table):
    """The sweep table with its swept keys named as the model's parameters: the pipeline
    writes ``params.mso_type`` and ``params.azimuth_deg``; the functions here read
    ``mso_type`` and ``azimuth_deg``. Sorted by type, azimuth and seed."""
    table = table.rename(columns={c: c.removeprefix("params.") for c in table.columns})
    missing = {"mso_type", "azimuth_deg", "seed"} - set(table.columns)
    if missing:
        raise ValueError(f"brainstem sweep table lacks {sorted(missing)}")
    return table.sort_values(["mso_type", "azimuth_deg", "seed"]).reset_index(drop=True)


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


