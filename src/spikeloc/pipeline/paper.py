"""Typesetting the paper: ``paper/main.typ`` + generated data -> ``paper/build/<scale>/paper.pdf``
and its HTML edition ``paper.html`` (the same source compiled by Typst's HTML export).

The paper is an output of the workflow (rule ``typeset``), one per scale::

    python -m spikeloc.pipeline.paper build --out paper/build/paper/paper.pdf \
        --modules-out results/paper/paper_modules.json --figures-dir figures/paper \
        --variables results/paper/variables.json --claims results/paper/claims.json

What it does:

1. writes ``results/<scale>/paper_modules.json``: every module manifest (title, owners, figures with
   captions, paper section file, reproduction notes) in paper order, so ``main.typ`` includes
   each module's section without a hand-edited list;
2. compiles ``paper/main.typ`` with the PyPI ``typst`` package, the repository as the Typst
   root, only Typst's bundled fonts (embedded in the PDF; no dependence on installed fonts)
   and a fixed timestamp, so the same inputs give the same bytes;
3. passes the commit, the paths of the data files and the strictness to Typst as
   ``sys.inputs``: in strict mode (the default) a number the text asks for that
   ``results/variables.json`` lacks stops the build with the key's name.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_bytes, atomic_write_json
from spikeloc.pipeline.coverage import PUBLISHED, coverage
from spikeloc.pipeline.discrepancies import DISCREPANCIES, describe
from spikeloc.pipeline.discrepancies import load as load_discrepancies
from spikeloc.pipeline.manifests import load_manifests

__all__ = [
    "PaperError",
    "modules_data",
    "swallowed_punctuation",
    "check_sources",
    "build_timestamp",
    "build",
    "main",
]

#: Marker printed for a missing number in draft (non-strict) builds; tests look for it.
MISSING_MARKER = "MISSING NUMBER"
#: What the paper is compiled to: the PDF, and the HTML edition of the same source.
TARGETS = ("pdf", "html")


class PaperError(SpikelocError):
    """The paper cannot be built (a Typst error, e.g. a missing variable or figure)."""


# An embedded call in markup, ``#name(...)`` or ``#a.b(...)[...]``, directly followed by ``;``:
# Typst reads that ``;`` as the end of the expression and drops it from the text, so
# "#qty("x"); a model" prints "2.61° a model". Statements (#let, #set, ...) are code, not text.
_EMBEDDED_SEMICOLON = re.compile(
    r"#(?!(?:let|set|show|import|include|if|for|while|return)\b)"
    r"[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*"
    r"(?:\((?:[^()\n]|\([^()\n]*\))*\))?(?:\[[^\]\n]*\])*;"
)


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``// comment`` (not a ``//`` inside a string or a URL)."""
    for m in re.finditer(r"(?<!:)//", line):
        if line[: m.start()].count('"') % 2 == 0:
            return line[: m.start()]
    return line


def swallowed_punctuation(text: str) -> list[tuple[int, str]]:
    """``(line, snippet)`` for every embedded value whose following ``;`` Typst would swallow.

    Write ``#qty("k")\\;`` (an escaped semicolon) or rephrase; comments are ignored.
    """
    hits = []
    for number, line in enumerate(text.splitlines(), start=1):
        for m in _EMBEDDED_SEMICOLON.finditer(_strip_comment(line)):
            hits.append((number, m.group(0)))
    return hits


def check_sources(paper_dir: str | Path = "paper") -> None:
    """Refuse Typst sources under ``paper_dir`` whose text would lose a ``;`` (all at once)."""
    problems = []
    for path in sorted(Path(paper_dir).rglob("*.typ")):
        if "build" in path.relative_to(paper_dir).parts:
            continue
        for number, snippet in swallowed_punctuation(path.read_text(encoding="utf-8")):
            problems.append(
                f"{path}:{number}: `{snippet}`: Typst swallows a ';' written straight after an "
                f"embedded value; write `{snippet[:-1]}\\;`"
            )
    if problems:
        raise PaperError("\n".join(problems))


def _figure_width(figure_id: str, figures_dir: Path) -> float:
    """Fraction of the text width a figure takes: its width in inches / 10, at most 1."""
    try:
        sidecar = json.loads((figures_dir / f"{figure_id}.json").read_text(encoding="utf-8"))
        width_in = float(sidecar["size_inches"][0])
    except (OSError, ValueError, KeyError, TypeError):
        return 1.0
    return round(min(1.0, max(0.35, width_in / 10.0)), 3)


