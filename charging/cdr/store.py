"""Claiming and marking ``cdr_outbox`` rows (the exporter's only access to the database).

Two claiming strategies, one contract: a claimed batch is the oldest unsent rows nobody else is
exporting, in ``id`` order; ``mark_sent`` records that the sink made them durable; ``release``
gives them back after a failed publish.

* PostgreSQL: the oldest unsent rows are taken with ``FOR UPDATE SKIP LOCKED`` and updated to
  "sent" in a transaction held open while the batch is published: committed once the sink
  acknowledged it, rolled back otherwise. Concurrent exporters skip each other's rows, and when an
  exporter dies the server rolls its transaction back, so its rows are claimable again at once.
* SQLite (one writer at a time): a claim is an ``UPDATE ... RETURNING`` of ``claimed_by`` /
  ``claimed_at`` committed before publishing. A claim older than ``claim_timeout`` (its exporter
  died) is taken over; a restarted exporter with the same name takes its own claims back at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from charging.models import CdrOutbox

outbox = CdrOutbox.__table__


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One CDR as stored in the outbox (``payload`` is the record's JSON)."""

    id: int
    cdr_id: str
    partition_key: str
    payload: str
    created_at: datetime


@dataclass(slots=True)
class Batch:
    """Rows claimed by one exporter; on PostgreSQL it owns the open transaction."""

    rows: list[OutboxRow]
    connection: Connection | None = field(default=None, repr=False)

    @property
    def ids(self) -> list[int]:
        return [row.id for row in self.rows]


@dataclass(frozen=True, slots=True)
class Lag:
    """What is waiting: the unsent row count and the creation time of the oldest unsent row."""

    unsent: int
    oldest_created_at: datetime | None

    def oldest_age_seconds(self, now: datetime) -> float:
        if self.oldest_created_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_created_at).total_seconds())


_COLUMNS = (
    outbox.c.id,
    outbox.c.cdr_id,
    outbox.c.partition_key,
    outbox.c.payload,
    outbox.c.created_at,
)


_PG_CLAIM = (
    sa.text(
        """
        UPDATE cdr_outbox
           SET sent_at = :now, claimed_by = :owner, claimed_at = :now, attempts = attempts + 1
         WHERE id = ANY(ARRAY(
               SELECT id FROM cdr_outbox WHERE sent_at IS NULL AND id > :after
                ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED))
        RETURNING id, cdr_id, partition_key, payload, created_at
        """
    )
    .bindparams(
        sa.bindparam("now", type_=CdrOutbox.__table__.c.sent_at.type),
        sa.bindparam("owner", type_=sa.String()),
        sa.bindparam("limit", type_=sa.Integer()),
        sa.bindparam("after", type_=sa.BigInteger()),
    )
    .columns(*_COLUMNS)
)


def _rows(result: sa.CursorResult | sa.Result) -> list[OutboxRow]:
    return [OutboxRow(*r) for r in result.all()]  # one fetchall, not a fetchone per row


