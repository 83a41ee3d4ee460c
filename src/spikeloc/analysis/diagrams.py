"""Figures 1 and 2 of the paper, drawn by code: the model architecture from a run config and
real input spikes, and the project's workflow graph from its manifests (Graphviz layout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

__all__ = ["architecture_figure", "workflow_graph"]


def architecture_figure(
    *,
    spikes: np.ndarray,
    theta: np.ndarray,
    fibres: Sequence[int],
    dt_s: float,
    ipd_deg: float,
    frequency_hz: float,
    n_per_ear: int,
    n_hidden: int,
    n_classes: int,
    tau_ms: float,
    max_drawn: int = 8,
) -> Figure:
    """Tone -> two ears (phase delays) -> Poisson fibres (rasters + sines of ``fibres``) ->
    LIF hidden layer -> leaky-integrator outputs -> argmax. ``spikes``: (T, 2N) of one sample;
    ``theta``: (T, 2N) phases of the fibres."""
    fig = Figure(figsize=(12, 4.6))
    bg = fig.add_axes([0, 0, 1, 1])
    bg.set_xlim(0, 12)
    bg.set_ylim(0, 4.6)
    bg.axis("off")
    t_ms = np.arange(spikes.shape[0]) * dt_s * 1e3

    def arrow(x0, y0, x1, y1, **kw):
        bg.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>",
                mutation_scale=12,
                color=kw.get("color", "0.3"),
                lw=kw.get("lw", 1),
            )
        )

    # tone
    ax = fig.add_axes([0.01, 0.42, 0.1, 0.16])
    ax.plot(t_ms, np.sin(2 * np.pi * frequency_hz * t_ms / 1e3), "k")
    ax.set_title(f"tone, {frequency_hz:g} Hz", fontsize=9)
    ax.set_xlabel("ms", fontsize=8)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    # ears
    for y, name, shift in ((3.3, "left ear", "0"), (1.1, "right ear", f"+IPD ({ipd_deg:g}°)")):
        bg.add_patch(
            FancyBboxPatch(
                (1.75, y - 0.3), 1.1, 0.6, boxstyle="round,pad=0.05", fc="#e8eef7", ec="0.3"
            )
        )
        bg.text(2.3, y + 0.08, name, ha="center", fontsize=9)
        bg.text(2.3, y - 0.18, f"phase {shift}", ha="center", fontsize=7)
        arrow(1.4, 2.3, 1.75, y)
    # fibre rasters and sines
    rows = [(0.62, fibres[:2], 3.3), (0.14, fibres[2:], 1.1)]
    for y0, fs, yc in rows:
        ra = fig.add_axes([0.27, y0 + 0.11, 0.17, 0.2])
        sa = fig.add_axes([0.27, y0, 0.17, 0.1], sharex=ra)
        for k, f in enumerate(fs):
            st = t_ms[spikes[:, f] > 0]
            ra.vlines(st, k + 0.6, k + 1.4, color=f"C{k}")
            sa.plot(t_ms, np.sin(theta[:, f]), color=f"C{k}", lw=1)
        ra.set_yticks([1, 2], [f"fibre {f}" for f in fs], fontsize=7)
        ra.tick_params(labelbottom=False, labelsize=7)
        sa.set_yticks([])
        sa.tick_params(labelsize=7)
        arrow(2.9, yc, 3.2, yc)
        bg.text(
            4.2, yc + 0.72, f"{n_per_ear} Poisson fibres, phases 0..90°", ha="center", fontsize=8
        )
    fig.axes[-1].set_xlabel("Time (ms)", fontsize=8)

    def column(x, n, color, label):
        shown = min(n, max_drawn)
        ys = np.linspace(0.6, 4.0, shown)
        for y in ys:
            bg.add_patch(Circle((x, y), 0.13, fc=color, ec="0.2"))
        if n > shown:
            bg.text(x, 0.3, f"... {n} in all", ha="center", fontsize=7)
        bg.text(x, 4.3, label, ha="center", fontsize=9)
        return ys

    hid = column(7.4, n_hidden, "#f4c28b", f"{n_hidden} LIF\n(tau {tau_ms:g} ms)")
    out = column(9.4, n_classes, "#9fd3a8", f"{n_classes} leaky\nintegrators")
    for yc in (3.3, 1.1):
        for y in hid:
            bg.plot([5.6, 7.27], [yc, y], color="0.75", lw=0.4)
    for y in hid:
        for y2 in out:
            bg.plot([7.53, 9.27], [y, y2], color="0.75", lw=0.4)
    bg.text(6.45, 4.3, "W_ih", ha="center", fontsize=9, style="italic")
    bg.text(8.4, 4.3, "W_ho", ha="center", fontsize=9, style="italic")
    bg.add_patch(
        FancyBboxPatch((10.2, 2.0), 1.5, 0.6, boxstyle="round,pad=0.05", fc="#eeeeee", ec="0.3")
    )
    bg.text(10.95, 2.22, "argmax of\ntime-mean -> IPD class", ha="center", fontsize=8)
    for y in out:
        bg.plot([9.53, 10.2], [y, 2.3], color="0.6", lw=0.5)
    return fig


def workflow_graph(
    modules: Mapping[str, Mapping], chunks: Mapping[str, int], contributors: Mapping[str, str]
):
    """The pipeline as a ``graphviz.Digraph``: contributors -> modules (manifests) -> training
    chunks -> notebooks -> figures and numbers -> claims -> paper; contributor files ->
    authorship -> paper. ``modules``: name -> manifest data; ``chunks``: module -> number of
    training jobs; ``contributors``: handle -> display name."""
    import graphviz

    g = graphviz.Digraph(
        "workflow",
        graph_attr={"rankdir": "LR", "fontname": "Helvetica", "nodesep": "0.15", "ranksep": "0.5"},
        node_attr={"fontname": "Helvetica", "fontsize": "10", "style": "filled"},
    )
    people = set()
    for name in sorted(modules):
        m = modules[name]
        people.update(m["owners"])
        people.update(m["original_authors"])
    with g.subgraph(name="cluster_people") as c:
        c.attr(label="contributors/*.yaml", style="dashed")
        for p in sorted(people):
            c.node(f"p_{p}", contributors.get(p, p), shape="ellipse", fillcolor="#fde2c8")
    for name in sorted(modules):
        m = modules[name]
        g.node(f"m_{name}", f"{name}.yaml", shape="note", fillcolor="#e8eef7")
        for p in sorted(set(m["owners"]) | set(m["original_authors"])):
            g.edge(f"p_{p}", f"m_{name}", color="0.6")
        src = f"m_{name}"
        if chunks.get(name):
            g.node(f"t_{name}", f"train_chunk x{chunks[name]}", shape="box", fillcolor="#f4c28b")
            g.edge(src, f"t_{name}")
            src = f"t_{name}"
        g.node(
            f"a_{name}",
            f"analyse_{name}\n({len(m['figures'])} figures, {len(m['variables'])} numbers)",
            shape="box",
            fillcolor="#9fd3a8",
        )
        g.edge(src, f"a_{name}")
        g.edge(f"a_{name}", "variables")
        if m.get("leaderboard"):
            g.edge(f"m_{name}", "leaderboard", label=str(len(m["leaderboard"])), color="#c06060")
    g.node("variables", "variables", shape="box", fillcolor="#dddddd")
    g.node("claims", "claims", shape="box", fillcolor="#dddddd")
    g.node("leaderboard", "spikeloc leaderboard", shape="box", fillcolor="#f7c6c6")
    g.node(
        "authorship", "authorship\n(author list, CITATION.cff)", shape="box", fillcolor="#dddddd"
    )
    g.node("paper", "typeset -> paper.pdf", shape="doubleoctagon", fillcolor="#ffe680")
    g.edge("variables", "claims")
    g.edge("claims", "paper")
    g.edge("variables", "paper")
    for p in sorted(people):
        g.edge(f"p_{p}", "authorship", color="0.85")
    g.edge("authorship", "paper")
    return g


def figure2_input(cfg, ipd_rad: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(spikes (T, 2N), theta (T, 2N))`` of one sample as ``figure_input-and-architecture``
    drew it: ``np.random.seed(seed)``, then the phase offset, then the Bernoulli uniforms
    (the stimulus function's own draw order)."""
    import torch

    from spikeloc.core import stimuli

    rs = np.random.RandomState(seed)
    phi0 = torch.tensor(rs.rand(), dtype=torch.float64)
    ipd = torch.tensor([ipd_rad], dtype=torch.float64)
    psi = stimuli._phase_delays(cfg, None)
    theta = stimuli._phase_grid(cfg, psi, ipd, phi0)[0].numpy()
    p = stimuli._probability_grid(cfg, psi, ipd, phi0)[0].numpy()
    u = rs.rand(cfg.n_steps, cfg.n_inputs)
    return (u < p).astype(np.uint8), theta
