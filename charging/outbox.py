"""The CDR outbox: one row per CDR, written in the caller's transaction (the final debit's),
read and exported by the CDR exporter (DESIGN.md §3.4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from charging.models import CdrOutbox, utcnow
from schemas.cdr import ChargingDataRecord

outbox_t = CdrOutbox.__table__


def row(record: ChargingDataRecord) -> dict[str, Any]:
    """The outbox row of ``record`` (for callers that insert rows in bulk)."""
    return {
        "cdr_id": record.cdr_id,
        "partition_key": record.partition_key[:128],
        "payload": record.model_dump_json(by_alias=True),
        "created_at": utcnow(),
        "attempts": 0,
    }


def enqueue(conn_or_session: Connection | Session, record: ChargingDataRecord) -> None:
    """Queue ``record`` for export inside the caller's open transaction."""
    conn_or_session.execute(outbox_t.insert().values(**row(record)))
