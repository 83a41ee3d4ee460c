# Numbers and the paper: merge the modules' variables, evaluate the published claims against
# them, and typeset paper/build/<scale>/paper.pdf with Typst.


# results/<scale>/variables.json: every recorded number, keyed <module>.<name>. Fails if a
# module did not record a variable its manifest declares.
rule variables:
    input:
        variables=[PROJECT.variables_path(m) for m in sorted(MODULES)],
        manifests=[MODULES[m].source for m in sorted(MODULES)],
    output:
        f"{RESULTS}/variables.json",
    conda:
        CONDA_ENV
    message:
        "merging the recorded numbers into {output}"
    log:
        f"{LOGS}/variables/merge.log",
    localrule: True
    shell:
        "python -m spikeloc.pipeline.variables merge --analyses workflow/analyses --out {output}"
        " {input.variables} > {log} 2>&1"


# results/<scale>/claims.json: each manifest claim (published value, tolerance) against its
# variable.
rule claims:
    input:
        variables=f"{RESULTS}/variables.json",
        manifests=[MODULES[m].source for m in sorted(MODULES)],
    output:
        f"{RESULTS}/claims.json",
    conda:
        CONDA_ENV
    message:
        "checking the published claims into {output}"
    log:
        f"{LOGS}/claims/claims.log",
    localrule: True
    shell:
        "python -m spikeloc.pipeline.variables claims --variables {input.variables}"
        " --analyses workflow/analyses --out {output} > {log} 2>&1"


# The PDF. Reads the numbers, the claims, the figures (by id) and the author data; a missing
# variable fails the build naming its key (unless paper.strict is false).
rule typeset:
    input:
        sources=PAPER_SOURCES,
        variables=f"{RESULTS}/variables.json",
        claims=f"{RESULTS}/claims.json",
        figures=paper_figures(),
        authorship=AUTHORSHIP_FILES,
        manifests=[MODULES[m].source for m in sorted(MODULES)],
        code="src/spikeloc/pipeline/paper.py",
    output:
        pdf=PROJECT.paper_pdf,
        modules=f"{RESULTS}/paper_modules.json",
    params:
        timestamp=CFG["paper"]["timestamp"] if CFG["paper"]["timestamp"] is not None else "",
        strict="--strict" if CFG["paper"]["strict"] else "--draft",
        label=PROJECT.config_source,
    conda:
        CONDA_ENV
    message:
        "typesetting {output}"
    log:
        f"{LOGS}/typeset/paper.log",
    localrule: True
    shell:
        "python -m spikeloc.pipeline.paper build --out {output.pdf} --modules-out {output.modules}"
        " --variables {input.variables} --claims {input.claims} {params.strict}"
        f" --figures-dir {PROJECT.figures_dir}"
        " --timestamp '{params.timestamp}'"
        " --label {params.label:q} > {log} 2>&1"


# The HTML edition: the same source compiled by Typst's HTML export into one self-contained
# file (figures embedded as PNG, maths as MathML, working cross-references), beside the PDF.
rule typeset_html:
    input:
        sources=PAPER_SOURCES,
        variables=f"{RESULTS}/variables.json",
        claims=f"{RESULTS}/claims.json",
        figures=paper_figures(("png",)),
        authorship=AUTHORSHIP_FILES,
        manifests=[MODULES[m].source for m in sorted(MODULES)],
        code="src/spikeloc/pipeline/paper.py",
    output:
        html=PROJECT.paper_html,
        modules=f"{RESULTS}/paper_modules.html.json",
    params:
        timestamp=CFG["paper"]["timestamp"] if CFG["paper"]["timestamp"] is not None else "",
        strict="--strict" if CFG["paper"]["strict"] else "--draft",
        label=PROJECT.config_source,
    conda:
        CONDA_ENV
    message:
        "typesetting the HTML edition {output.html}"
    log:
        f"{LOGS}/typeset/paper_html.log",
    localrule: True
    shell:
        "python -m spikeloc.pipeline.paper build --target html --out {output.html}"
        " --modules-out {output.modules}"
        " --variables {input.variables} --claims {input.claims} {params.strict}"
        f" --figures-dir {PROJECT.figures_dir}"
        " --timestamp '{params.timestamp}'"
        " --label {params.label:q} > {log} 2>&1"