class OutboxStore:
    """The outbox as seen by one exporter named ``owner``."""

    def __init__(self, engine: Engine, owner: str, claim_timeout: timedelta) -> None:
        self.engine = engine
        self.owner = owner[:64]
        self.claim_timeout = claim_timeout
        self.locking = engine.dialect.name == "postgresql"

    def claim(self, limit: int, after: int = 0) -> Batch:
        """Claim up to ``limit`` of the oldest unsent rows with ``id > after`` (an empty batch
        when there are none). ``after`` lets an exporter with batches in flight start past them
        instead of stepping over its own locked rows; 0 = from the oldest."""
        if self.locking:
            return self._claim_locking(limit, after)
        return self._claim_column(limit, after)

    def _claim_locking(self, limit: int, after: int) -> Batch:
        # One statement claims the rows and writes their sent state, in a transaction that is
        # committed only once the sink acknowledged them (mark_sent) and rolled back otherwise:
        # each row is written once. Until the commit, other exporters skip the locked rows and
        # every reader still sees them unsent. ``= ANY(ARRAY(...))`` keeps the plan on the
        # indexes (an ``IN (subquery)`` may hash-join over the whole, ever-growing table).
        now = datetime.now(UTC)
        statement = _PG_CLAIM.bindparams(now=now, owner=self.owner, limit=limit, after=after)
        connection = self.engine.connect()
        try:
            # Losing this commit in a database crash only means the rows are exported again
            # (same cdrId; consumers dedupe), so it need not wait for the WAL flush.
            connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            rows = _rows(connection.execute(statement))
        except BaseException:
            connection.close()
            raise
        if not rows:
            connection.rollback()
            connection.close()
            return Batch([])
        rows.sort(key=lambda row: row.id)
        return Batch(rows, connection)

    def release_own_claims(self) -> None:
        """At start-up: free the claims a previous run under the same name left behind."""
        if self.locking:
            return
        statement = (
            outbox.update()
            .where(outbox.c.sent_at.is_(None), outbox.c.claimed_by == self.owner)
            .values(claimed_by=None, claimed_at=None)
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def _claim_column(self, limit: int, after: int) -> Batch:
        now = datetime.now(UTC)
        claimable = sa.or_(
            outbox.c.claimed_by.is_(None),
            outbox.c.claimed_at < now - self.claim_timeout,
        )
        oldest = (
            sa.select(outbox.c.id)
            .where(outbox.c.sent_at.is_(None), outbox.c.id > after, claimable)
            .order_by(outbox.c.id)
            .limit(limit)
            .scalar_subquery()
        )
        statement = (
            outbox.update()
            .where(outbox.c.id.in_(oldest))
            .values(claimed_by=self.owner, claimed_at=now, attempts=outbox.c.attempts + 1)
            .returning(*_COLUMNS)
        )
        with self.engine.begin() as connection:
            rows = _rows(connection.execute(statement))
        rows.sort(key=lambda row: row.id)
        return Batch(rows)

    def mark_sent(self, batch: Batch) -> None:
        """Record that the sink acknowledged every row of ``batch`` (ends its claim)."""
        if not batch.rows:
            return
        if batch.connection is not None:  # PostgreSQL: the claim wrote the sent state
            try:
                batch.connection.commit()
            finally:
                batch.connection.close()
                batch.connection = None
            return
        statement = (
            outbox.update()
            .where(outbox.c.id.in_(batch.ids), outbox.c.sent_at.is_(None))
            .values(sent_at=datetime.now(UTC))
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def release(self, batch: Batch) -> None:
        """Give a batch back after a failed publish; the attempt is counted."""
        if not batch.rows:
            return
        if batch.connection is not None:
            try:
                batch.connection.rollback()
            finally:
                batch.connection.close()
                batch.connection = None
            counted = outbox.update().values(attempts=outbox.c.attempts + 1)
        else:
            counted = outbox.update().values(claimed_by=None, claimed_at=None)
        statement = counted.where(outbox.c.id.in_(batch.ids), outbox.c.sent_at.is_(None))
        with self.engine.begin() as connection:
            connection.execute(statement)

    def lag(self) -> Lag:
        """Unsent rows and the age of the oldest (for the lag metrics)."""
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.id)).where(
            outbox.c.sent_at.is_(None)
        )
        with self.engine.connect() as connection:
            count, oldest_id = connection.execute(query).one()
            oldest = None
            if oldest_id is not None:
                oldest = connection.execute(
                    sa.select(outbox.c.created_at).where(outbox.c.id == oldest_id)
                ).scalar_one_or_none()
        return Lag(int(count), oldest)


def iter_window(
    engine: Engine,
    since: datetime | None = None,
    until: datetime | None = None,
    chunk: int = 5000,
) -> Iterator[OutboxRow]:
    """Every outbox row (sent or not) created in ``[since, until)``, in ``id`` order, streamed in
    chunks by keyset pagination so the table is never loaded whole."""
    last_id = 0
    while True:
        query = sa.select(*_COLUMNS).where(outbox.c.id > last_id)
        if since is not None:
            query = query.where(outbox.c.created_at >= since)
        if until is not None:
            query = query.where(outbox.c.created_at < until)
        with engine.connect() as connection:
            rows: Sequence[OutboxRow] = _rows(
                connection.execute(query.order_by(outbox.c.id).limit(chunk))
            )
        yield from rows
        if len(rows) < chunk:
            return
        last_id = rows[-1].id
