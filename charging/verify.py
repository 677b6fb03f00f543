"""``openpcc ledger verify``: check the ledger invariants over the whole database.

1. Conservation: every balance's journal replays to its ``amount`` and ``reserved``.
2. Credit: ``amount - reserved >= -credit_limit`` for every balance.
3. Reservations: ``reserved`` equals the sum of the balance's reservation rows, and every
   reservation belongs to an open session (none orphaned by a closed or missing session).
4. References: every journal row and reservation names an existing balance, and a journal row
   the balance's own account (the database does not check these: migration charging_0004).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from charging.models import Account, Balance, JournalEntry, Reservation, RoSession


@dataclass(frozen=True, slots=True)
class Breach:
    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.subject}: {self.detail}"


def verify(engine: Engine) -> list[Breach]:
    """Every breach found, in one consistent snapshot (empty list = ledger sound)."""
    b = Balance.__table__
    j = JournalEntry.__table__
    r = Reservation.__table__
    s = RoSession.__table__
    breaches: list[Breach] = []
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        replay = (
            sa.select(
                j.c.balance_id,
                sa.func.sum(j.c.delta_amount).label("amount"),
                sa.func.sum(j.c.delta_reserved).label("reserved"),
            )
            .group_by(j.c.balance_id)
            .subquery()
        )
        held = (
            sa.select(r.c.balance_id, sa.func.sum(r.c.amount).label("held"))
            .group_by(r.c.balance_id)
            .subquery()
        )
        rows = conn.execute(
            sa.select(
                b.c.id,
                b.c.name,
                b.c.amount,
                b.c.reserved,
                b.c.credit_limit,
                sa.func.coalesce(replay.c.amount, 0).label("journal_amount"),
                sa.func.coalesce(replay.c.reserved, 0).label("journal_reserved"),
                sa.func.coalesce(held.c.held, 0).label("held"),
            )
            .outerjoin(replay, replay.c.balance_id == b.c.id)
            .outerjoin(held, held.c.balance_id == b.c.id)
            .order_by(b.c.id)
        ).all()
        for row in rows:
            subject = f"balance {row.id} ({row.name})"
            if int(row.journal_amount) != int(row.amount):
                breaches.append(
                    Breach(
                        "conservation",
                        subject,
                        f"journal replays to amount {row.journal_amount}, "
                        f"balance says {row.amount}",
                    )
                )
            if int(row.journal_reserved) != int(row.reserved):
                breaches.append(
                    Breach(
                        "conservation",
                        subject,
                        f"journal replays to reserved {row.journal_reserved}, "
                        f"balance says {row.reserved}",
                    )
                )
            if int(row.amount) - int(row.reserved) < -int(row.credit_limit):
                breaches.append(
                    Breach(
                        "credit",
                        subject,
                        f"available {int(row.amount) - int(row.reserved)} below "
                        f"-credit_limit {-int(row.credit_limit)}",
                    )
                )
            if int(row.held) != int(row.reserved):
                breaches.append(
                    Breach(
                        "reservations",
                        subject,
                        f"reserved {row.reserved} but reservations hold {row.held}",
                    )
                )
        orphans = conn.execute(
            sa.select(r.c.id, r.c.ro_session_id, s.c.state)
            .outerjoin(s, s.c.id == r.c.ro_session_id)
            .where(sa.or_(s.c.id.is_(None), s.c.state != "open"))
        ).all()
        for orphan in orphans:
            breaches.append(
                Breach(
                    "reservations",
                    f"reservation {orphan.id}",
                    f"session {orphan.ro_session_id} is {orphan.state or 'missing'}",
                )
            )
        breaches += _dangling(conn, b, j, r)
    return breaches


def _dangling(conn: sa.Connection, b: sa.Table, j: sa.Table, r: sa.Table) -> list[Breach]:
    """Journal rows and reservations whose balance (or, for the journal, account) is missing
    or belongs to another account."""
    a = Account.__table__
    journal = conn.execute(
        sa.select(j.c.id, j.c.balance_id, j.c.account_id, b.c.account_id.label("owner"))
        .outerjoin(b, b.c.id == j.c.balance_id)
        .outerjoin(a, a.c.id == j.c.account_id)
        .where(sa.or_(b.c.id.is_(None), a.c.id.is_(None), b.c.account_id != j.c.account_id))
        .order_by(j.c.id)
    ).all()
    held = conn.execute(
        sa.select(r.c.id, r.c.balance_id)
        .outerjoin(b, b.c.id == r.c.balance_id)
        .where(b.c.id.is_(None))
        .order_by(r.c.id)
    ).all()
    return [
        Breach("references", f"journal row {row.id}",
               f"balance {row.balance_id} (account {row.owner or 'missing'}) "
               f"logged for account {row.account_id}")
        for row in journal
    ] + [
        Breach("references", f"reservation {row.id}", f"balance {row.balance_id} is missing")
        for row in held
    ]  # fmt: skip
