"""``spikeloc new-module``: start a new analysis module from working templates.

::

    spikeloc new-module itd_study --owner your-github-login --title "Sweeping the tone frequency"
    spikeloc new-module tau_study --owner your-github-login --title "Time constants" --sweep

creates three files that belong to the new module only (nobody else's file is edited, so any
number of people can add modules at once):

* ``workflow/analyses/<name>.yaml``: the manifest (title, owner, what it trains, the figure and
  the variables the template makes); the workflow generates the module's jobs from it;
* ``workflow/notebooks/<name>.ipynb``: a notebook whose ``parameters`` cell runs standalone (at
  paper scale; ``papermill ... -p scale quick`` reads the quick tree); it saves one figure and
  records its numbers, so ``snakemake figures`` works at once;
* ``paper/sections/<name>.typ``: the module's section of the paper, quoting those numbers and
  placing that figure.

Without ``--sweep`` the module trains nothing: its notebook draws input examples and records
their mean rate. With ``--sweep`` its manifest declares a sweep ``tau`` (two hidden time
constants x two seeds on the tutorial preset, tiny at quick scale) and its notebook reads the
sweep's table (:func:`spikeloc.pipeline.results.load_sweep`), plots test accuracy against the
time constant (mean and standard deviation over seeds,
:func:`spikeloc.analysis.sweep_stats.mean_sd` and :func:`spikeloc.analysis.plots.sweep_curve`)
and records the best point.

The owner needs a contributor file ``contributors/<owner>.yaml`` (see contributors/README.md);
``spikeloc contributors check`` and the workflow refuse to run until it exists.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from spikeloc.errors import SpikelocError
from spikeloc.io import atomic_write_text

__all__ = ["MODULE_NAME_RE", "HANDLE_RE", "module_paths", "new_module", "configure_parser"]

#: Module names: lowercase snake case, starting with a letter (they become rule names,
#: file names, figure-id and variable-key prefixes).
MODULE_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
#: GitHub handles (or lowercase slugs for people without one).
HANDLE_RE = re.compile(r"^[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}$")
# names that would clash with the paper's own section files or the workflow's rules
_RESERVED = {"abstract", "introduction", "pipeline", "all", "figures", "paper", "train"}


def module_paths(name: str, root: str | Path = ".") -> dict[str, Path]:
    """Where the three files of module ``name`` live under ``root``."""
    root = Path(root)
    return {
        "manifest": root / "workflow" / "analyses" / f"{name}.yaml",
        "notebook": root / "workflow" / "notebooks" / f"{name}.ipynb",
        "section": root / "paper" / "sections" / f"{name}.typ",
    }


# --------------------------------------------------------------------------- manifest

_MANIFEST_HEAD = """\
# Module {name}: created by `spikeloc new-module{flag}`. Schema and meaning of every key:
# workflow/schemas/manifest.schema.json; how modules work: workflow/README.md.
title: {title}
description: >-
  One or two sentences on what this module shows and why.
owners: [{owner}]
# who wrote the published analysis this module reproduces (credited as authors too)
original_authors: []
section: {name}
# position of the section in the paper (ascending)
order: 100
"""

_PLAIN_BODY = """\
# What the module trains: nothing yet. A training run is an entry of runs; its directory
# results/<scale>/runs/{name}/<run>/ reaches the notebook as runs["<run>"]. For example:
#   runs:
#     baseline:
#       preset: tutorial                        # spikeloc.core.config.PRESETS
#       seed: 0
#       overrides: {{model: {{n_hidden: 10}}}}      # laid over the preset
#       quick: {{overrides: {{training: {{epochs: 1, n_train: 256, n_test: 128}}}}}}
# A sweep is an entry of sweeps (`spikeloc new-module NAME --sweep` makes one).
runs: {{}}
sweeps: {{}}
# repository files the notebook reads
data: []
figures:
  - id: {name}_input_examples
    caption: >-
      Example inputs: spike trains of the 2 x 100 auditory-nerve fibres for a few
      samples of a 20 Hz tone, titled with the true IPD in degrees.
variables:
  - name: mean_input_rate_hz
    unit: Hz
    description: mean firing rate of the input fibres
