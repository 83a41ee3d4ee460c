# Authorship: contributors/<handle>.yaml + workflow/analyses/<module>.yaml
#   -> results/authorship/{authors.json, credit.json, credit.md, contributions.json}, CITATION.cff
#
# Both rules call the spikeloc CLI (src/spikeloc/pipeline/authorship.py); no logic lives here.
# common.smk also calls spikeloc.pipeline.authorship.check_or_raise("contributors", "workflow/analyses")
# at parse time, so a bad contributor file stops the workflow before any job runs; the
# contributors_check rule keeps the same check in the DAG (and its log) for `snakemake -n`.

from pathlib import Path as _AuthorshipPath

# Every contributor file and module manifest: adding or editing one re-runs the authorship rules.
AUTHORSHIP_CONTRIBUTOR_FILES = sorted(
    str(p) for p in _AuthorshipPath("contributors").glob("*.yaml")
)
AUTHORSHIP_MANIFEST_FILES = sorted(
    str(p) for p in _AuthorshipPath("workflow/analyses").glob("*.yaml")
)


rule contributors_check:
    input:
        contributors=AUTHORSHIP_CONTRIBUTOR_FILES,
        manifests=AUTHORSHIP_MANIFEST_FILES,
        schema="workflow/schemas/contributor.schema.json",
    output:
        # Holds the "N contributors, M modules: OK" line; written only when the check passes.
        ok="results/authorship/check.ok",
    message:
        "checking the contributor files"
    log:
        "logs/contributors_check/check.log",
    conda:
        CONDA_ENV
    localrule: True
    shell:
        "spikeloc contributors check --contributors contributors --analyses workflow/analyses"
        " > {log} 2>&1 && cp {log} {output.ok}"


rule authorship:
    input:
        ok=rules.contributors_check.output.ok,
        contributors=AUTHORSHIP_CONTRIBUTOR_FILES,
        manifests=AUTHORSHIP_MANIFEST_FILES,
        seed="contributors/order-seed.txt",
    output:
        authors="results/authorship/authors.json",
        credit="results/authorship/credit.json",
        credit_md="results/authorship/credit.md",
        contributions="results/authorship/contributions.json",
        citation="CITATION.cff",
    message:
        "building the author list and CITATION.cff"
    log:
        "logs/authorship/build.log",
    conda:
        CONDA_ENV
    localrule: True
    params:
        out=lambda wildcards, output: str(_AuthorshipPath(output.authors).parent),
    shell:
        "spikeloc contributors build --contributors contributors --analyses workflow/analyses"
        " --seed-file {input.seed} --out {params.out} --citation {output.citation}"
        " > {log} 2>&1"
