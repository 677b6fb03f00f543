"""The ``openpcc`` command line: one sub-command module per job under ``openpcc.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from openpcc import __version__

# Each module exposes ``register(subparsers)`` and sets ``func`` on its parsers.
COMMAND_MODULES: tuple[str, ...] = (
    "openpcc.commands.apikey",
    "openpcc.commands.cdr",
    "openpcc.commands.demo",
    "openpcc.commands.ledger",
    "openpcc.commands.run",
    "openpcc.commands.tariff",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openpcc", description=__doc__)
    parser.add_argument("--version", action="version", version=f"openpcc {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