"""

_SWEEP_BODY = """\
# single training runs by name (none here): results/<scale>/runs/{name}/<run>/
runs: {{}}
# Sweeps by name. Every grid point x seed is one run, results/<scale>/runs/{name}/<sweep>/
# <point>/ (here tau/tau_hidden_s=0.01__seed=0 and three more), and the sweep's table
# results/<scale>/sweeps/{name}/<sweep>.csv has one row per run (run, path, the swept
# keys, seed, every metric); it reaches the notebook as sweeps["<sweep>"].
sweeps:
  tau:
    # spikeloc.core.config.PRESETS["tutorial"]: 30 LIF hidden neurons, 20 Hz tone, 10 epochs
    preset: tutorial
    # run-config keys laid over the preset, e.g. {{training: {{lr: 0.005}}}}
    overrides: {{}}
    # the cartesian product of these lists (zip: lists varied together)
    grid:
      model.tau_hidden_s: [0.01, 0.02]
    # seeds 0 and 1 at every grid point (or a list of seeds, e.g. [0, 5, 7])
    seeds: 2
    # config/quick.yaml: sizes only, never other code paths
    quick:
      overrides: {{training: {{epochs: 1, n_train: 256, n_test: 128}}}}
      seeds: 2
      # the values at quick scale; left out: the first and last value of every axis
      # grid: {{model.tau_hidden_s: [0.01, 0.02]}}
# repository files the notebook reads
data: []
figures:
  - id: {name}_accuracy
    caption: >-
      Test accuracy against the membrane time constant of the hidden neurons: mean over seeds
      (black; error bars one standard deviation) and single runs (grey).
variables:
  - name: best_tau_ms
    unit: ms
    description: hidden time constant of the highest mean test accuracy
  - name: best_accuracy_pct
    unit: "%"
    description: mean test accuracy over seeds at that time constant
  - name: n_runs
    description: runs in the sweep (grid points x seeds)
