"""save_figure: semantic ids, house style, byte-identical output, provenance in the files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from spikeloc.errors import SpikelocError  # noqa: E402
from spikeloc.pipeline import figures as plotting  # noqa: E402


def make_figure(seed: int = 0) -> Figure:
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.imshow(rng.random((12, 12)), cmap="viridis")
    ax.plot(np.arange(12), rng.random(12) * 11, "k-")
    ax.set_title("Confusion (°, µs, ±)")
    ax.set_xlabel("True IPD (deg)")
    return fig


def digests(paths: dict[str, Path]) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items()}


PROV = dict(
    module="basic_model",
    notebook="workflow/notebooks/basic_model.ipynb",
    config_hash="0123456789ab",
    commit="c0ffee",
)


def test_same_figure_gives_identical_bytes(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = plotting.save_figure(make_figure(), "demo_confusion", out_dir=tmp_path / "a", **PROV)
    second = plotting.save_figure(make_figure(), "demo_confusion", out_dir=tmp_path / "b", **PROV)
    assert set(first) == {"pdf", "png", "json"}
    assert digests(first) == digests(second)
    # and different data give different bytes (the comparison above is not vacuous)
    third = plotting.save_figure(make_figure(1), "demo_confusion", out_dir=tmp_path / "c", **PROV)
    assert digests(third)["pdf"] != digests(first)["pdf"]


def test_house_style_is_applied_whatever_the_global_rc(tmp_path):
    a = plotting.save_figure(make_figure(), "demo_style", out_dir=tmp_path / "a", **PROV)
    with matplotlib.rc_context({"savefig.dpi": 37, "pdf.fonttype": 3}):
        b = plotting.save_figure(make_figure(), "demo_style", out_dir=tmp_path / "b", **PROV)
    assert digests(a) == digests(b)


def test_pdf_metadata_and_fonts(tmp_path, monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    paths = plotting.save_figure(
        make_figure(), "demo_confusion", out_dir=tmp_path, caption="A caption.", **PROV
    )
    reader = PdfReader(paths["pdf"])
    meta = reader.metadata
    assert meta["/Title"] == "demo_confusion"
    assert meta["/Subject"] == "A caption."
    for text in (
        "commit=c0ffee",
        "module=basic_model",
        "config_hash=0123456789ab",
        "notebook=workflow/notebooks/basic_model.ipynb",
    ):
        assert text in meta["/Keywords"]
    assert "/CreationDate" not in meta and "/ModDate" not in meta  # no wall-clock date
    fonts = reader.pages[0]["/Resources"]["/Font"]
    for ref in fonts.values():
        font = ref.get_object()
        assert font["/Subtype"] != "/Type3"  # TrueType, embedded
    raw = paths["pdf"].read_bytes()
    assert b"/FontFile2" in raw


def test_source_date_epoch_sets_a_fixed_date(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = plotting.save_figure(make_figure(), "demo_dated", out_dir=tmp_path / "a", **PROV)
    b = plotting.save_figure(make_figure(), "demo_dated", out_dir=tmp_path / "b", **PROV)
    assert digests(a) == digests(b)
    assert PdfReader(a["pdf"]).metadata["/CreationDate"].startswith("D:20231114")


def test_png_text_chunks_and_sidecar(tmp_path):
    paths = plotting.save_figure(make_figure(), "demo_confusion", out_dir=tmp_path, **PROV)
    text = Image.open(paths["png"]).text
    assert text["spikeloc:commit"] == "c0ffee"
    assert text["spikeloc:module"] == "basic_model"
    assert json.loads(text["Source"])["config_hash"] == "0123456789ab"
    sidecar = json.loads(paths["json"].read_text())
    assert sidecar["figure_id"] == "demo_confusion"
    assert sidecar["commit"] == "c0ffee"
    assert sidecar["size_inches"] == [4.0, 3.0]
    for fmt in ("pdf", "png"):
        assert (
            sidecar["files"][fmt]["sha256"] == hashlib.sha256(paths[fmt].read_bytes()).hexdigest()
        )


def test_commit_defaults_to_the_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKELOC_GIT_COMMIT", "feedbeef")
    from spikeloc import provenance

    provenance.git_commit.cache_clear()
    paths = plotting.save_figure(make_figure(), "demo_commit", out_dir=tmp_path, module="m")
    provenance.git_commit.cache_clear()
    assert json.loads(paths["json"].read_text())["commit"] == "feedbeef"


@pytest.mark.parametrize(
    "bad", ["Fig1", "fig03", "figure_4", "f2b", "basic-model", "3d_plot", "", "a__b", "x_"]
)
def test_bad_figure_ids_are_refused(tmp_path, bad):
    with pytest.raises(plotting.FigureIdError):
        plotting.save_figure(make_figure(), bad, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("good", ["basic_model_confusion", "tca_rank6", "itd2_sweep"])
def test_good_figure_ids_pass(good):
    assert plotting.validate_figure_id(good) == good


def test_module_saver_checks_the_manifest(tmp_path):
    analyses = tmp_path / "workflow" / "analyses"
    analyses.mkdir(parents=True)
    (analyses / "demo.yaml").write_text(
        "title: Demo\nowners: [someone]\nfigures:\n  - {id: demo_one, caption: The first one.}\n"
    )
    save = plotting.module_saver(
        "demo", notebook="nb.ipynb", out_dir=tmp_path / "figures", analyses_dir=analyses
    )
    paths = save(make_figure(), "demo_one")
    assert json.loads(paths["json"].read_text())["caption"] == "The first one."
    with pytest.raises(SpikelocError, match="'demo_two' is not declared"):
        save(make_figure(), "demo_two")
