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


# box centres of the left hemisphere (the right one is its mirror image about x = 5)
_CIRCUIT_POS = {"anf": (1.7, 4.4), "sbc": (0.7, 3.2), "gbc": (2.7, 3.2), "mntb": (3.2, 2.0),
                "lso": (0.7, 0.6), "mso": (3.7, 0.6)}


def _projection_text(c) -> str:
    w = "0 | -30" if isinstance(c.weight, str) else f"{c.weight:+g}"
    side = "contralateral " if c.side == "contra" else ""
    return (f"{side}{c.pre.upper()} -> {c.post.upper()}: {c.convergence}:1, {w} nS, "
            f"{c.delay_ms:g} ms" + (" (LNTB)" if "LNTB" in c.note else ""))


def circuit_figure(network: str = "full"):
    """Figure 18 drawn from the tables: one box per population and side with its size, an
    arrow per projection (green excitatory, red inhibitory, bar-headed) with a number that
    the list below the diagram resolves into convergence, weight and delay."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    counts = node_counts(network)
    fig = Figure(figsize=(9, 6.8))
    ax = fig.add_axes((0.01, 0.27, 0.98, 0.66))
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(0.1, 4.9)
    ax.axis("off")
    pos = {}
    for side in SIDES:
        for name, (x, y) in _CIRCUIT_POS.items():
            x = x if side == "left" else 10 - x
            pos[(side, name)] = (x, y)
            label = f"{side[0].upper()} {name.upper()}\n{counts[name]:,}"
            if name == "anf":
                label = f"{side[0].upper()} ANF\n{counts[name]:,} fibres + gen."
            ax.add_patch(FancyBboxPatch((x - 0.6, y - 0.28), 1.2, 0.56,
                                        boxstyle="round,pad=0.04", fc="0.94", ec="0.35"))
            ax.text(x, y, label, ha="center", va="center", fontsize=7.5)
    ax.axvline(5, color="0.8", lw=0.8, ls=":")
    ax.text(2.5, 4.85, "left hemisphere", ha="center", fontsize=8, color="0.4")
    ax.text(7.5, 4.85, "right hemisphere", ha="center", fontsize=8, color="0.4")
    other = {"left": "right", "right": "left"}
    projections = [c for c in CONNECTIONS if c.pre != "anf_generators"]
    for side in SIDES:
        for i, c in enumerate(projections, start=1):
            (x0, y0) = pos[(side if c.side == "ipsi" else other[side], c.pre)]
            (x1, y1) = pos[(side, c.post)]
            colour = "tab:red" if c.inhibitory else "tab:green"
            # ipsilateral SBC -> MSO exists twice (excitatory and "LNTB" inhibitory): bend apart
            rad = 0.0
            if c.side == "contra":
                rad = -0.12 if side == "left" else 0.12
            elif c.pre == "sbc" and c.post == "mso":
                rad = (0.18 if c.inhibitory else -0.1) * (1 if side == "left" else -1)
            start = (x0, y0 - 0.3)
            end = (x1 + (0.0 if c.side == "ipsi" else (0.25 if side == "right" else -0.25)),
                   y1 + 0.3)
            ax.annotate("", xy=end, xytext=start,
                        arrowprops=dict(arrowstyle="-[" if c.inhibitory else "-|>",
                                        color=colour, lw=1.1, shrinkA=0, shrinkB=1,
                                        connectionstyle=f"arc3,rad={rad}"))
            if side == "right":
                continue  # the mirror image: numbered once, on the arrows into the left side
            # the number sits on the arc (a quadratic Bezier; t = 1/2 is its midpoint)
            dx, dy = end[0] - start[0], end[1] - start[1]
            t = 0.55 if c.side == "ipsi" else 0.25
            mx = start[0] + t * dx + 2 * t * (1 - t) * rad * dy
            my = start[1] + t * dy - 2 * t * (1 - t) * rad * dx
            ax.text(mx, my, str(i), ha="center", va="center", fontsize=6.5, color="white",
                    fontweight="bold",
                    bbox=dict(boxstyle="circle,pad=0.2", fc=colour, ec="none"))
    lines = [f"{i}  {_projection_text(c)}" for i, c in enumerate(projections, start=1)]
    half = (len(lines) + 1) // 2
    for col, chunk in enumerate((lines[:half], lines[half:])):
        fig.text(0.04 + 0.5 * col, 0.24, "\n".join(chunk), ha="left", va="top", fontsize=7.5,
                 family="monospace", linespacing=1.5)
    fig.text(0.04, 0.035, "Every projection exists in both hemispheres; the numbers mark the "
             "arrows into the left one. ANF: pulse-packet generator -> parrot neuron, 1:1.\n"
             "MSO: each position twice, inhibition 0 nS (blocked) and -30 nS (control). "
             "No LNTB population exists: projection 8 is the ipsilateral SBC block itself.",
             fontsize=7, color="0.3", va="bottom")
    ax.plot([], [], color="tab:green", label="excitatory")
    ax.plot([], [], color="tab:red", label="inhibitory")
    ax.legend(loc="upper center", fontsize=7.5, frameon=False, ncol=2,
              bbox_to_anchor=(0.5, 0.98))
    tot = total_nodes(network)
    fig.suptitle(f"Brainstem model ({network}): {tot['populations']:,} NEST nodes "
                 f"({tot['generator_devices']:,} generators, {tot['neurons']:,} neurons); "
                 "100 Hz tone, 21 of 3500 channels active", fontsize=9, y=0.985)
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
    for letter, ax, t in zip("ABCD", axes, sorted(table["mso_type"].unique()), strict=False):
        sub = table[table["mso_type"] == t]
        _curve(ax, curves(sub, f"{side}_mso1"), "control (-30 nS)", "tab:blue")
        _curve(ax, curves(sub, f"{side}_mso0"), "inhibition blocked (0 nS)", "tab:red")
        ax.set(title=f"{letter}  {side.capitalize()} MSO neuron {t}", ylabel="Mean firing rate (Hz)")
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


