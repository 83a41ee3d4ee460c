"""The paper build: numbers by key, figures by id, author data, a fixed timestamp.

These tests typeset paper/main.typ against synthetic results (a small figure for every figure
id the manifests declare, a value for every declared variable, fixture contributors), so they
need no training run and take seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from pypdf import PdfReader  # noqa: E402

from spikeloc.pipeline import authorship, paper, variables  # noqa: E402
from spikeloc.pipeline import figures as plotting  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def manifests() -> dict[str, dict]:
    return {
        p.stem: yaml.safe_load(p.read_text())
        for p in sorted((REPO / "workflow" / "analyses").glob("*.yaml"))
    }


def tiny_figure(label: str) -> Figure:
    fig = Figure(figsize=(4, 2.5))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 0], "k-")
    ax.set_title(label)
    return fig


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A repository root with the paper sources and synthetic results for every module."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(REPO / "paper", root / "paper", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(REPO / "workflow" / "analyses", root / "workflow" / "analyses")
    shutil.copytree(REPO / "docs", root / "docs")  # the coverage and discrepancy tables
    module_files = []
    for name, m in manifests().items():
        for f in m.get("figures") or []:
            plotting.save_figure(
                tiny_figure(f["id"]),
                f["id"],
                module=name,
                out_dir=root / "figures" / "paper",
                commit="x",
            )
        path = root / "results" / "paper" / "variables" / f"{name}.json"
        variables.reset(name, path=path)
        for v in m.get("variables") or []:
            variables.record(v["name"], 1.5, ".1f", module=name, path=path, unit=v.get("unit"))
        module_files.append(path)
    variables.merge(
        module_files, root / "results/paper/variables.json", analyses_dir=root / "workflow/analyses"
    )
    variables.evaluate_claims(
        root / "results/paper/variables.json",
        root / "workflow/analyses",
        root / "results/paper/claims.json",
    )
    authorship.build(
        FIXTURES / "contributors", FIXTURES / "authorship" / "analyses", root / "results/authorship"
    )
    return root


def build(site: Path, out: str, **kwargs) -> Path:
    return paper.build(out, root=site, timestamp=1700000000, **kwargs)


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def embedded_figures(path: Path) -> int:
    """Form XObjects (embedded PDF figures) placed on the pages."""
    seen = set()
    for page in PdfReader(path).pages:
        xobjects = page.get("/Resources", {}).get("/XObject", {})
        for ref in xobjects.values():
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Form":
                seen.add(getattr(ref, "idnum", id(obj)))
    return len(seen)


def test_paper_builds_with_every_module_and_figure(site, monkeypatch):
    monkeypatch.setenv("SPIKELOC_GIT_COMMIT", "abcdef1234567890")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    from spikeloc import provenance

    provenance.git_commit.cache_clear()
    out = build(site, "paper/build/paper.pdf", label="config/config.yaml")
    provenance.git_commit.cache_clear()
    text = pdf_text(out)
    assert "abcdef1234567890" in text  # the commit stamp
    assert "Typeset on 2023-11-14" in text and "configuration config/config.yaml" in text
    assert paper.MISSING_MARKER not in text
    for m in manifests().values():
        assert m["title"].split()[0] in text
    n_in_paper = sum(
        1 for m in manifests().values() for f in m["figures"] if f.get("in_paper", True)
    )
    assert embedded_figures(out) >= n_in_paper
    assert "Reproduction report" in text and "CRediT" in text
    assert "Ada" in text  # the fixture authors in the author block
    modules = (site / "results/paper/paper_modules.json").read_text()
    assert '"section_file": "/paper/sections/basic_model.typ"' in modules


def test_same_inputs_give_the_same_pdf(site, monkeypatch):
    monkeypatch.setenv("SPIKELOC_GIT_COMMIT", "abcdef1234567890")
    a = build(site, "paper/build/a.pdf")
    b = build(site, "paper/build/b.pdf")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert PdfReader(a).metadata["/CreationDate"].startswith("D:20231114")


def test_missing_variable_fails_naming_the_key(site):
    full = variables.load(site / "results/paper/variables.json")
    key = "basic_model.published_accuracy_pct"
    assert key in full
    reduced = site / "results" / "variables-reduced.json"
    doc = {
        "format": "spikeloc-variables/1+merged",
        "variables": {k: v for k, v in full.items() if k != key},
    }
    reduced.write_text(json.dumps(doc))
    with pytest.raises(paper.PaperError, match=f"missing variable '{key}'"):
        build(site, "paper/build/strict.pdf", variables=reduced)
    assert not (site / "paper/build/strict.pdf").exists()
    draft = build(site, "paper/build/draft.pdf", variables=reduced, strict=False)
    assert paper.MISSING_MARKER in pdf_text(draft)


def test_unknown_figure_id_fails(site):
    section = site / "paper/sections/tutorial_surrogate.typ"
    original = section.read_text()
    try:
        section.write_text(original + '\n#fig("no_such_figure")\n')
        with pytest.raises(paper.PaperError, match="unknown figure id 'no_such_figure'"):
            build(site, "paper/build/bad.pdf")
    finally:
        section.write_text(original)


def test_modules_are_ordered_and_notes_collected(site):
    data = paper.modules_data(root=site)
    names = [m["name"] for m in data["modules"]]
    # the main text's modules by order, then the appendices by order
    keys = [(m["part"] == "appendix", m["order"]) for m in data["modules"]]
    assert keys == sorted(keys)
    assert set(names) == set(manifests())
    basic = next(m for m in data["modules"] if m["name"] == "basic_model")
    assert any("Parameter count" in n["title"] for n in basic["notes"])
    assert all(0.35 <= f["width"] <= 1 for f in basic["figures"])


def test_inputs_outside_the_root_are_refused(site, tmp_path):
    outside = tmp_path / "variables.json"
    shutil.copy(site / "results/paper/variables.json", outside)
    with pytest.raises(paper.PaperError, match="must lie inside the repository root"):
        build(site, "paper/build/x.pdf", variables=outside)


def test_cli_reports_missing_inputs(tmp_path, capsys):
    rc = paper.main(
        ["build", "--out", str(tmp_path / "p.pdf"), "--variables", str(tmp_path / "nope.json")]
    )
    assert rc == 2
    assert "nope.json: (variables): no such file" in capsys.readouterr().err


def test_figures_carry_the_published_numbers():
    """Regenerated figures are numbered as the published paper's (4a/4b where two regenerate
    one), figures it does not have are supplementary S1, S2, ... in document order."""
    modules = paper.modules_data(figures_dir="figures/paper")["modules"]
    figs = [f for m in modules for f in m["figures"] if f["in_paper"]]
    numbers = {f["id"]: f["number"] for f in figs}
    assert numbers["workflow_graph"] == "1" and numbers["architecture"] == "2"
    assert numbers["basic_model_confusion"] == "4a"
    assert numbers["basic_model_confusion_published"] == "4b"
    supplementary = [f["number"] for f in figs if f["published"] is None]
    leaderboard = paper.modules_data(figures_dir="figures/paper")["leaderboard_figure_number"]
    # S1, S2, ... in document order, one number kept for the leaderboard's figure, which
    # follows the main text's modules
    assert sorted([*supplementary, leaderboard], key=lambda n: int(n[1:])) == [
        f"S{i}" for i in range(1, len(supplementary) + 2)
    ]
    main_text = [
        f["number"]
        for m in modules
        if m["part"] == "main"
        for f in m["figures"]
        if f["in_paper"] and f["published"] is None
    ]
    assert int(leaderboard[1:]) == int(main_text[-1][1:]) + 1
    assert all(
        f["number"] == str(f["published"]) or f["number"][:-1] == str(f["published"])
        for f in figs
        if f["published"] is not None
    )
    appendix = [m["name"] for m in modules if m["part"] == "appendix"]
    assert appendix[:2] == ["basic_model", "tca"] and appendix[-1] == "brainstem"


def test_the_report_lists_every_claim_and_every_discrepancy(site):
    out = build(site, "paper/build/report.pdf")
    text = " ".join(pdf_text(out).split())
    assert "Every published claim" in text and "Humans detect ITDs" in text
    assert "not computable: a psychophysical finding" in text
    assert "Tensortools restarts" in text and "fit_shifted(restarts='best')" in text
    assert "Module map" in text and "Significance statement" in text
    assert "Regenerates published figure 4." in text and "Supplementary figure S1" in text


def test_the_html_edition_shows_every_figure_in_a_browser(site):
    from spikeloc.pipeline import browser

    out = build(site, "paper/build/paper.html")
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<h1>" in html
    if browser.find_browser() is None:
        pytest.skip("no Chromium (scripts/bootstrap installs it)")
    page = browser.inspect_page(out, marker=paper.MISSING_MARKER)
    in_paper = [
        f["id"] for m in manifests().values() for f in m["figures"] if f.get("in_paper", True)
    ]
    assert page["broken_images"] == [] and page["dangling_links"] == [], page
    assert page["figures_without_image"] == [] and page["missing_markers"] == 0
    assert sorted(page["figure_ids"]) == sorted(in_paper)
    assert page["figures_unreferenced"] == []  # the text points to every figure it shows
    assert page["title"].startswith("Spiking neural network models")


def _leaderboard_table(site: Path, rows: list[dict]) -> Path:
    """A leaderboard table as `spikeloc leaderboard --out` writes it, and its figure."""
    from spikeloc.analysis import leaderboard as lb
    from spikeloc.analysis.leaderboard_plots import error_vs_cost
    from spikeloc.pipeline import leaderboard as reg

    table = site / "results/paper/leaderboard.json"
    table.write_text(
        json.dumps(
            {
                "scale": "paper",
                "protocol": lb.PROTOCOLS["paper"].describe(),
                "protocol_spec": lb.PROTOCOLS["paper"].spec(),
                "n_entries": len(rows),
                "n_evaluated": sum(r["status"] == "ok" for r in rows),
                "rows": reg.rank(rows),
            }
        )
    )
    plotting.save_figure(error_vs_cost(rows), "leaderboard", out_dir=site / "figures/paper")
    return table


def _row(entry, title, mae, **kw):
    return {
        "entry": entry, "module": entry.split(".")[0], "title": title, "status": "ok",
        "mae_deg": mae, "mae_sd_deg": 1.25, "accuracy_pct": 50.0, "n_parameters": 6360,
        "spikes_per_decision": 102.4, "training_time_s": 147.0, "stimulus": "a tone",
        "n_models": 1, **kw,
    }  # fmt: skip


def test_leaderboard_section_ranks_every_entry(site):
    rows = [
        _row("m_b.worse", "Worse localiser", 20.0),
        _row("m_a.better", "Better localiser", 5.0, n_models=3),
        {"entry": "m_c.pending", "module": "m_c", "title": "Pending localiser",
         "status": "not trained: snakemake results/paper/runs/m_c/x/model.pt"},
    ]  # fmt: skip
    _leaderboard_table(site, rows)
    out = build(
        site,
        "paper/build/leaderboard.pdf",
        leaderboard="results/paper/leaderboard.json",
        leaderboard_figure="figures/paper/leaderboard.pdf",
    )
    text = pdf_text(out)
    assert "The leaderboard" in text
    # ranked: the better one first, the pending one listed last with its reason
    i_better, i_worse = text.index("Better localiser"), text.rindex("Worse localiser")
    assert i_better < i_worse < text.rindex("Pending localiser")
    assert "not trained" in text and re.search(r"\(3\s+models\)", text)
    assert "5.0 ± 1.2" in text or "5.0 ± 1.3" in text  # the row's numbers, as data
    # the protocol is stated from the table's data: sizes and seeds
    assert "512" in text and "9001, 9002, 9003, 9004" in text and "2 of 3" in text
    without = pdf_text(build(site, "paper/build/no-leaderboard.pdf"))
    assert "The leaderboard" not in without
    assert embedded_figures(out) == embedded_figures(site / "paper/build/no-leaderboard.pdf") + 1


def test_leaderboard_section_with_no_entry_evaluated(site):
    rows = [{"entry": "m.x", "module": "m", "title": "Untrained", "status": "not trained: x"}]
    _leaderboard_table(site, rows)
    text = pdf_text(
        build(site, "paper/build/lb-empty.pdf", leaderboard="results/paper/leaderboard.json")
    )
    assert "0 of 1" in text and "Untrained" in text


def test_leaderboard_section_in_the_html_edition(site):
    _leaderboard_table(site, [_row("m_a.better", "Better localiser", 5.0)])
    out = build(
        site,
        "paper/build/leaderboard.html",
        leaderboard="results/paper/leaderboard.json",
        leaderboard_figure="figures/paper/leaderboard.png",
    )
    html = out.read_text()
    assert "Better localiser" in html and 'id="tab-leaderboard"' in html
    assert 'id="fig-leaderboard"' in html and "<img" in html.split('id="fig-leaderboard"')[1][:400]
