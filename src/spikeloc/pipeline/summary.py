"""The closing summary of a workflow run: what was made and where it is.

The Snakefile's ``onsuccess`` handler prints it, so a run ends by saying how many figures
exist, how many published claims held, and where the PDF is, instead of leaving that in the
log files::

    done (scale quick): 21 figures in figures/quick/ (pdf, png, json)
    claims: 9 of 12 within tolerance (results/quick/claims.json; the paper's reproduction report)
    paper: paper/build/quick/paper.pdf
    logs: logs/quick/ (one per job)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["summary_lines"]


def _claims(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def summary_lines(
    scale: str,
    results: str | Path,
    figures_dir: str | Path,
    paper_pdf: str | Path,
    logs: str | Path,
) -> list[str]:
    """The summary as lines, from what exists on disk now (nothing is recomputed)."""
    results, figures_dir, paper_pdf = Path(results), Path(figures_dir), Path(paper_pdf)
    n_figures = len(list(figures_dir.glob("*.pdf"))) if figures_dir.is_dir() else 0
    lines = [f"done (scale {scale}): {n_figures} figures in {figures_dir}/ (pdf, png, json)"]
    claims = _claims(results / "claims.json")
    if claims is not None:
        n, ok = claims.get("n_claims", 0), claims.get("n_within", 0)
        failing = [
            f"{c.get('module')}.{c.get('name')}"
            for c in claims.get("claims", [])
            if not c.get("within", c.get("held", True))
        ]
        line = f"claims: {ok} of {n} hold ({results / 'claims.json'})"
        if failing:
            shown = ", ".join(failing[:6]) + (", ..." if len(failing) > 6 else "")
            line += f"; not reproduced: {shown}"
        lines.append(line)
    if paper_pdf.is_file():
        lines.append(f"paper: {paper_pdf}")
    lines.append(f"logs: {logs}/ (one per job)")
    return lines
