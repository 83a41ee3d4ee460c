"""The workflow's glue: manifests and config (load + validate, one error style), sweeps
(expansion, naming, tables), loading results for notebooks, saving figures, variables and
claims, the paper build, authorship, scaffolding and the command handlers the rules call."""
