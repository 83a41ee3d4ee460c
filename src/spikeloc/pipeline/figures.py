"""Saving figures: one house style, semantic ids, deterministic bytes, embedded provenance.

Every figure of the paper is written by :func:`save_figure` from an analysis notebook::

    fig = plots.confusion(conf, 12)
    save_figure(fig, "basic_model_confusion", module="basic_model",
                notebook="workflow/notebooks/basic_model.ipynb", config_hash=h)

which writes ``figures/basic_model_confusion.pdf`` (vector, fonts embedded as TrueType),
``.png`` (raster) and ``.json`` (a provenance sidecar). The same figure data give the same bytes
on every run: no timestamps are written (``SOURCE_DATE_EPOCH`` is honoured if set), the producer
strings are fixed and the provenance (git commit of the project, module, notebook, config hash)
goes into the PDF info dictionary and the PNG text chunks.

Figure ids are semantic, lowercase snake case (``basic_model_confusion``), never numbers: the
paper refers to figures by id and numbers them itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib as mpl

from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_bytes, atomic_write_text

__all__ = [
    "FIGURE_ID_RE",
    "HOUSE_STYLE",
    "FigureIdError",
    "validate_figure_id",
    "use_house_style",
    "house_style",
    "figure_provenance",
    "save_figure",
    "module_saver",
]

#: A figure id: lowercase snake case, starting with a letter.
FIGURE_ID_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
# ids that are only a number in disguise ("fig03", "figure_4", "f2b")
_NUMBERED_RE = re.compile(r"^(?:fig|figure|f)_?[0-9]+[a-z]?$")

#: Matplotlib settings every paper figure uses (fonts bundled with matplotlib, so the output does
#: not depend on the fonts installed on the machine).
HOUSE_STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 8.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 7.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "image.cmap": "viridis",
    "figure.dpi": 100.0,
    "savefig.dpi": 200.0,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
    "pdf.fonttype": 42,  # embed TrueType fonts (editable text, no Type 3)
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "spikeloc",  # deterministic SVG ids
    "path.simplify": True,
}

_PRODUCER = "spikeloc.pipeline.figures (matplotlib {mpl})"


class FigureIdError(SpikelocError, ValueError):
    """A figure id that is not lowercase snake case, or is only a number."""


def validate_figure_id(figure_id: str) -> str:
    """Return ``figure_id`` if it is a valid semantic id, else raise :class:`FigureIdError`."""
    if not isinstance(figure_id, str) or not FIGURE_ID_RE.match(figure_id):
        raise FigureIdError(
            f"figure id {figure_id!r}: must be lowercase snake case starting with a letter "
            "(e.g. 'basic_model_confusion')"
        )
    if _NUMBERED_RE.match(figure_id):
        raise FigureIdError(
            f"figure id {figure_id!r}: must say what the figure shows, not its number "
            "(the paper numbers figures itself)"
        )
    return figure_id


def use_house_style() -> None:
    """Apply :data:`HOUSE_STYLE` to matplotlib's global settings (call once per notebook)."""
    mpl.rcParams.update(HOUSE_STYLE)


@contextlib.contextmanager
def house_style() -> Iterator[None]:
    """Context manager form of :func:`use_house_style` (restores the old settings on exit)."""
    with mpl.rc_context(HOUSE_STYLE):
        yield


def _source_date() -> datetime | None:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return None
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except ValueError:
        raise SpikelocError(f"SOURCE_DATE_EPOCH: must be an integer, got {epoch!r}") from None


def _project_commit(root: Path) -> str:
    from spikeloc.provenance import git_commit

    info = git_commit(str(root.resolve()))
    commit = str(info.get("commit", "unknown"))
    return commit + ("-dirty" if info.get("dirty") else "")


def figure_provenance(
    figure_id: str,
    *,
    module: str | None = None,
    notebook: str | None = None,
    config_hash: str | None = None,
    commit: str | None = None,
    root: str | Path = ".",
) -> dict[str, str]:
    """The provenance written into a figure: id, git commit, module, notebook, config hash."""
    return {
        "figure_id": figure_id,
        "commit": commit if commit is not None else _project_commit(Path(root)),
        "module": module or "",
        "notebook": notebook or "",
        "config_hash": config_hash or "",
    }