def modules_data(
    analyses_dir: str | Path = "workflow/analyses",
    sections_dir: str | Path = "paper/sections",
    figures_dir: str | Path = "figures/paper",
    *,
    root: str | Path = ".",
) -> dict[str, Any]:
    """What the paper needs from the module manifests, in paper order (``order``, then name).

    Directories are relative to ``root``; the paths written are absolute from the Typst root.
    """
    root = Path(root)
    modules = []
    for name, manifest in load_manifests(analyses_dir, root=root).items():
        m = manifest.data
        section = m.get("section")
        section_file = Path(sections_dir) / f"{section}.typ" if section else None
        has_section = section_file is not None and (root / section_file).is_file()
        figures = [
            {
                "id": f["id"],
                "caption": f["caption"],
                "in_paper": bool(f.get("in_paper", True)),
                "path": f"/{Path(figures_dir).as_posix()}/{f['id']}.pdf",
                # the HTML edition shows the PNG the notebook wrote beside the PDF
                "png": f"/{Path(figures_dir).as_posix()}/{f['id']}.png",
                "width": _figure_width(f["id"], root / figures_dir),
                "published": f.get("published_figure"),
            }
            for f in m.get("figures") or []
        ]
        modules.append(
            {
                "name": name,
                "title": m["title"],
                "description": m.get("description", ""),
                "order": int(m.get("order", 100)),
                "part": m.get("part", "main"),
                "owners": list(m.get("owners") or []),
                "original_authors": list(m.get("original_authors") or []),
                "section": section or None,
                "section_file": "/" + section_file.as_posix() if has_section else None,
                "figures": figures,
                "notes": list(m.get("notes") or []),
                "runs": list(m["runs"]),
                "sweeps": list(m["sweeps"]),
                # trainings and simulations per scale (single runs and every sweep's runs)
                "n_runs": {
                    scale: len(manifest.runs[scale])
                    + sum(len(r) for r in manifest.sweeps[scale].values())
                    for scale in manifest.runs
                },
                "notebook": f"workflow/notebooks/{name}.ipynb",
                "n_claims": len(m.get("claims") or []),
            }
        )
    modules.sort(key=lambda d: (d["part"] == "appendix", d["order"], d["name"]))
    number_figures(modules)
    out: dict[str, Any] = {"format": "spikeloc-paper-modules/1", "modules": modules}
    if (root / PUBLISHED).is_file():  # the coverage table of the reproduction report
        out["coverage"] = coverage(analyses_dir, root=root)
    if (root / DISCREPANCIES).is_file():  # prose against code, and what reproduces each
        out["discrepancies"] = [
            {
                **item,
                "text_side": describe(item["sides"]["text"]),
                "code_side": describe(item["sides"]["code"]),
            }
            for item in load_discrepancies(root / DISCREPANCIES)
        ]
    return out


def number_figures(modules: list[dict[str, Any]]) -> None:
    """Give every in-paper figure its number, in document order: the published figure's
    number where it regenerates one (4; 4a and 4b where two regenerate figure 4), else a
    supplementary number S1, S2, ... (``number`` is None for figures not in the paper)."""
    figures = [f for m in modules for f in m["figures"] if f["in_paper"]]
    total: dict[int, int] = {}
    for f in figures:
        if f["published"] is not None:
            total[f["published"]] = total.get(f["published"], 0) + 1
    seen: dict[int, int] = {}
    supplementary = 0
    for m in modules:
        for f in m["figures"]:
            if not f["in_paper"]:
                f["number"] = None
            elif f["published"] is not None:
                p = f["published"]
                seen[p] = seen.get(p, 0) + 1
                f["number"] = str(p) if total[p] == 1 else f"{p}{'abcdefghij'[seen[p] - 1]}"
            else:
                supplementary += 1
                f["number"] = f"S{supplementary}"


