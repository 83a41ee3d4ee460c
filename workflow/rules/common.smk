# Loading, validation and input functions shared by every rule file. No rules here.
#
# Everything is loaded and checked by the library (spikeloc.pipeline.manifests) while the
# workflow is parsed, so a bad config, a bad module manifest or a missing contributor file
# fails before any job runs, with one line per problem naming the file and the field:
#
#   workflow/analyses/x.yaml: sweeps.tau.grid.model.tau_hidden_s: 'a': must be a number
#
# Paths are relative to the repository root: run snakemake from there.

import sys
from pathlib import Path

from spikeloc.errors import SpikelocError
from spikeloc.pipeline import authorship, manifests
from spikeloc.pipeline.chunks import RUN_FILES


def fail(problems):
    """Stop the workflow before any job runs: one line per problem on stderr, exit code 2
    (no traceback: the lines name the file and field, which is all a user needs)."""
    print("\n".join(problems), file=sys.stderr, flush=True)
    raise SystemExit(2)


# The software environment of every rule (documentation, and `--sdm conda` on clusters that
# want it); relative to workflow/rules/, where the rules are defined.
CONDA_ENV = "../../environment.yml"

CONFIG_SOURCES = manifests.config_sources(
    workflow.configfiles, workflow.config_settings.config
)
try:
    PROJECT = manifests.load_project(config, CONFIG_SOURCES)
except manifests.ProblemsError as exc:
    fail(exc.problems)

# Owners and original authors need a contributor file; contributor files must be valid.
try:
    authorship.check_or_raise("contributors", "workflow/analyses")
except SpikelocError as exc:
    fail([str(exc)])

CFG = PROJECT.config
SCALE = PROJECT.scale
RESULTS = PROJECT.results  # results/<scale>
LOGS = PROJECT.logs  # logs/<scale>
MODULES = PROJECT.modules
CHUNKS = {c.id: c for c in PROJECT.chunks()}


# --------------------------------------------------------------------------- chunks


def chunk_of(wildcards):
    return CHUNKS[f"{wildcards.module}/{wildcards.group}.{wildcards.index}"]


def chunk_results(module, group=None):
    """Result files of a module's chunks (of one group: its single runs or a sweep)."""
    return [
        PROJECT.chunk_result_path(c)
        for c in PROJECT.chunks(module)
        if group is None or c.group == group
    ]


def chunk_device(wildcards):
    return PROJECT.chunk_device(chunk_of(wildcards))


def chunk_gpu(wildcards):
    """1 for cuda chunks (sbatch --gpus=1 under the SLURM executor), unset otherwise."""
    return 1 if chunk_device(wildcards) == "cuda" else None


def chunk_gpu_model(wildcards):
    if chunk_device(wildcards) == "cuda" and CFG.get("gpu_model"):
        return CFG["gpu_model"]
    return None


def chunk_resource(key):
    return lambda wildcards: PROJECT.chunk_resource(chunk_of(wildcards), key)


# --------------------------------------------------------------------------- modules


def module_figures(module, exts=("pdf", "png", "json"), only_paper=False):
    return PROJECT.figure_paths(module, exts, only_paper)


def all_figures(exts=("pdf", "png", "json")):
    return [f for m in sorted(MODULES) for f in module_figures(m, exts)]


def paper_figures(exts=("pdf",)):
    return [f for m in sorted(MODULES) for f in module_figures(m, exts, only_paper=True)]


def module_inputs(module):
    """Inputs of a module's rule: notebook, manifest, the chunks it reads, data, library."""
    m = MODULES[module]
    return {
        "notebook": m.notebook,
        "manifest": m.source,
        "library": NOTEBOOK_LIBRARY_FILES,
        "runs": chunk_results(module, "runs"),
        "sweeps": [PROJECT.sweep_table_path(module, s) for s in PROJECT.sweeps(module)],
        "data": list(m["data"]),
    }


def module_parameters(module):
    """The papermill parameters of a module (YAML, for ``papermill -y``)."""
    import yaml

    params = PROJECT.notebook_parameters(module)
    return yaml.safe_dump(params, sort_keys=True, default_flow_style=True, width=10**6).strip()


# Library code the notebooks import (mtime inputs of every analysis rule): everything but the
# command-line glue that only the workflow's other rules run.
NOTEBOOK_LIBRARY_FILES = sorted(
    str(p)
    for p in Path("src/spikeloc").rglob("*.py")
    if p.name != "cli.py"
    and p.stem not in ("authorship", "paper", "scaffold", "commands", "codehash", "chunks")
)

PAPER_SOURCES = sorted(
    str(p)
    for p in Path("paper").rglob("*")
    if p.suffix in (".typ", ".bib", ".css") and "build" not in p.parts
)
AUTHORSHIP_FILES = [
    "results/authorship/authors.json",
    "results/authorship/credit.json",
    "results/authorship/contributions.json",
]


def chunk_spec_digest(chunk):
    from spikeloc.pipeline.chunks import spec_digest, spec_text

    return spec_digest(spec_text(chunk, PROJECT.code_hash))
