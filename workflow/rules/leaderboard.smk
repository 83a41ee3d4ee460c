# The leaderboard (spikeloc leaderboard): every localiser that a module's manifest enters under
# `leaderboard:`, evaluated on the common protocol of spikeloc.analysis.leaderboard at this
# scale, after the runs it needs are trained. Target: `snakemake leaderboard`.


rule leaderboard_table:
    input:
        # the chunks of every run or sweep an entry evaluates
        runs=[
            r
            for m in sorted(MODULES)
            for g in sorted(
                {"runs" if e.get("run") else e.get("sweep") for e in MODULES[m]["leaderboard"]}
                - {None}
            )
            for r in chunk_results(m, g)
        ],
        manifests=[MODULES[m].source for m in sorted(MODULES)],
        library=NOTEBOOK_LIBRARY_FILES,
    output:
        table=f"{RESULTS}/leaderboard.json",
        text=f"{RESULTS}/leaderboard.txt",
    params:
        scale=SCALE,
    log:
        f"{LOGS}/leaderboard/leaderboard.log",
    message:
        "leaderboard: every registered localiser on the common protocol"
    conda:
        CONDA_ENV
    shell:
        "spikeloc leaderboard --scale {params.scale} --out {output.table} > {output.text} 2> {log}"


# The paper's figure of it: error against cost, one point per ranked entry.
rule leaderboard_figure:
    input:
        table=f"{RESULTS}/leaderboard.json",
        code=["src/spikeloc/analysis/leaderboard_plots.py", "src/spikeloc/pipeline/leaderboard.py"],
    output:
        [f"{PROJECT.figures_dir}/leaderboard.{ext}" for ext in ("pdf", "png", "json")],
    params:
        out_dir=lambda w, output: str(Path(output[0]).parent),
    log:
        f"{LOGS}/leaderboard/figure.log",
    message:
        "leaderboard: the figure of error against cost"
    conda:
        CONDA_ENV
    localrule: True
    shell:
        "MPLBACKEND=Agg python -m spikeloc.pipeline.leaderboard figure --table {input.table}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule leaderboard:
    input:
        rules.leaderboard_table.output,
        rules.leaderboard_figure.output,