"""

_MANIFEST_TAIL = """\
# published numbers this module regenerates: name, variable, published, tolerance, text
claims: []
# where the published text and code disagree, and what this module does about it
notes: []
"""


def _manifest(name: str, owner: str, title: str, sweep: bool = False) -> str:
    title_yaml = json.dumps(title, ensure_ascii=False)  # a JSON string is a valid YAML scalar
    head = _MANIFEST_HEAD.format(
        name=name, owner=owner, title=title_yaml, flag=" --sweep" if sweep else ""
    )
    body = (_SWEEP_BODY if sweep else _PLAIN_BODY).format(name=name)
    return head + body + _MANIFEST_TAIL


# --------------------------------------------------------------------------- notebook


def _cell(cell_id: str, kind: str, source: str, tags: list[str] | None = None) -> dict:
    cell: dict = {
        "cell_type": kind,
        "id": cell_id,
        "metadata": {"tags": tags} if tags else {},
        "source": source.splitlines(keepends=True),
    }
    if kind == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def _parameters(name: str, own: str) -> str:
    """The parameters cell: the workflow's standard names around the module's own ones."""
    return (
        "# Parameters (papermill replaces this cell's values; these defaults run standalone)\n"
        f'module = "{name}"\n'
        'scale = "paper"  # paper | quick: which results tree the empty defaults below read\n'
        f"{own}"
        'figures_dir = ""  # empty: figures/<scale>\n'
        'variables_path = ""  # empty: results/<scale>/variables/<module>.json\n'
        f'notebook_path = "workflow/notebooks/{name}.ipynb"\n'
        'config_hash = ""  # fingerprint of the runs and settings, stamped into every figure\n'
    )


def _setup(imports: str, own: str) -> str:
    """The setup cell: imports, the repository root, the paths at ``scale``, save, record."""
    return (
        f"import os\n\n{imports}\n"
        "os.chdir(variables.project_root())  # the same paths from Jupyter and papermill\n"
        "paths = results.module_paths(module, scale)  # where this module's results live\n"
        f"{own}"
        'figures_dir = figures_dir or paths["figures_dir"]\n'
        'variables_path = variables_path or paths["variables_path"]\n'
        "figures.use_house_style()\n"
        "save = figures.module_saver(\n"
        "    module, notebook=notebook_path, config_hash=config_hash, out_dir=figures_dir\n"
        ")\n"
        "record = variables.recorder(module, path=variables_path)\n"
    )


def _intro(name: str, title: str, reads: str) -> str:
    return (
        f"# {title}\n\n"
        f"Analysis module `{name}` (manifest `workflow/analyses/{name}.yaml`). The workflow "
        f"runs this notebook with papermill (rule `analyse_{name}`), replacing the values "
        "of the parameters cell; its defaults run it standalone from the repository at paper "
        "scale (`papermill ... -p scale quick` reads the quick results).\n\n"
        f"{reads}"
        "Save every figure the manifest declares with `save(fig, figure_id)` and record "
        "every number the paper quotes with `record(name, value, fmt, unit=...)`. The "
        "notebook only reads results and plots them; models and analyses live in the library "
        "(`spikeloc.analysis`)."
    )


def _plain_cells(name: str, title: str) -> list[dict]:
    return [
        _cell("intro", "markdown", _intro(name, title, "")),
        _cell(
            "parameters",
            "code",
            _parameters(
                name,
                "runs = {}  # run name -> run directory (empty: this module's runs at `scale`)\n"
                "n_samples = 8  # stimulus samples to draw\n"
                "seed = 0\n",
            ),
            tags=["parameters"],
        ),
        _cell(
            "setup",
            "code",
            _setup(
                "from spikeloc.analysis import plots\n"
                "from spikeloc.core.stimuli import StimulusConfig, make_dataset\n"
                "from spikeloc.core.training import seeded_generator\n"
                "from spikeloc.pipeline import figures, results, variables\n",
                'runs = runs or paths["runs"]\n',
            ),
        ),
        _cell(
            "analysis",
            "code",
            "# Replace with the module's analysis. A trained run (declared under runs: in the\n"
            "# manifest): model, cfg, metrics, history = results.load_run(runs[name])\n"
            "stimulus = StimulusConfig()  # the tutorial's 20 Hz tone\n"
            'data = make_dataset(n_samples, stimulus, generator=seeded_generator(seed, "test"))\n'
            "rate_hz = float(data.spikes.float().mean()) / stimulus.dt_s\n"
            'record("mean_input_rate_hz", rate_hz, ".1f", unit="Hz")\n'
            f'save(plots.input_examples(data, n=min(n_samples, 8)), "{name}_input_examples")\n'
            'print(f"mean input rate {rate_hz:.1f} Hz")\n',
        ),
    ]


def _sweep_cells(name: str, title: str) -> list[dict]:
    reads = (
        "It reads the table of sweep `tau`: one row per run with the swept "
        "`model.tau_hidden_s`, the `seed` and the run's metrics (`accuracy` is its test "
        f"accuracy). `snakemake results/paper/sweeps/{name}/tau.csv` builds the table "
        f"(`snakemake results/quick/sweeps/{name}/tau.csv --configfile config/quick.yaml` "
        "the quick one).\n\n"
    )
    return [
        _cell("intro", "markdown", _intro(name, title, reads)),
        _cell(
            "parameters",
            "code",
            _parameters(
                name,
                "sweeps = {}  # sweep name -> table (empty: this module's sweeps at `scale`)\n"
                'metric = "accuracy"  # the column plotted: each run\'s test accuracy\n',
            ),
            tags=["parameters"],
        ),
        _cell(
            "setup",
            "code",
            _setup(
                "from spikeloc.analysis import plots, sweep_stats\n"
                "from spikeloc.pipeline import figures, results, variables\n",
                'sweeps = sweeps or paths["sweeps"]\n',
            ),
        ),
        _cell(
            "analysis",
            "code",
            "# one row per run; the mean and standard deviation over seeds per time constant\n"
            'table = results.load_sweep(sweeps["tau"])\n'
            'summary = sweep_stats.mean_sd(table, metric, by="model.tau_hidden_s")\n'
            "print(summary.to_string(index=False))\n"
            "fig = plots.sweep_curve(\n"
            "    summary,\n"
            '    "model.tau_hidden_s",\n'
            "    runs=table,\n"
            "    metric=metric,\n"
            '    xlabel="Hidden membrane time constant (ms)",\n'
            '    ylabel="Test accuracy (%)",\n'
            "    x_scale=1e3,\n"
            "    y_scale=100,\n"
            ")\n"
            f'save(fig, "{name}_accuracy")\n'
            'best = summary.loc[summary["mean"].idxmax()]\n'
            'record("best_tau_ms", 1e3 * best["model.tau_hidden_s"], ".3g", unit="ms")\n'
            'record("best_accuracy_pct", 100 * best["mean"], ".1f", unit="%")\n'
            'record("n_runs", len(table), "d")\n',
        ),
    ]


def _notebook(name: str, title: str, sweep: bool = False) -> str:
    nb = {
        "cells": _sweep_cells(name, title) if sweep else _plain_cells(name, title),
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- section

_SECTION_HEAD = """\
// Section of module {name} (workflow/analyses/{name}.yaml). The paper writes the
// heading from the manifest's title and includes this file; figures the text does not
// place are appended after it. Numbers: #num / #qty("{name}.<variable>").
#import "/paper/sections/_lib.typ": *

