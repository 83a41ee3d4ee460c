"""`snakemake --lint` finds nothing to complain about in the whole workflow."""

from __future__ import annotations

from workflow_helpers import snakemake


def test_snakemake_lint_is_clean(repo_copy):
    r = snakemake(["--lint"], repo_copy, timeout=300)
    assert r.returncode == 0, f"snakemake --lint reported problems:\n{r.stdout[-6000:]}"
    assert "Lints for" not in r.stdout


def test_dry_run_of_every_target_parses(repo_copy):
    """The default target, `figures` and `paper` resolve at paper scale and quick scale."""
    for args in ([], ["figures", "paper"], ["figures", "--configfile", "config/quick.yaml"]):
        r = snakemake(["-n", *args, "--quiet", "rules"], repo_copy, timeout=300)
        assert r.returncode == 0, f"snakemake -n {' '.join(args)} failed:\n{r.stdout[-4000:]}"
