"""Balance operations: reserve, settle (debit a reservation), release, direct debit, credit
(top-up/refund) and expiry, each journalled with its cause.

Every change is ONE atomic conditional ``UPDATE … WHERE <enough credit> RETURNING …`` so it stays
correct when several processes share one PostgreSQL database; the journal rows are buffered and
written by :meth:`Ledger.flush` inside the same transaction (the caller commits). The invariant
kept is ``available = amount - reserved >= -credit_limit`` (DESIGN.md §3.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charging.models import Account, Balance, JournalEntry

balances = Balance.__table__
journal = JournalEntry.__table__
accounts = Account.__table__


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a balance changed: journal cause plus the Diameter (or API) reference."""

    kind: str
    session_id: str | None = None
    request_number: int | None = None
    reference: str | None = None


class Ledger:
    """Balance operations inside one open transaction on ``conn``.

    Call :meth:`flush` before committing: it writes the buffered journal rows in one batch.
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self._journal: list[dict[str, Any]] = []

    # -- reservations ------------------------------------------------------------------------
    def reserve(self, balance_id: int, amount: int, cause: Cause) -> bool:
        """Hold ``amount`` if the balance can cover it; False (nothing changed) otherwise."""
        if amount < 0:
            raise ValueError("reserve: negative amount")
        if amount == 0:
            return True
        row = self._update(
            balance_id,
            {"reserved": balances.c.reserved + amount},
            balances.c.amount - balances.c.reserved + balances.c.credit_limit >= amount,
        )
        if row is None:
            return False
        self._record(balance_id, row, cause, 0, amount)
        return True

    def reserve_up_to(self, balance_id: int, amount: int, cause: Cause) -> int:
        """Hold as much of ``amount`` as the balance can cover now; returns what was held."""
        while amount > 0:
            available = self.available(balance_id)
            want = min(amount, max(available, 0))
            if want <= 0:
                return 0
            if self.reserve(balance_id, want, cause):
                return want
        return 0

    def settle(self, balance_id: int, held: int, used: int, cause: Cause) -> int:
        """Debit ``used`` from a reservation of ``held`` and release the rest, atomically.

        Usage beyond the reservation is debited only as far as the balance can cover it (the
        client over-ran its grant; RFC 4006 §5.6); returns the amount actually debited.
        """
        if held < 0 or used < 0:
            raise ValueError("settle: negative amount")
        debit = used
        if used > held:
            extra = min(used - held, max(self.available(balance_id), 0))
            debit = held + extra
        row = self._update(
            balance_id,
            {"amount": balances.c.amount - debit, "reserved": balances.c.reserved - held},
            sa.and_(
                balances.c.reserved >= held,
                balances.c.amount - balances.c.reserved + balances.c.credit_limit >= debit - held,
            ),
        )
        if row is None:
            raise LedgerError(f"balance {balance_id}: reservation of {held} not held")
        self._record(balance_id, row, cause, -debit, -held)
        return debit

    def release(self, balance_id: int, held: int, cause: Cause) -> None:
        """Give back a reservation unused."""
        self.settle(balance_id, held, 0, cause)

    # -- direct money movements ------------------------------------------------------------
    def debit(self, balance_id: int, amount: int, cause: Cause) -> bool:
        """Immediate debit without reservation (IEC); False when the balance cannot cover it."""
        if amount < 0:
            raise ValueError("debit: negative amount")
        row = self._update(
            balance_id,
            {"amount": balances.c.amount - amount},
            balances.c.amount - balances.c.reserved + balances.c.credit_limit >= amount,
        )
        if row is None:
            return False
        self._record(balance_id, row, cause, -amount, 0)
        return True

    def credit(self, balance_id: int, amount: int, cause: Cause) -> int:
        """Add ``amount`` (top-up, refund, provisioning); returns the new amount."""
        if amount < 0:
            raise ValueError("credit: negative amount")
        row = self._update(balance_id, {"amount": balances.c.amount + amount}, sa.true())
        if row is None:
            raise LedgerError(f"balance {balance_id} does not exist")
        self._record(balance_id, row, cause, amount, 0)
        return int(row.amount)

    def expire_due(self) -> int:
        """Remove the unreserved remainder of every bucket past its ``valid_until``; returns the
        number of buckets touched. Held credit stays until its reservation settles."""
        due = self.conn.execute(
            sa.select(balances.c.id, balances.c.amount, balances.c.reserved).where(
                balances.c.valid_until <= self.now, balances.c.amount > balances.c.reserved
            )
        ).all()
        touched = 0
        for balance_id, amount, reserved in due:
            # Optimistic: only if nobody moved the bucket since we read it (else next sweep).
            row = self._update(
                balance_id,
                {"amount": balances.c.reserved},
                sa.and_(balances.c.amount == amount, balances.c.reserved == reserved),
            )
            if row is not None:
                self._record(balance_id, row, Cause("expire"), int(reserved) - int(amount), 0)
                touched += 1
        return touched

    # -- reads -----------------------------------------------------------------------------
    def available(self, balance_id: int) -> int:
        """``amount - reserved + credit_limit`` as of now in this transaction."""
        value = self.conn.execute(
            sa.select(balances.c.amount - balances.c.reserved + balances.c.credit_limit).where(
                balances.c.id == balance_id
            )
        ).scalar_one()
        return int(value)

    def lock_accounts(self, account_ids: Iterable[int]) -> None:
        """Serialise work on these accounts across processes (``FOR UPDATE`` in id order, so two
        transactions never wait on each other crosswise). A no-op lock on SQLite, whose write
        transactions are already exclusive."""
        ids = sorted(set(account_ids))
        if ids and self.conn.dialect.name != "sqlite":
            self.conn.execute(
                sa.select(accounts.c.id)
                .where(accounts.c.id.in_(ids))
                .order_by(accounts.c.id)
                .with_for_update()
            ).all()

    def flush(self) -> None:
        """Write the buffered journal rows (call before commit)."""
        if self._journal:
            self.conn.execute(journal.insert(), self._journal)
            self._journal = []

    # -- internals -------------------------------------------------------------------------
    def _update(
        self,
        balance_id: int,
        values: dict[str, Any],
        condition: sa.ColumnElement[bool],
    ) -> sa.Row[Any] | None:
        returning = [balances.c.account_id, balances.c.amount, balances.c.reserved]
        statement = (
            balances.update()
            .where(balances.c.id == balance_id, condition)
            .values(**values, updated_at=self.now)
            .returning(*returning)
        )
        return self.conn.execute(statement).first()

    def _record(
        self,
        balance_id: int,
        row: sa.Row[Any],
        cause: Cause,
        delta_amount: int,
        delta_reserved: int,
    ) -> None:
        self._journal.append(
            {
                "balance_id": balance_id,
                "account_id": int(row.account_id),
                "cause": cause.kind,
                "delta_amount": delta_amount,
                "delta_reserved": delta_reserved,
                "amount_after": int(row.amount),
                "reserved_after": int(row.reserved),
                "session_id": cause.session_id,
                "request_number": cause.request_number,
                "reference": cause.reference,
                "created_at": self.now,
            }
        )


class LedgerError(RuntimeError):
    """A ledger operation found the database in a state it must never be in."""
