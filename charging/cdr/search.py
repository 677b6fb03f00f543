"""Finding CDRs in the outbox for operators: by subscriber, outbox time window and IMS Charging
Identifier, newest first, plus the outbox status (what is still waiting for the sink)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charging.cdr.store import Lag, OutboxRow
from charging.models import CdrOutbox

outbox = CdrOutbox.__table__


@dataclass(frozen=True, slots=True)
class Found:
    row: OutboxRow
    sent_at: datetime | None
    attempts: int


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(
    conn: Connection,
    *,
    subscriber: str | None = None,
    icid: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Found]:
    """CDRs whose partition key (first served subscription id) is ``subscriber``, whose
    ``iMS-Charging-Identifier`` is ``icid``, created in ``[since, until)``; newest first."""
    query = sa.select(
        outbox.c.id,
        outbox.c.cdr_id,
        outbox.c.partition_key,
        outbox.c.payload,
        outbox.c.created_at,
        outbox.c.sent_at,
        outbox.c.attempts,
    )
    if subscriber is not None:
        query = query.where(outbox.c.partition_key == subscriber)
    if icid is not None:
        # The payload is compact JSON (pydantic model_dump_json): match the exact key/value.
        needle = _like_literal(f'"iMS-Charging-Identifier":{_json_string(icid)}')
        query = query.where(outbox.c.payload.like(f"%{needle}%", escape="\\"))
    if since is not None:
        query = query.where(outbox.c.created_at >= since)
    if until is not None:
        query = query.where(outbox.c.created_at < until)
    rows = conn.execute(query.order_by(outbox.c.id.desc()).limit(limit).offset(offset))
    return [Found(OutboxRow(*r[:5]), r.sent_at, int(r.attempts)) for r in rows]


def _json_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def status(conn: Connection) -> tuple[Lag, int, int]:
    """(lag: unsent count and oldest unsent creation time, total rows, rows claimed now)."""
    unsent, oldest_id = conn.execute(
        sa.select(sa.func.count(), sa.func.min(outbox.c.id)).where(outbox.c.sent_at.is_(None))
    ).one()
    oldest = None
    if oldest_id is not None:
        oldest = conn.execute(
            sa.select(outbox.c.created_at).where(outbox.c.id == oldest_id)
        ).scalar_one_or_none()
    total = conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one()
    claimed = conn.execute(
        sa.select(sa.func.count()).where(
            outbox.c.sent_at.is_(None), outbox.c.claimed_by.is_not(None)
        )
    ).scalar_one()
    return Lag(int(unsent), oldest), int(total), int(claimed)