def _git(args: Sequence[str], root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_timestamp(explicit: int | None = None, root: str | Path = ".") -> int:
    """``SOURCE_DATE_EPOCH`` > ``explicit`` > commit time of HEAD > 0."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env:
        try:
            return int(env)
        except ValueError:
            raise PaperError(f"SOURCE_DATE_EPOCH: must be an integer, got {env!r}") from None
    if explicit is not None:
        return int(explicit)
    committed = _git(["log", "-1", "--format=%ct"], Path(root))
    return int(committed) if committed and committed.isdigit() else 0


def _commit(root: Path) -> tuple[str, bool | None]:
    from spikeloc.provenance import git_commit

    info = git_commit(str(root.resolve()))
    return str(info.get("commit", "unknown")), info.get("dirty")


def build(
    out: str | Path = "paper/build/paper/paper.pdf",
    *,
    main_file: str | Path = "paper/main.typ",
    modules_out: str | Path = "results/paper/paper_modules.json",
    variables: str | Path = "results/paper/variables.json",
    claims: str | Path = "results/paper/claims.json",
    authorship_dir: str | Path = "results/authorship",
    analyses_dir: str | Path = "workflow/analyses",
    figures_dir: str | Path = "figures/paper",
    root: str | Path = ".",
    strict: bool = True,
    timestamp: int | None = None,
    label: str = "",
    target: str | None = None,
) -> Path:
    """Write ``modules_out`` and compile ``main_file`` into ``out``; returns ``out``.

    ``label`` names the configuration the results come from (printed in the build stamp).
    ``target``: ``pdf`` or ``html`` (the HTML edition: one self-contained file, figures
    embedded as PNG, maths as MathML); None: from the suffix of ``out``.
    """
    import typst

    target = target or ("html" if Path(out).suffix.lower() in (".html", ".htm") else "pdf")
    if target not in TARGETS:
        raise PaperError(f"--target: must be one of {', '.join(TARGETS)}, got {target!r}")
    root = Path(root).resolve()
    check_sources(root / Path(main_file).parent)
    for what, p in (("variables", variables), ("claims", claims)):
        if not (root / p).is_file():  # (root / p is p itself when p is absolute)
            raise PaperError(f"{p}: ({what}): no such file; run `snakemake {p}` first")
    atomic_write_json(
        root / modules_out, modules_data(analyses_dir, figures_dir=figures_dir, root=root)
    )
    commit, dirty = _commit(root)
    ts = build_timestamp(timestamp, root)

    def rooted(p: str | Path) -> str:
        """``p`` as Typst sees it: an absolute path from the root (Typst reads nothing else)."""
        full = (root / p).resolve()
        if not full.is_relative_to(root):
            raise PaperError(f"{p}: must lie inside the repository root {root} (Typst's root)")
        return "/" + full.relative_to(root).as_posix()

    inputs = {
        "modules": rooted(modules_out),
        "variables": rooted(variables),
        "claims": rooted(claims),
        "authorship": rooted(authorship_dir),
        "commit": commit,
        "dirty": "true" if dirty else "false",
        "strict": "true" if strict else "false",
        "missing-marker": MISSING_MARKER,
        "config-label": label,
        "dated": "true" if ts > 0 else "false",
        "target": target,
        # the scale of the results (figures/<scale>): run counts in the text are this scale's
        "scale": Path(figures_dir).name,
    }
    try:
        pdf = typst.compile(
            str(root / main_file),
            root=str(root),
            sys_inputs=inputs,
            timestamp=ts,
            ignore_system_fonts=True,
            font_paths=[],
            format=target,
        )
    except typst.TypstError as exc:
        message = getattr(exc, "message", None) or str(exc)
        hints = getattr(exc, "hints", None) or []
        lines = [f"{main_file}: typst: {message.strip()}"] + [f"  hint: {h}" for h in hints]
        trace = getattr(exc, "trace", None) or []
        lines += [f"  at: {t}" for t in trace[:5]]
        where = getattr(exc, "diagnostic", None)  # Typst's own rendering: file, line, caret
        if where and not trace:
            lines += ["  " + line for line in str(where).splitlines()[1:6]]
        raise PaperError("\n".join(lines)) from None
    out = root / out
    atomic_write_bytes(out, pdf)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m spikeloc.pipeline.paper", description=__doc__.split("\n")[0]
    )
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="typeset paper/main.typ into a PDF")
    b.add_argument("--out", type=Path, default=Path("paper/build/paper/paper.pdf"))
    b.add_argument("--main", type=Path, default=Path("paper/main.typ"))
    b.add_argument("--modules-out", type=Path, default=Path("results/paper/paper_modules.json"))
    b.add_argument("--variables", type=Path, default=Path("results/paper/variables.json"))
    b.add_argument("--claims", type=Path, default=Path("results/paper/claims.json"))
    b.add_argument("--authorship", type=Path, default=Path("results/authorship"))
    b.add_argument("--analyses", type=Path, default=Path("workflow/analyses"))
    b.add_argument("--figures-dir", type=Path, default=Path("figures/paper"))
    mode = b.add_mutually_exclusive_group()
    mode.add_argument(
        "--strict",
        dest="strict",
        action="store_true",
        default=True,
        help="a missing number fails the build (default)",
    )
    mode.add_argument(
        "--draft",
        dest="strict",
        action="store_false",
        help=f"print missing numbers as '{MISSING_MARKER}' instead of failing",
    )
    b.add_argument("--label", default="", help="configuration the results come from (stamped)")
    b.add_argument(
        "--target",
        choices=TARGETS,
        default=None,
        help="pdf or html (default: from the suffix of --out)",
    )
    b.add_argument(
        "--timestamp", default="", help="unix time for the PDF date (default: commit time of HEAD)"
    )
    m = sub.add_parser("modules", help="only write the modules list the paper reads")
    m.add_argument("--out", type=Path, default=Path("results/paper/paper_modules.json"))
    m.add_argument("--analyses", type=Path, default=Path("workflow/analyses"))
    m.add_argument("--figures-dir", type=Path, default=Path("figures/paper"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "modules":
            atomic_write_json(args.out, modules_data(args.analyses, figures_dir=args.figures_dir))
            print(f"wrote {args.out}")
            return 0
        ts_text = str(args.timestamp).strip()
        if ts_text and not ts_text.isdigit():
            raise PaperError(f"--timestamp: must be a unix time in seconds, got {ts_text!r}")
        out = build(
            args.out,
            main_file=args.main,
            modules_out=args.modules_out,
            variables=args.variables,
            claims=args.claims,
            authorship_dir=args.authorship,
            analyses_dir=args.analyses,
            figures_dir=args.figures_dir,
            strict=args.strict,
            timestamp=int(ts_text) if ts_text else None,
            label=args.label,
            target=args.target,
        )
    except SpikelocError as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