def _pdf_metadata(prov: Mapping[str, str], caption: str | None) -> dict[str, Any]:
    keywords = "; ".join(f"{k}={v}" for k, v in prov.items())
    return {
        "Title": prov["figure_id"],
        "Subject": caption or "",
        "Keywords": keywords,
        "Creator": f"spikeloc module {prov['module']}" if prov["module"] else "spikeloc",
        "Producer": _PRODUCER.format(mpl=mpl.__version__),
        "CreationDate": _source_date(),  # None removes the entry: no wall-clock date
        "ModDate": None,
    }


def _png_metadata(prov: Mapping[str, str], caption: str | None) -> dict[str, str]:
    meta = {
        "Title": prov["figure_id"],
        "Software": _PRODUCER.format(mpl=mpl.__version__),
        "Source": json.dumps(dict(prov), sort_keys=True),
    }
    if caption:
        meta["Description"] = caption
    for k, v in prov.items():
        meta[f"spikeloc:{k}"] = v
    return meta


def _render(fig: Any, fmt: str, metadata: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    with mpl.rc_context(HOUSE_STYLE):
        fig.savefig(buf, format=fmt, metadata=dict(metadata))
    return buf.getvalue()


def save_figure(
    fig: Any,
    figure_id: str,
    *,
    module: str | None = None,
    notebook: str | None = None,
    config_hash: str | None = None,
    out_dir: str | Path = "figures",
    caption: str | None = None,
    commit: str | None = None,
    close: bool = True,
) -> dict[str, Path]:
    """Write ``<out_dir>/<figure_id>.pdf``, ``.png`` and ``.json``; return their paths.

    ``commit`` defaults to the git commit of the current directory's repository (``-dirty``
    appended when tracked files have uncommitted changes; ``SPIKELOC_GIT_COMMIT`` overrides).
    Files are written atomically; identical figure data and provenance give identical bytes.
    """
    validate_figure_id(figure_id)
    out = Path(out_dir)
    prov = figure_provenance(
        figure_id, module=module, notebook=notebook, config_hash=config_hash, commit=commit
    )
    pdf = _render(fig, "pdf", _pdf_metadata(prov, caption))
    png = _render(fig, "png", _png_metadata(prov, caption))
    paths = {"pdf": out / f"{figure_id}.pdf", "png": out / f"{figure_id}.png"}
    atomic_write_bytes(paths["pdf"], pdf)
    atomic_write_bytes(paths["png"], png)
    width, height = (float(x) for x in fig.get_size_inches())
    sidecar = {
        **prov,
        "caption": caption or "",
        "size_inches": [round(width, 4), round(height, 4)],
        "files": {
            "pdf": {"path": paths["pdf"].name, "sha256": hashlib.sha256(pdf).hexdigest()},
            "png": {"path": paths["png"].name, "sha256": hashlib.sha256(png).hexdigest()},
        },
        "matplotlib": mpl.__version__,
    }
    paths["json"] = out / f"{figure_id}.json"
    atomic_write_text(paths["json"], json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return paths


def module_saver(
    module: str,
    *,
    notebook: str | None = None,
    config_hash: str | None = None,
    out_dir: str | Path = "figures",
    analyses_dir: str | Path = "workflow/analyses",
):
    """A ``save(fig, figure_id)`` function for the notebook of ``module``.

    It refuses ids the module's manifest (``<analyses_dir>/<module>.yaml``) does not declare,
    takes the caption from there and fills in the module's provenance, so a notebook's
    figures and its manifest cannot drift apart.
    """
    from spikeloc.pipeline.manifests import load_manifest

    manifest = load_manifest(module, analyses_dir)
    path = manifest.source
    captions = {f["id"]: f["caption"] for f in manifest["figures"]}

    def save(fig: Any, figure_id: str, **kwargs: Any) -> dict[str, Path]:
        if figure_id not in captions:
            raise FigureIdError(
                f"{path}: figures: {figure_id!r} is not declared (declared: "
                f"{', '.join(sorted(captions)) or 'none'}); add it with a caption first"
            )
        kwargs.setdefault("caption", captions[figure_id])
        return save_figure(
            fig,
            figure_id,
            module=module,
            notebook=notebook,
            config_hash=config_hash,
            out_dir=out_dir,
            **kwargs,
        )

    save.declared = tuple(captions)  # type: ignore[attr-defined]
    return save
