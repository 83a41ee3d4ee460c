"""CLI handlers for ``spikeloc train`` and ``spikeloc evaluate``."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

import torch

from spikeloc import evaluation
from spikeloc.config import RunConfig, config_from_dict, load_config
from spikeloc.errors import ConfigError, SpikelocError, WeightsError
from spikeloc.io import check_state_matches, load_weights
from spikeloc.models import build_model
from spikeloc.performance import configure_runtime
from spikeloc.stimuli import make_dataset
from spikeloc.training import resolve_device, seeded_generator, train_run

__all__ = [
    "configure_train_parser",
    "configure_evaluate_parser",
    "load_trained_model",
    "load_run",
]


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


# ------------------------------------------------------------------------------ train


def configure_train_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="run config (YAML)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument(
        "--resume", action="store_true", help="continue from RUN_DIR.partial/checkpoint.pt"
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config's device")
    p.add_argument("--threads", type=_positive_int, help="torch threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    _setup_logging()
    overrides = {}
    if args.device:
        overrides["device"] = args.device
    if args.threads:
        overrides["threads"] = args.threads
    cfg = load_config(args.config, overrides)
    if cfg.name == "run":
        cfg = RunConfig(**{**cfg.__dict__, "name": Path(args.out).name})
    metrics = train_run(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    logging.getLogger("spikeloc").info(
        "done: test accuracy %.3f, MAE %.2f deg (midpoints), %.2f deg (continuous) -> %s",
        metrics["accuracy"],
        metrics["mae_midpoint_deg"],
        metrics["mae_continuous_deg"],
        args.out,
    )
    return 0


# --------------------------------------------------------------------------- evaluate


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


def configure_evaluate_parser(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="named model preset (basic, tutorial)")
    src.add_argument("--config", help="run config (YAML) describing the model")
    p.add_argument(
        "--weights", required=True, help="model.pt of a run, or an .npz of W1/W2 (W_ih/W_ho)"
    )
    p.add_argument(
        "--samples", type=_positive_int, default=4096, help="test-set size (default 4096)"
    )
    p.add_argument("--seed", type=_int, default=0, help="seed of the fresh test set")
    p.add_argument(
        "--legacy-numpy-seed",
        type=_int,
        default=None,
        help="draw the test set from the notebooks' numpy stream (32844534 = published test set)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    configure_runtime()
    model, cfg = load_trained_model(
        args.weights, preset=args.preset, config=args.config, device=args.device
    )
    device = next(model.parameters()).device
    if args.legacy_numpy_seed is not None:
        data = make_dataset(
            args.samples, cfg.stimulus, legacy_numpy_seed=args.legacy_numpy_seed, device=device
        )
    else:
        data = make_dataset(
            args.samples, cfg.stimulus, generator=seeded_generator(args.seed, "test"), device=device
        )
    with torch.no_grad():
        summary = evaluation.summarise(evaluation.predict(model, data))
    summary.update({"weights": str(args.weights), "seed": args.seed})
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        rates = ", ".join(f"{r:.1f}" for r in summary["hidden_rates_hz"])
        print(f"samples:            {summary['n_samples']}")
        print(
            f"accuracy:           {summary['accuracy'] * 100:.2f}% (chance {summary['chance'] * 100:.1f}%)"
        )
        print(f"MAE (midpoints):    {summary['mae_midpoint_deg']:.3f} deg")
        print(f"MAE (continuous):   {summary['mae_continuous_deg']:.3f} deg")
        print(f"hidden rates (Hz):  {rates}")
    return 0
