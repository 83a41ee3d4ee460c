# The leaderboard (spikeloc leaderboard): every localiser that a module's manifest enters under
# `leaderboard:`, evaluated on the common protocol of spikeloc.analysis.leaderboard at this
# scale, after the runs it needs are trained. Target: `snakemake leaderboard`.


def leaderboard_runs():
    """Chunk results of every module that enters a trained run on the leaderboard."""
    out = []
    for name in sorted(MODULES):
        if any(e.get("run") for e in MODULES[name].get("leaderboard", [])):
            out += chunk_results(name, "runs")
    return out


rule leaderboard_table:
    input:
        runs=leaderboard_runs(),
        manifests=[MODULES[m].source for m in sorted(MODULES)],
        library=NOTEBOOK_LIBRARY_FILES,
    output:
        table=f"{RESULTS}/leaderboard.json",
        text=f"{RESULTS}/leaderboard.txt",
    log:
        f"{LOGS}/leaderboard/leaderboard.log",
    message:
        "leaderboard: every registered localiser on the common protocol"
    conda:
        CONDA_ENV
    shell:
        "spikeloc leaderboard --scale {SCALE} --out {output.table} > {output.text} 2> {log}"


rule leaderboard:
    input:
        rules.leaderboard_table.output,
