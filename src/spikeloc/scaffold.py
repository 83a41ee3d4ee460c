"""Scaffolding of analysis modules (``spikeloc new-module``). Work in progress."""

from __future__ import annotations

import argparse

from spikeloc.errors import SpikelocError


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    raise SpikelocError("new-module: not implemented yet")
