"""The committed CITATION.cff is what the contributor files generate (never stale)."""

from __future__ import annotations

from spikeloc.pipeline.authorship import build


def test_committed_citation_matches_contributor_files(repo_root, tmp_path):
    cff = tmp_path / "CITATION.cff"
    build(
        repo_root / "contributors",
        repo_root / "workflow" / "analyses",
        tmp_path / "authorship",
        citation=cff,
    )
    committed = (repo_root / "CITATION.cff").read_text()
    assert committed == cff.read_text(), (
        "CITATION.cff is stale: run `snakemake authorship` (or `spikeloc contributors build "
        "--citation CITATION.cff`) and commit it"
    )
