# The leaderboard (spikeloc leaderboard): every localiser that a module's manifest enters under
# `leaderboard:`, evaluated on the common protocol of spikeloc.analysis.leaderboard at this
# scale, after the runs it needs are trained. Target: `snakemake leaderboard`.


rule leaderboard_table:
    input:
        # the single runs of every module that enters a trained run
        runs=[
            r
            for m in sorted(MODULES)
            if any(e.get("run") for e in MODULES[m].get("leaderboard", []))
            for r in chunk_results(m, "runs")
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


rule leaderboard:
    input:
        rules.leaderboard_table.output,
