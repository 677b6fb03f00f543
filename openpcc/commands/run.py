"""``openpcc run``: start OpenPCC on the settings from the environment (embedded defaults).

openpcc run [--log-level LEVEL]

Diameter listens on OPENPCC_DIAMETER_HOST:OPENPCC_DIAMETER_PORT (0.0.0.0:3868) or on each entry
of OPENPCC_DIAMETER_LISTENERS; SIGINT/SIGTERM send DPR to every peer and exit 0.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from openpcc import logs
from openpcc.app import run


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("run", help="start OpenPCC (Diameter node and domains)")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level (default INFO)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    try:
        return run()
    except OSError as exc:  # e.g. the Diameter port is taken: one clear line, no traceback
        logging.getLogger("openpcc").error("event=start_failed error=%r", str(exc))
        return 1
