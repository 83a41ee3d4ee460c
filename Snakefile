# spikeloc: the reproducible pipeline of the COMOB paper.
#
#   snakemake figures                              every figure and number (paper scale)
#   snakemake paper                                paper/build/paper/paper.pdf
#   snakemake --configfile config/quick.yaml ...   the same DAG at quick scale (minutes, 2 CPUs)
#
# Each scale has its own outputs: results/<scale>/, figures/<scale>/, paper/build/<scale>/.
#
# Run from the repository root; profiles/default/ is picked up automatically.

from pathlib import Path

from snakemake.utils import min_version

# ---------------------------------------------------------------- requirements
min_version("9.0")


# ---------------------------------------------------------------- configuration
configfile: "config/config.yaml"


# ---------------------------------------------------------------- rules
# common.smk first (config, manifests, helpers), then every other rule file of the stage
# directory; a new stage is a new file in workflow/rules/, nothing to register here.
include: "workflow/rules/common.smk"


for _rules in sorted(Path("workflow/rules").glob("*.smk")):
    if _rules.name != "common.smk":

        include: str(_rules)


# ---------------------------------------------------------------- targets
# Every figure (pdf, png, json sidecar) of every module, the merged numbers and the claims.
rule figures:
    input:
        all_figures(),
        f"{RESULTS}/variables.json",
        f"{RESULTS}/claims.json",


# The paper PDF and its HTML edition (and with them everything they show).
rule paper:
    input:
        PROJECT.paper_pdf,
        PROJECT.paper_html,


# Everything: figures, paper and the authorship outputs (author list, CRediT, CITATION.cff).
rule all:
    default_target: True
    input:
        rules.figures.input,
        rules.paper.input,
        rules.authorship.output if hasattr(rules, "authorship") else [],


# ---------------------------------------------------------------- the closing summary
# Figures made, claims held, where the PDF and the logs are (spikeloc.pipeline.summary).
onsuccess:
    from spikeloc.pipeline.summary import summary_lines

    print("\n".join(summary_lines(SCALE, RESULTS, PROJECT.figures_dir, PROJECT.paper_pdf, LOGS)))