"""

_PLAIN_SECTION = """\
What this module asks, how it answers it, and what it finds. The input fibres fire at
#qty("{name}.mean_input_rate_hz") on average (@{name}_input_examples).

#fig("{name}_input_examples")
"""

_SWEEP_SECTION = """\
What this module asks, how it answers it, and what it finds. Over #num("{name}.n_runs")
networks (each hidden membrane time constant of the sweep trained from several seeds), the
mean test accuracy is highest, #qty("{name}.best_accuracy_pct"), at a time constant of
#qty("{name}.best_tau_ms") (@{name}_accuracy).

#fig("{name}_accuracy")
"""


def _section(name: str, sweep: bool = False) -> str:
    return (_SECTION_HEAD + (_SWEEP_SECTION if sweep else _PLAIN_SECTION)).format(name=name)


# --------------------------------------------------------------------------- command


def new_module(
    name: str, owner: str, title: str, *, root: str | Path = ".", sweep: bool = False
) -> dict[str, Path]:
    """Create the manifest, notebook and paper section of a new module; returns their paths.

    ``sweep``: the module trains a two-point sweep and plots a metric against the swept value
    (see the module docstring); otherwise it trains nothing.

    Raises :class:`~spikeloc.errors.SpikelocError` for a badly formed name, handle or title,
    or if any of the three files already exists (nothing is written then).
    """
    if not MODULE_NAME_RE.match(name or ""):
        raise SpikelocError(
            f"new-module: NAME {name!r}: must be lowercase snake case starting with a letter "
            "(e.g. 'itd_study')"
        )
    if name in _RESERVED:
        raise SpikelocError(f"new-module: NAME {name!r}: reserved (a paper section or rule name)")
    if not HANDLE_RE.match(owner or ""):
        raise SpikelocError(
            f"new-module: --owner {owner!r}: must be a GitHub login (letters, digits, single "
            "hyphens) or a lowercase slug"
        )
    if len((title or "").strip()) < 3:
        raise SpikelocError("new-module: --title: must be at least 3 characters")
    root = Path(root)
    if not (root / "workflow" / "analyses").is_dir():
        raise SpikelocError(
            f"new-module: {root.resolve()}: no workflow/analyses here; run from the repository root"
        )
    paths = module_paths(name, root)
    for kind, path in paths.items():
        if path.exists():
            raise SpikelocError(f"new-module: {path}: already exists (module {name!r} {kind})")
    atomic_write_text(paths["manifest"], _manifest(name, owner, title.strip(), sweep))
    atomic_write_text(paths["notebook"], _notebook(name, title.strip(), sweep))
    atomic_write_text(paths["section"], _section(name, sweep))
    return paths


def _cmd(args: argparse.Namespace) -> int:
    paths = new_module(args.name, args.owner, args.title, root=args.root, sweep=args.sweep)
    for path in paths.values():
        print(f"created {path}")
    contributor = Path(args.root) / "contributors" / f"{args.owner}.yaml"
    if not contributor.exists():
        print(
            f"note: {contributor} does not exist yet; add it (contributors/README.md), or "
            "`spikeloc contributors check` and the workflow will refuse to run"
        )
    print(
        f"next: `snakemake -n figures` lists rule analyse_{args.name}; "
        "`snakemake figures --configfile config/quick.yaml` runs it at quick scale"
    )
    return 0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spikeloc new-module``."""
    parser.description = "Create the manifest, notebook and paper section of a new module."
    parser.add_argument("name", help="module name, lowercase snake case (e.g. itd_study)")
    parser.add_argument(
        "--owner", required=True, help="your GitHub login (contributors/<owner>.yaml)"
    )
    parser.add_argument("--title", required=True, help="title of the module's paper section")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="a module that trains a sweep (two time constants x two seeds) and plots its table",
    )
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="repository root (default: current directory)"
    )
    parser.set_defaults(func=_cmd)
