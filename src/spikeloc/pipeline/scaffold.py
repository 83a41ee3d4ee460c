"""``spikeloc new-module``: start a new analysis module from working templates.

::

    spikeloc new-module itd_sweep --owner your-github-login --title "Sweeping the tone frequency"

creates three files that belong to the new module only (nobody else's file is edited, so any
number of people can add modules at once):

* ``workflow/analyses/<name>.yaml``: the manifest (title, owner, the figure and the variable
  the template makes); the workflow generates the rule ``analyse_<name>`` from it;
* ``workflow/notebooks/<name>.ipynb``: a notebook whose ``parameters`` cell runs standalone; it
  draws one stimulus figure and records one number, so ``snakemake figures`` works at once;
* ``paper/sections/<name>.typ``: the module's section of the paper, quoting that number and
  placing that figure.

The owner needs a contributor file ``contributors/<owner>.yaml`` (see contributors/README.md);
``spikeloc contributors check`` and the workflow refuse to run until it exists.
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
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


def _manifest(name: str, owner: str, title: str) -> str:
    title_yaml = json.dumps(title, ensure_ascii=False)  # a JSON string is a valid YAML scalar
    return textwrap.dedent(
        f"""\
        # Module {name}: created by `spikeloc new-module`. Schema and meaning of every key:
        # workflow/schemas/manifest.schema.json; how modules work: workflow/README.md.
        title: {title_yaml}
        description: >-
          One or two sentences on what this module shows and why.
        owners: [{owner}]
        # who wrote the published analysis this module reproduces (credited as authors too)
        original_authors: []
        section: {name}
        # training runs (config runs.<name>) the notebook reads from results/runs/<name>/
        runs: []
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
        # published numbers this module regenerates: name, variable, published, tolerance, text
        claims: []
        # where the published text and code disagree, and what this module does about it
        notes: []
        """
    )


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


def _notebook(name: str, title: str) -> str:
    cells = [
        _cell(
            "intro",
            "markdown",
            f"# {title}\n\n"
            f"Analysis module `{name}` (manifest `workflow/analyses/{name}.yaml`). The workflow "
            f"runs this notebook with papermill (rule `analyse_{name}`), replacing the values "
            "of the parameters cell; its defaults run it standalone from the repository.\n\n"
            "Save every figure the manifest declares with `save(fig, figure_id)` and record "
            "every number the paper quotes with `record(name, value, fmt, unit=...)`.",
        ),
        _cell(
            "parameters",
            "code",
            "# Parameters (papermill replaces this cell's values; these defaults run standalone)\n"
            f'module = "{name}"\n'
            "runs = {}  # run name -> run directory (results/runs/<run>), from the manifest\n"
            "n_samples = 8  # stimulus samples to draw\n"
            "seed = 0\n"
            'figures_dir = "figures"\n'
            f'variables_path = "results/variables/{name}.json"\n'
            f'notebook_path = "workflow/notebooks/{name}.ipynb"\n'
            'config_hash = ""\n',
            tags=["parameters"],
        ),
        _cell(
            "setup",
            "code",
            "import os\n\n"
            "from spikeloc.analysis import plots\n"
            "from spikeloc.pipeline import figures, variables\n"
            "from spikeloc.core.stimuli import StimulusConfig, make_dataset\n"
            "from spikeloc.core.training import seeded_generator\n\n"
            "os.chdir(variables.project_root())  # same paths from Jupyter and papermill\n"
            "figures.use_house_style()\n"
            "save = figures.module_saver(\n"
            "    module, notebook=notebook_path, config_hash=config_hash, out_dir=figures_dir\n"
            ")\n"
            "record = variables.recorder(module, path=variables_path)\n",
        ),
        _cell(
            "analysis",
            "code",
            "# Replace with the module's analysis; read trained runs with\n"
            '# spikeloc.pipeline.results.load_run(f"{runs[name]}/model.pt").\n'
            "stimulus = StimulusConfig()  # the tutorial's 20 Hz tone\n"
            'data = make_dataset(n_samples, stimulus, generator=seeded_generator(seed, "test"))\n'
            "rate_hz = float(data.spikes.float().mean()) / stimulus.dt_s\n"
            'record("mean_input_rate_hz", rate_hz, ".1f", unit="Hz")\n'
            f'save(plots.input_examples(data, n=min(n_samples, 8)), "{name}_input_examples")\n'
            'print(f"mean input rate {rate_hz:.1f} Hz")\n',
        ),
    ]
    nb = {
        "cells": cells,
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


def _section(name: str) -> str:
    return textwrap.dedent(
        f"""\
        // Section of module {name} (workflow/analyses/{name}.yaml). The paper writes the
        // heading from the manifest's title and includes this file; figures the text does not
        // place are appended after it. Numbers: #num / #qty("{name}.<variable>").
        #import "/paper/sections/_lib.typ": *

        What this module asks, how it answers it, and what it finds. The input fibres fire at
        #qty("{name}.mean_input_rate_hz") on average (@{name}_input_examples).

        #fig("{name}_input_examples")
        """
    )


def new_module(name: str, owner: str, title: str, *, root: str | Path = ".") -> dict[str, Path]:
    """Create the manifest, notebook and paper section of a new module; returns their paths.

    Raises :class:`~spikeloc.errors.SpikelocError` for a badly formed name, handle or title,
    or if any of the three files already exists (nothing is written then).
    """
    if not MODULE_NAME_RE.match(name or ""):
        raise SpikelocError(
            f"new-module: NAME {name!r}: must be lowercase snake case starting with a letter "
            "(e.g. 'itd_sweep')"
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
    atomic_write_text(paths["manifest"], _manifest(name, owner, title.strip()))
    atomic_write_text(paths["notebook"], _notebook(name, title.strip()))
    atomic_write_text(paths["section"], _section(name))
    return paths


def _cmd(args: argparse.Namespace) -> int:
    paths = new_module(args.name, args.owner, args.title, root=args.root)
    for path in paths.values():
        print(f"created {path}")
    contributor = Path(args.root) / "contributors" / f"{args.owner}.yaml"
    if not contributor.exists():
        print(
            f"note: {contributor} does not exist yet; add it (contributors/README.md), or "
            "`spikeloc contributors check` and the workflow will refuse to run"
        )
    print(
        f"next: `snakemake -n figures` lists rule analyse_{args.name}; edit the notebook, "
        "then `snakemake figures`"
    )
    return 0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``spikeloc new-module``."""
    parser.description = "Create the manifest, notebook and paper section of a new module."
    parser.add_argument("name", help="module name, lowercase snake case (e.g. itd_sweep)")
    parser.add_argument(
        "--owner", required=True, help="your GitHub login (contributors/<owner>.yaml)"
    )
    parser.add_argument("--title", required=True, help="title of the module's paper section")
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="repository root (default: current directory)"
    )
    parser.set_defaults(func=_cmd)
