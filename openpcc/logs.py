"""Process-wide logging: one line per event, third-party chatter kept at WARNING."""

from __future__ import annotations

import logging

# Libraries that log routine work (job runs, broker metadata, migrations) at INFO.
QUIET_LOGGERS = ("apscheduler", "kafka", "alembic")


def configure(level: str | int = "INFO") -> None:
    """Log ``level`` and above as ``time level logger message``; quiet the chatty libraries."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if level not in ("DEBUG", logging.DEBUG):
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
