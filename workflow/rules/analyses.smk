# Analysis modules: one rule per manifest workflow/analyses/<module>.yaml, generated here.
# Adding a module means adding files of one's own (manifest, notebook, paper section); nobody
# edits this file. Each rule runs the module's notebook with papermill, passing its inputs and
# outputs as parameters (runs: name -> run directory; sweeps: name -> table), and keeps the
# executed notebook as an output. Notebooks only read results: they never train.
#
# A notebook that raises fails its rule: papermill's log (logs/<scale>/analyse_<module>/
# papermill.log) shows the failing cell and its traceback, the tail of it is printed with the
# job's error, and the half-executed notebook is kept as logs/<scale>/analyse_<module>/failed.ipynb.


for _module in sorted(MODULES):

    rule:
        name:
            f"analyse_{_module}"
        input:
            **module_inputs(_module),
        output:
            notebook=f"{RESULTS}/notebooks/{_module}.ipynb",
            variables=PROJECT.variables_path(_module),
            figures=module_figures(_module),
        params:
            parameters=module_parameters(_module),
            failed=f"{LOGS}/analyse_{_module}/failed.ipynb",
        conda:
            CONDA_ENV
        log:
            f"{LOGS}/analyse_{_module}/papermill.log",
        message:
            f"module {_module}: running notebook {MODULES[_module].notebook}"
        threads: PROJECT.analysis_resource(_module, "threads")
        resources:
            mem_mb=PROJECT.analysis_resource(_module, "mem_mb"),
            runtime=PROJECT.analysis_resource(_module, "runtime"),
        shell:
            "export SPIKELOC_THREADS={threads} MPLBACKEND=Agg; "
            "python -m spikeloc.pipeline.notebooks {input.notebook} {output.notebook}"
            " --kernel python3 -y {params.parameters:q} > {log} 2>&1"
            " || {{ cp {output.notebook} {params.failed} 2>/dev/null || true;"
            " echo 'notebook {input.notebook} failed; last lines of {log}:' >&2;"
            " tail -n 60 {log} >&2; exit 1; }}"
