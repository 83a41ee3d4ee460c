# Training: each module's runs and sweeps (workflow/analyses/<module>.yaml), in chunks.
#
#   chunk_spec    results/<scale>/chunks/<module>/<group>.<k>.spec.json   the chunk's runs:
#                 directories, resolved configs, fingerprints (config + code hash)
#   train_chunk   results/<scale>/chunks/<module>/<group>.<k>.json        one row per run;
#                 the runs themselves in results/<scale>/runs/<module>/...
#   sweep_table   results/<scale>/sweeps/<module>/<sweep>.csv            one row per run
#
# <group> is `runs` (the module's single runs) or a sweep's name. A chunk job trains its runs
# in one process, those that share shapes and schedule together as one ensemble (config
# train.ensemble; spikeloc.core.ensemble), the others one after the other; a run whose directory already holds the same fingerprint
# is skipped, and a killed one resumes from its last epoch, so adding a grid point trains only
# that point and a rerun after a kill trains only what had not finished. A run retrains
# exactly when its resolved config or the code that trains it changes (the code hash is
# derived from the imports of spikeloc.core.training and
# spikeloc.core.ensemble: python -m spikeloc.pipeline.codehash).
# Device, threads, memory and wall time are resources: moving a chunk from a laptop CPU to a
# cluster GPU retrains nothing.


wildcard_constraints:
    module="[a-z][a-z0-9]*(?:_[a-z0-9]+)*",
    group="[a-z][a-z0-9]*(?:_[a-z0-9]+)*",
    index="[0-9]+",
    sweep="[a-z][a-z0-9]*(?:_[a-z0-9]+)*",


# Written by a rule (not at parse time) so a dry run never touches it. Its param is the
# digest of the spec's content, so Snakemake's params trigger rewrites it exactly when that
# changes; the command recomputes the spec from the manifest and refuses a different one.
rule chunk_spec:
    output:
        f"{RESULTS}/chunks/{{module}}/{{group}}.{{index}}.spec.json",
    params:
        digest=lambda wildcards: chunk_spec_digest(chunk_of(wildcards)),
        chunk_size=CFG["train"]["chunk_size"],
    conda:
        CONDA_ENV
    message:
        "chunk spec {wildcards.module}/{wildcards.group}.{wildcards.index}"
    log:
        f"{LOGS}/chunk_spec/{{module}}/{{group}}.{{index}}.log",
    localrule: True
    shell:
        "spikeloc chunk-spec {wildcards.module} {wildcards.group} {wildcards.index}"
        f" --scale {SCALE}"
        " --chunk-size {params.chunk_size} --digest {params.digest} --out {output} > {log} 2>&1"


rule train_chunk:
    input:
        spec=f"{RESULTS}/chunks/{{module}}/{{group}}.{{index}}.spec.json",
    output:
        f"{RESULTS}/chunks/{{module}}/{{group}}.{{index}}.json",
    params:
        ensemble="" if CFG["train"]["ensemble"] else "--no-ensemble",
    conda:
        CONDA_ENV
    # no `message:` here: a message would replace the job's block in the console, and a dry run
    # of this rule should show its resources (threads, memory, runtime, gpu) for cluster users
    log:
        f"{LOGS}/train/{{module}}/{{group}}.{{index}}.log",
    threads: chunk_resource("threads")
    resources:
        mem_mb=chunk_resource("mem_mb"),
        runtime=chunk_resource("runtime"),
        device=chunk_device,
        gpu=chunk_gpu,
        gpu_model=chunk_gpu_model,
    shell:
        "spikeloc train-chunk {input.spec} --out {output} --no-progress {params.ensemble}"
        " --device {resources.device} --threads {threads} > {log} 2>&1"


rule sweep_table:
    input:
        lambda wildcards: chunk_results(wildcards.module, wildcards.sweep),
    output:
        f"{RESULTS}/sweeps/{{module}}/{{sweep}}.csv",
    conda:
        CONDA_ENV
    message:
        "sweep table {wildcards.module}/{wildcards.sweep}"
    log:
        f"{LOGS}/sweep_table/{{module}}/{{sweep}}.log",
    localrule: True
    shell:
        "spikeloc sweep-table {input} --out {output} > {log} 2>&1"
