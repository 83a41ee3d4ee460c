"""Loading finished results: what the analysis notebooks read (runs; sweep tables).

Notebooks never train; they load what rule ``train`` wrote::

    model, cfg, metrics, history = results.load_run(runs["basic_model"])
    run = results.load_task_run(runs["reservoir_500"])      # a task run (spikeloc.pipeline.tasks)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from spikeloc.core.config import config_from_dict, load_config
from spikeloc.core.models import build_model
from spikeloc.core.training import resolve_device
from spikeloc.errors import ConfigError, SpikelocError, WeightsError
from spikeloc.io import check_state_matches, load_weights
from spikeloc.pipeline.tasks import TaskRun, load_task_run

__all__ = [
    "TaskRun",
    "load_run",
    "load_sweep",
    "load_task_run",
    "load_trained_model",
    "module_paths",
]


def load_trained_model(
    weights: str | Path,
    *,
    preset: str | None = None,
    config: str | Path | None = None,
    device: str = "cpu",
):
    """A model with the given weights: the config comes from ``--preset``/``--config`` or, for a
    run's ``model.pt``, from the file itself. Returns ``(model, run_config)``."""
    state, stored = load_weights(weights)
    if config is not None:
        cfg = load_config(config)
    elif preset is not None:
        cfg = config_from_dict({"preset": preset}, f"--preset {preset}")
    elif stored is not None:
        try:
            cfg = config_from_dict(stored, weights)
        except ConfigError as exc:
            raise WeightsError(weights, f"config.{exc.field}", exc.problem) from None
    else:
        raise SpikelocError(
            f"{weights}: config: an .npz holds no config; pass --preset or --config"
        )
    model = build_model(cfg)
    check_state_matches(weights, state, model)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise WeightsError(weights, missing[0], "missing (the model uses Dale's-law signs)")
    model.load_state_dict({k: state[k] for k in own})
    return model.to(resolve_device(device)), cfg


def load_run(run_dir: str | Path):
    """A finished training run: ``(model, run_config, metrics, history)``.

    ``history`` is the rows of ``history.csv`` (dicts of strings). A missing run names the
    snakemake target that builds it.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise WeightsError(
            run_dir / "model.pt",
            "<file>",
            f"no such file; train the run first: `snakemake {run_dir}/model.pt` "
            "(add `--configfile config/quick.yaml` for a quick one)",
        )
    model, cfg = load_trained_model(run_dir / "model.pt")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "history.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    return model, cfg, metrics, history


def load_sweep(table: str | Path):
    """A sweep's table (``results/<scale>/sweeps/<module>/<sweep>.csv``) as a pandas DataFrame:
    one row per run with its name and directory (``run``, ``path``), every swept key (dotted
    names, e.g. ``model.tau_hidden_s``), ``seed`` and every metric of its ``metrics.json``
    (lists, such as ``hidden_rates_hz``, parsed back from JSON). A missing table names the
    snakemake target that builds it."""
    import pandas as pd

    table = Path(table)
    if not table.is_file():
        raise SpikelocError(
            f"{table}: (file): no such sweep table; build it first: `snakemake {table}`"
        )
    df = pd.read_csv(table)
    for column in df.columns:
        values = df[column]
        # text columns are `object` before pandas 3 and `str` from it on
        textual = pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
        if textual and values.astype(str).str.startswith("[").all():
            df[column] = values.map(json.loads).astype(object)
    return df


def load_sweep_task_runs(table: str | Path) -> list[TaskRun]:
    """Every run of a task sweep, from its table (``results/<scale>/sweeps/<module>/<s>.csv``),
    in the table's order."""
    return [load_task_run(p) for p in load_sweep(table)["path"]]


def module_paths(module: str, scale: str = "paper", *, root: str | Path = ".") -> dict:
    """Where a module's results live at ``scale``, as the workflow passes them to its notebook:
    ``runs`` (name -> run directory), ``sweeps`` (name -> table), ``figures_dir`` and
    ``variables_path``. Notebooks use it for the defaults of their parameters cell, so that
    ``papermill nb.ipynb out.ipynb -p scale quick`` reads the quick results standalone."""
    from spikeloc.pipeline import sweeps as sw
    from spikeloc.pipeline.manifests import load_manifest

    manifest = load_manifest(module, root=root)
    if scale not in manifest.runs:
        raise SpikelocError(f"scale: {scale!r} is not one of {', '.join(sw.SCALES)}")
    return {
        "runs": {name: run.path for name, run in manifest.runs[scale].items()},
        "sweeps": {s: sw.sweep_table_path(module, s, scale) for s in manifest.sweeps[scale]},
        "figures_dir": sw.figures_dir(scale),
        "variables_path": sw.variables_path(module, scale),
    }
