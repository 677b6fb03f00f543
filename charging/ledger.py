"""Balance operations: reserve, settle (debit a reservation), release, direct debit, credit
(top-up/refund) and expiry, each journalled with its cause.

The invariant kept is ``available = amount - reserved >= -credit_limit`` (DESIGN.md §3.2), by
atomic conditional updates that stay correct when several processes share one database:

* an untracked balance changes by ONE ``UPDATE … WHERE <enough credit> RETURNING …``;
* a tracked balance (:meth:`Ledger.track`, read under its account's ``FOR UPDATE`` lock as the
  Ro batches do) changes in memory with the same checks, and :meth:`Ledger.flush` writes all of
  them with one compare-and-swap ``UPDATE … WHERE amount = :old AND reserved = :old`` each
  (``executemany``); if any row moved meanwhile, :class:`LedgerConflict` is raised and the
  caller's transaction must roll back and retry.

Journal rows are buffered and written by :meth:`Ledger.flush` in the same transaction (the
caller commits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charging.bulk import BulkInsert, BulkUpdate, Prebuilt
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


#: No lower bound on the resulting available credit (settling within a hold, crediting).
NO_FLOOR = -(1 << 62)

# One prepared statement for every movement: amount += d_amt, reserved += d_res, on condition
# that the hold stays non-negative and the available credit stays >= floor (atomic: the check
# and the change are one UPDATE, so concurrent transactions and processes cannot overspend).
_MOVE = (
    balances.update()
    .where(
        balances.c.id == sa.bindparam("b_id"),
        balances.c.reserved + sa.bindparam("d_res") >= 0,
        balances.c.amount
        + sa.bindparam("d_amt")
        - (balances.c.reserved + sa.bindparam("d_res"))
        + balances.c.credit_limit
        >= sa.bindparam("floor"),
    )
    .values(
        amount=balances.c.amount + sa.bindparam("d_amt"),
        reserved=balances.c.reserved + sa.bindparam("d_res"),
        updated_at=sa.bindparam("b_now"),
    )
    .returning(
        balances.c.account_id, balances.c.amount, balances.c.reserved, balances.c.credit_limit
    )
)
_SWAP = BulkUpdate(balances, "id", ("amount", "reserved", "updated_at"), ("amount", "reserved"))
_JOURNAL = BulkInsert(
    journal,
    ("balance_id", "account_id", "cause", "delta_amount", "delta_reserved", "amount_after",
     "reserved_after", "session_id", "request_number", "reference", "created_at"),
)  # fmt: skip
#: Locks the accounts ``ids`` (``FOR UPDATE``, in id order).
LOCK = Prebuilt(
    lambda member: (
        sa.select(accounts.c.id)
        .where(member(accounts.c.id, "ids"))
        .order_by(accounts.c.id)
        .with_for_update()
    )
)
_AVAILABLE = sa.select(balances.c.amount - balances.c.reserved + balances.c.credit_limit).where(
    balances.c.id == sa.bindparam("b_id")
)


@dataclass(slots=True)
class _Tracked:
    """A balance read under its account lock, changed in memory until flush."""

    account_id: int
    amount: int
    reserved: int
    credit_limit: int
    old_amount: int
    old_reserved: int


class Ledger:
    """Balance operations inside one open transaction on ``conn``.

    ``latest`` maps each balance touched to its available credit after the last change, so
    callers can plan further holds in the same transaction without reading it back.
    Call :meth:`flush` before committing: it writes the buffered journal rows in one batch.
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.latest: dict[int, int] = {}
        self._journal: list[dict[str, Any]] = []
        self._tracked: dict[int, _Tracked] = {}

    def track(
        self, balance_id: int, account_id: int, amount: int, reserved: int, credit_limit: int
    ) -> None:
        """Change this balance in memory from now on (its row must be locked: read after
        ``lock_accounts`` of its account); :meth:`flush` writes it."""
        if balance_id not in self._tracked:
            self._tracked[balance_id] = _Tracked(
                account_id, amount, reserved, credit_limit, amount, reserved
            )
            self.latest[balance_id] = amount - reserved + credit_limit

    # -- reservations ------------------------------------------------------------------------
    def reserve(self, balance_id: int, amount: int, cause: Cause) -> bool:
        """Hold ``amount`` if the balance can cover it; False (nothing changed) otherwise."""
        if amount < 0:
            raise ValueError("reserve: negative amount")
        if amount == 0:
            return True
        return self._move(balance_id, 0, amount, 0, cause) is not None

    def reserve_up_to(self, balance_id: int, amount: int, cause: Cause) -> int:
        """Hold as much of ``amount`` as the balance can cover now; returns what was held."""
        while amount > 0:
            want = min(amount, max(self.available(balance_id), 0))
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
        debit, floor = used, NO_FLOOR
        if used > held:
            debit = held + min(used - held, max(self.available(balance_id), 0))
            floor = 0
        if self._move(balance_id, -debit, -held, floor, cause) is None:
            raise LedgerError(f"balance {balance_id}: reservation of {held} not held")
        return debit

    def release(self, balance_id: int, held: int, cause: Cause) -> None:
        """Give back a reservation unused."""
        self.settle(balance_id, held, 0, cause)

    # -- direct money movements ------------------------------------------------------------
    def debit(self, balance_id: int, amount: int, cause: Cause) -> bool:
        """Immediate debit without reservation (IEC); False when the balance cannot cover it."""
        if amount < 0:
            raise ValueError("debit: negative amount")
        return self._move(balance_id, -amount, 0, 0, cause) is not None

    def credit(self, balance_id: int, amount: int, cause: Cause) -> int:
        """Add ``amount`` (top-up, refund, provisioning); returns the new amount."""
        if amount < 0:
            raise ValueError("credit: negative amount")
        row = self._move(balance_id, amount, 0, NO_FLOOR, cause)
        if row is None:
            raise LedgerError(f"balance {balance_id} does not exist")
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
            row = self.conn.execute(
                balances.update()
                .where(
                    balances.c.id == balance_id,
                    balances.c.amount == amount,
                    balances.c.reserved == reserved,
                )
                .values(amount=balances.c.reserved, updated_at=self.now)
                .returning(
                    balances.c.account_id,
                    balances.c.amount,
                    balances.c.reserved,
                    balances.c.credit_limit,
                )
            ).first()
            if row is not None:
                self._record(balance_id, row, Cause("expire"), int(reserved) - int(amount), 0)
                touched += 1
        return touched

    # -- reads -----------------------------------------------------------------------------
    def available(self, balance_id: int) -> int:
        """``amount - reserved + credit_limit`` as of now in this transaction."""
        known = self.latest.get(balance_id)
        if known is not None:
            return known
        return int(self.conn.execute(_AVAILABLE, {"b_id": balance_id}).scalar_one())

    def lock_accounts(self, account_ids: Iterable[int]) -> None:
        """Serialise work on these accounts across processes (``FOR UPDATE`` in id order, so two
        transactions never wait on each other crosswise). A no-op lock on SQLite, whose write
        transactions are already exclusive."""
        ids = sorted(set(account_ids))
        if ids and self.conn.dialect.name != "sqlite":
            self.conn.execute(LOCK(self.conn), {"ids": ids}).all()

    def flush(self) -> None:
        """Write tracked balances and the buffered journal rows (call before commit)."""
        self.flush_balances()
        self.flush_journal()

    def flush_balances(self) -> None:
        """Write tracked balances (compare-and-swap); :class:`LedgerConflict` if one moved."""
        self.swap_balances()()

    def swap_balances(self) -> Callable[[], None]:
        """Write tracked balances (compare-and-swap; collected inside
        ``charging.bulk.combined_writes``); returns the check to call afterwards (before
        commit): :class:`LedgerConflict` if one moved."""
        moved = [
            {
                "id": balance_id,
                "was_amount": t.old_amount,
                "was_reserved": t.old_reserved,
                "amount": t.amount,
                "reserved": t.reserved,
                "updated_at": self.now,
            }
            for balance_id, t in self._tracked.items()
            if (t.amount, t.reserved) != (t.old_amount, t.old_reserved)
        ]
        updated = _SWAP(self.conn, moved, exact=True)

        def check() -> None:
            if updated() != len(moved):
                raise LedgerConflict(f"{len(moved) - updated()} balance(s) moved meanwhile")
            for row in moved:
                tracked = self._tracked[row["id"]]
                tracked.old_amount, tracked.old_reserved = row["amount"], row["reserved"]

        return check

    def flush_journal(self) -> None:
        """Write the buffered journal rows."""
        if self._journal:
            _JOURNAL(self.conn, self._journal)
            self._journal = []

    # -- internals -------------------------------------------------------------------------
    def _move(
        self, balance_id: int, d_amount: int, d_reserved: int, floor: int, cause: Cause
    ) -> Any:
        tracked = self._tracked.get(balance_id)
        if tracked is not None:
            amount, reserved = tracked.amount + d_amount, tracked.reserved + d_reserved
            if reserved < 0 or amount - reserved + tracked.credit_limit < floor:
                return None
            tracked.amount, tracked.reserved = amount, reserved
            after = _After(tracked.account_id, amount, reserved, tracked.credit_limit)
            self._record(balance_id, after, cause, d_amount, d_reserved)
            return after
        row = self.conn.execute(
            _MOVE,
            {
                "b_id": balance_id,
                "d_amt": d_amount,
                "d_res": d_reserved,
                "floor": floor,
                "b_now": self.now,
            },
        ).first()
        if row is not None:
            self._record(balance_id, row, cause, d_amount, d_reserved)
        return row

    def _record(
        self,
        balance_id: int,
        row: Any,
        cause: Cause,
        delta_amount: int,
        delta_reserved: int,
    ) -> None:
        self.latest[balance_id] = int(row.amount) - int(row.reserved) + int(row.credit_limit)
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


class LedgerConflict(RuntimeError):
    """A tracked balance was changed by someone else: roll back and retry the transaction."""


class _After(NamedTuple):
    account_id: int
    amount: int
    reserved: int
    credit_limit: int
