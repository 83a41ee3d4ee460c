# Training runs: config block `runs:` -> results/configs/<run>.yaml -> results/runs/<run>/.
#
# A run re-trains only when what it computes changes: its resolved run config (the params of
# rule run_config) or the content of the core code (the `core` param of rule train, a hash of
# CORE_FILES). Its device, threads, memory and wall time are resources, so moving a run from
# a laptop CPU to a cluster GPU does not invalidate it.


wildcard_constraints:
    run="[a-z][a-z0-9]*(?:_[a-z0-9]+)*",


# The resolved run config of one run. Written by a rule (not at parse time) so a dry run never
# touches it; Snakemake's params trigger rewrites it exactly when its content changes.
rule run_config:
    output:
        "results/configs/{run}.yaml",
    params:
        text=lambda wildcards: RUN_CONFIG_TEXT[wildcards.run],
    conda:
        CONDA_ENV
    log:
        "logs/run_config/{run}.log",
    localrule: True
    shell:
        "printf '%s' {params.text:q} > {output} 2> {log}"


# One training run. `spikeloc train` works in results/runs/<run>.partial/ and renames it into
# place when done; --resume continues a killed run from its last epoch checkpoint.
rule train:
    input:
        config="results/configs/{run}.yaml",
    output:
        model="results/runs/{run}/model.pt",
        metrics="results/runs/{run}/metrics.json",
        history="results/runs/{run}/history.csv",
        provenance="results/runs/{run}/provenance.json",
        config="results/runs/{run}/config.yaml",
    params:
        core=CORE_HASH,
        out="results/runs/{run}",
    conda:
        CONDA_ENV
    log:
        "logs/train/{run}.log",
    threads: train_threads
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        device=train_device,
        gpu=train_gpu,
        gpu_model=train_gpu_model,
    shell:
        "spikeloc train {input.config} --out {params.out} --resume --no-progress"
        " --device {resources.device} --threads {threads} > {log} 2>&1"
