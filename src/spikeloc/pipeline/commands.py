"""CLI handlers for ``spikeloc train`` and ``spikeloc evaluate``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from spikeloc.core import evaluation
from spikeloc.core.config import LEGACY_SEED_MAX, SEED_MAX, RunConfig, load_config
from spikeloc.core.stimuli import make_dataset
from spikeloc.core.training import seeded_generator, train_run
from spikeloc.engine.runtime import configure_runtime
from spikeloc.pipeline.results import load_trained_model

__all__ = [
    "configure_chunk_spec_parser",
    "configure_evaluate_parser",
    "configure_sweep_table_parser",
    "configure_train_chunk_parser",
    "configure_train_parser",
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


def _seed(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        v = _int(text)
        if not 0 <= v <= limit:
            raise argparse.ArgumentTypeError(f"must be an integer in [0, {limit}], got {text!r}")
        return v

    return parse


# ------------------------------------------------------------------------------ chunks


def configure_chunk_spec_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("module", help="module name (workflow/analyses/<module>.yaml)")
    p.add_argument("group", help="'runs' (the module's single runs) or a sweep's name")
    p.add_argument("index", type=_int, help="chunk number within the group (from 0)")
    p.add_argument("--scale", choices=["paper", "quick"], required=True)
    p.add_argument("--chunk-size", type=_positive_int, default=8, help="the config's default")
    p.add_argument("--digest", help="the spec's digest the workflow expects (refuse others)")
    p.add_argument("--analyses", default="workflow/analyses", help="folder of manifests")
    p.add_argument("--out", required=True, help="chunk spec file to write (JSON)")
    p.set_defaults(func=_cmd_chunk_spec)


def _cmd_chunk_spec(args: argparse.Namespace) -> int:
    from spikeloc.pipeline.chunks import write_spec

    out = write_spec(
        args.module,
        args.group,
        args.index,
        args.out,
        scale=args.scale,
        default_chunk_size=args.chunk_size,
        digest=args.digest,
        analyses_dir=args.analyses,
    )
    print(f"wrote {out}")
    return 0


def configure_train_chunk_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="chunk spec (JSON, written by the workflow's rule chunk_spec)")
    p.add_argument("--out", required=True, help="chunk result file to write (JSON)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=_positive_int, help="torch threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--no-ensemble", action="store_true", help="train every run alone (no ensembles)"
    )
    p.set_defaults(func=_cmd_train_chunk)


def _cmd_train_chunk(args: argparse.Namespace) -> int:
    from spikeloc.pipeline.chunks import train_chunk

    _setup_logging()
    train_chunk(
        args.spec,
        args.out,
        device=args.device,
        threads=args.threads,
        progress=not args.no_progress,
        ensemble=not args.no_ensemble,
        say=lambda line: print(line, flush=True),
    )
    return 0


def configure_sweep_table_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", help="chunk result files of the sweep, in order")
    p.add_argument("--out", required=True, help="the sweep's table (CSV) to write")
    p.set_defaults(func=_cmd_sweep_table)


def _cmd_sweep_table(args: argparse.Namespace) -> int:
    from spikeloc.pipeline.chunks import write_table

    out = write_table(args.results, args.out)
    print(f"wrote {out}")
    return 0


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
    p.add_argument("--seed", type=_seed(SEED_MAX), default=0, help="seed of the fresh test set")
    p.add_argument(
        "--legacy-numpy-seed",
        type=_seed(LEGACY_SEED_MAX),
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
    # the stream the test set came from: a legacy numpy seed replaces the seed
    if args.legacy_numpy_seed is not None:
        summary.update({"weights": str(args.weights), "legacy_numpy_seed": args.legacy_numpy_seed})
    else:
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
