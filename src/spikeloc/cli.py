"""The ``spikeloc`` command line.

Subcommands::

    spikeloc train CONFIG.yaml --out RUN_DIR [--resume]
    spikeloc train-chunk SPEC.json --out RESULT.json [--device D] [--threads N]
    spikeloc sweep-table RESULT.json ... --out TABLE.csv
    spikeloc evaluate (--preset NAME | --config FILE) --weights FILE --samples N --seed S [--json]
    spikeloc contributors check|build ...
    spikeloc new-module NAME --owner HANDLE --title "..." [--sweep]
    spikeloc bundle export --out B.tar.gz [--configfile F] | bundle import B.tar.gz [...]

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
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
