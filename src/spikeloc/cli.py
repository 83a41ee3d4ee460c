"""The ``spikeloc`` command line.

Subcommands::

    spikeloc train CONFIG.yaml --out RUN_DIR [--resume]
    spikeloc train-chunk SPEC.json --out RESULT.json [--device D] [--threads N]
    spikeloc sweep-table RESULT.json ... --out TABLE.csv
    spikeloc evaluate (--preset NAME | --config FILE) --weights FILE --samples N --seed S [--json]
    spikeloc contributors check|build ...
    spikeloc new-module NAME --owner HANDLE --title "..." [--sweep]
    spikeloc bundle export --out B.tar.gz [--configfile F] | bundle import B.tar.gz [...]
    spikeloc config-keys [--preset NAME]

``spikeloc`` alone, or ``spikeloc COMMAND --help``, prints the commands with examples.

Every user error (bad config, bad weights file, bad contributor file, bad argument) is printed
as one line ``spikeloc: error: <file>: <field>: <problem>`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from spikeloc.errors import SpikelocError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikeloc", description="SNN models of sound localisation (COMOB reproduction)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    from spikeloc.pipeline import commands

    commands.configure_train_parser(
        sub.add_parser("train", help="train a model from a YAML config")
    )
    commands.configure_evaluate_parser(
        sub.add_parser("evaluate", help="evaluate weights on a fresh test set")
    )
    commands.configure_chunk_spec_parser(
        sub.add_parser("chunk-spec", help="write a chunk spec from its module's manifest")
    )
    commands.configure_train_chunk_parser(
        sub.add_parser("train-chunk", help="train the runs of a chunk spec (the workflow's jobs)")
    )
    commands.configure_sweep_table_parser(
        sub.add_parser("sweep-table", help="write a sweep's table from its chunk results")
    )

    from spikeloc.pipeline import authorship, bundle, scaffold

    bundle.configure_parser(
        sub.add_parser("bundle", help="export/import the finished results (train here, plot there)")
    )

    authorship.configure_parser(
        sub.add_parser("contributors", help="validate contributor files, build author lists")
    )
    scaffold.configure_parser(sub.add_parser("new-module", help="scaffold a new analysis module"))
    from spikeloc.pipeline import leaderboard

    leaderboard.configure_parser(
        sub.add_parser("leaderboard", help="rank every registered localiser on one protocol")
    )
    keys = sub.add_parser("config-keys", help="list every run-config key, its values and default")
    keys.add_argument("--preset", help="show the values of this preset (basic, tutorial)")
    keys.set_defaults(func=_config_keys)
    _add_examples(parser, sub)
    return parser


#: Worked examples shown by ``spikeloc COMMAND --help`` (and ``spikeloc --help``).
EXAMPLES = {
    "train": """\
examples:
  printf 'preset: basic\\nseed: 1\\n' > run.yaml
  spikeloc train run.yaml --out runs/basic_seed1          # model.pt, metrics.json, history.csv
  spikeloc train run.yaml --out runs/basic_seed1 --resume # continue a killed run
run-config keys: `spikeloc config-keys` (with --preset basic: that preset's values)""",
    "evaluate": """\
examples:
  spikeloc evaluate --preset basic --weights data/published-basic-model/weights.npz \\
      --samples 4096 --seed 0 --json
  spikeloc evaluate --config run.yaml --weights runs/basic_seed1/model.pt --samples 1024 --seed 3""",
    "new-module": """\
example:
  spikeloc new-module tau_study --owner your-github-login --title "Hidden time constants" --sweep
then: snakemake -n figures   (lists rule analyse_tau_study); workflow/README.md walks through it""",
    "contributors": """\
examples:
  spikeloc contributors check contributors workflow/analyses
see contributors/README.md for the file format""",
    "leaderboard": """\
examples:
  spikeloc leaderboard --scale quick          # every registered localiser on one protocol
  spikeloc leaderboard --entry jeffress --json
entries are declared in module manifests (`leaderboard:`); workflow/README.md says how""",
    "bundle": """\
examples (train on the cluster, write the paper anywhere):
  spikeloc bundle export --out results-quick.tar.gz --configfile config/quick.yaml
  spikeloc bundle import results-quick.tar.gz --configfile config/quick.yaml
  snakemake -n figures paper --configfile config/quick.yaml   # no training job left""",
    "config-keys": """\
examples:
  spikeloc config-keys                  # defaults
  spikeloc config-keys --preset basic   # the paper's minimal model""",
}

_TOP_EPILOG = """\
start here:
  snakemake figures paper --configfile config/quick.yaml   # the whole pipeline in minutes
  spikeloc train run.yaml --out runs/my_run                # one network from a run config
  spikeloc config-keys --preset basic                      # every run-config key
`spikeloc COMMAND --help` shows examples; README.md and docs/ explain the rest."""


def _add_examples(parser: argparse.ArgumentParser, sub: argparse._SubParsersAction) -> None:
    parser.epilog = _TOP_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    for name, sub_parser in sub.choices.items():
        if name in EXAMPLES:
            sub_parser.epilog = EXAMPLES[name]
            sub_parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _config_keys(args: argparse.Namespace) -> int:
    from spikeloc.core.config import PRESETS, config_keys
    from spikeloc.errors import ConfigError

    if args.preset is not None and args.preset not in PRESETS:
        raise ConfigError("--preset", "<argument>", f"unknown preset {args.preset!r}; known: {sorted(PRESETS)}")
    rows = config_keys(args.preset)
    width = max(len(k) for k, _, _ in rows)
    for key, words, value in rows:
        print(f"{key:<{width}}  {value!r:<12}  {words}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # `spikeloc` alone: what it can do, not an argparse error
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpikelocError as exc:
        print(f"spikeloc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikeloc: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
