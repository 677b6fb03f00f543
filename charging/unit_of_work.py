"""The state one batch transaction works on, read in a few set-based queries after the account
locks are taken, changed in memory by the Ro processor, and written back in a few
``executemany`` statements before commit (balances excepted: every balance movement is its own
atomic conditional UPDATE in charging.ledger).

Everything here belongs to one transaction: a batch that is re-run starts from a fresh context.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from charging import store
from charging.bulk import (
    BulkDelete,
    BulkInsert,
    BulkUpdate,
    Prebuilt,
    RowsMoved,
    combined_writes,
    fetch_all,
)
from charging.grants import WALLETS, Wallet
from charging.ledger import LOCK, Ledger, LedgerConflict
from charging.models import (
    CcrOutcome,
    CdrOutbox,
    PeriodUsage,
    Reservation,
    RoSession,
    SessionUsage,
)

sessions_t = RoSession.__table__
reservations_t = Reservation.__table__
usage_t = SessionUsage.__table__
outcomes_t = CcrOutcome.__table__
outbox_t = CdrOutbox.__table__
periods_t = PeriodUsage.__table__

_SESSION_FIELDS = (
    "state", "charging_type", "last_request_number", "updated_at", "expires_at", "closed_at",
    "close_cause", "cdr_sequence",
)  # fmt: skip
_USAGE_FIELDS = (
    "time_usage", "volume_uplink", "volume_downlink", "service_units", "charge", "priced_units",
    "first_usage_at", "last_usage_at",
)  # fmt: skip
# Reads, built once per dialect (see charging.bulk.Prebuilt).
_OUTCOME_COLUMNS = (outcomes_t.c.session_id, outcomes_t.c.request_number, outcomes_t.c.answer)
# Stored answers of the batch's (Session-Id, CC-Request-Number) pairs (usually none: only a
# retransmission has one); elsewhere every answer of the batch's sessions, matched in Python.
_OUTCOMES = Prebuilt(
    lambda member: sa.select(*_OUTCOME_COLUMNS).where(member(outcomes_t.c.session_id, "ids")),
    postgresql=lambda: sa.select(*_OUTCOME_COLUMNS).where(
        sa.tuple_(outcomes_t.c.session_id, outcomes_t.c.request_number).in_(
            sa.select(
                sa.func.unnest(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String))),
                sa.func.unnest(sa.bindparam("numbers", type_=postgresql.ARRAY(sa.BigInteger))),
            )
        )
    ),
)


def _of_sessions(table: sa.Table) -> Prebuilt:
    """The rows of ``table`` of the sessions ``ids`` (by Session-Id: the session's key may not
    be known yet), in no particular order. On PostgreSQL the sessions' keys are found first
    (an InitPlan) and the rows looked up by them: a join would let a generic plan, which
    knows neither how many sessions nor how many rows, scan all of ``table`` instead (holds
    and usage only ever grow, or churn into dead rows)."""
    by_key = sa.select(sessions_t.c.id).where(
        sessions_t.c.session_id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String)))
    )
    return Prebuilt(
        lambda member: (
            sa.select(table)
            .join(sessions_t, sessions_t.c.id == table.c.ro_session_id)
            .where(member(sessions_t.c.session_id, "ids"))
        ),
        postgresql=lambda: sa.select(table).where(
            table.c.ro_session_id == sa.any_(sa.func.array(by_key.scalar_subquery()))
        ),
    )


_HOLDS = _of_sessions(reservations_t)
_USAGE = _of_sessions(usage_t)
_HOLD_KEYS = tuple(c.name for c in reservations_t.c)
_first = itemgetter(0)  # the id, first column of reservations and session_usage
_USAGE_KEYS = tuple(c.name for c in usage_t.c)
_PERIOD_KEYS = tuple(c.name for c in periods_t.c)
_PERIODS = Prebuilt(
    lambda member: sa.select(periods_t).where(
        member(periods_t.c.subscriber_id, "subs"), member(periods_t.c.period, "names")
    )
)

_UPDATE_SESSION = BulkUpdate(sessions_t, "id", _SESSION_FIELDS)
# Service-Information changes only when a CDR is written: not re-serialised on every CCR.
_UPDATE_SESSION_INFO = BulkUpdate(sessions_t, "id", (*_SESSION_FIELDS, "service_information"))
_UPDATE_USAGE = BulkUpdate(usage_t, "id", _USAGE_FIELDS)
_INSERT_USAGE = BulkInsert(
    usage_t, ("ro_session_id", "service_key", "rating_group", "service_id", *_USAGE_FIELDS)
)
_UPDATE_PERIOD = BulkUpdate(periods_t, "id", ("units",))
_INSERT_PERIOD = BulkInsert(periods_t, ("subscriber_id", "service", "period", "units"))
_INSERT_HOLD = BulkInsert(
    reservations_t,
    ("ro_session_id", "service_key", "balance_id", "amount", "granted_units", "unit",
     "granted_at", "expires_at", "details"),
)  # fmt: skip
_DELETE_HOLD = BulkDelete(reservations_t, "id")
_INSERT_OUTBOX = BulkInsert(
    outbox_t, ("cdr_id", "partition_key", "payload", "created_at", "attempts")
)
_INSERT_OUTCOME = BulkInsert(
    outcomes_t,
    ("session_id", "request_number", "request_type", "result_code", "answer", "created_at"),
)


@dataclass(slots=True)
class SessionState:
    """A session row, its subscriber's subscription, its holds and its usage per service."""

    row: dict[str, Any]
    subscription: store.Subscription
    reservations: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def pk(self) -> int:
        return int(self.row["id"])

    def holds(self, service_key: str | None = None) -> list[dict[str, Any]]:
        return [
            r for r in self.reservations if service_key is None or r["service_key"] == service_key
        ]


@dataclass(slots=True)
class BatchContext:
    """The unit of work of one batch transaction."""

    now: datetime
    outcomes: dict[tuple[str, int], bytes] = field(default_factory=dict)
    new_outcomes: list[dict[str, Any]] = field(default_factory=list)
    subscriptions: dict[tuple[tuple[int, str], ...], store.Subscription | None] = field(
        default_factory=dict
    )
    states: dict[str, SessionState] = field(default_factory=dict)
    #: Sessions inserted for this batch's CCR-Is, not yet taken by their request.
    fresh: set[str] = field(default_factory=set)
    wallets: dict[int, Wallet] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    #: Subscribers of the batch's existing sessions (as found before the locks).
    owners: set[int] = field(default_factory=set)
    #: period_usage rows by (subscriber id, service, period).
    periods: dict[tuple[int, str, str], dict[str, Any]] = field(default_factory=dict)
    #: (subscriber id, period) whose counters were read; others are read on first need.
    _periods_read: set[tuple[int, str]] = field(default_factory=set)
    _conn: Connection | None = None
    _dropped: list[int] = field(default_factory=list)
    _added: list[dict[str, Any]] = field(default_factory=list)
    _dirty: dict[int, SessionState] = field(default_factory=dict)
    _dirty_info: dict[int, SessionState] = field(default_factory=dict)

    # -- reading -------------------------------------------------------------------------------
    def load(
        self, conn: Connection, ledger: Ledger, session_ids: Iterable[str],
        requests: Iterable[tuple[str, int]], account_ids: Iterable[int],
        subscriber_ids: Iterable[int], periods: Iterable[str],
        then: tuple[str, Any] | None = None,
    ) -> list[Sequence[Any]]:  # fmt: skip
        """Lock the accounts, then read the stored outcomes of ``requests`` (Session-Id,
        CC-Request-Number), the sessions (with holds and usage), wallets and the counters of
        ``periods`` (those of another period, or left out, are read on first need): one round
        trip on PostgreSQL (charging.bulk.fetch_all), which also runs the statement ``then``
        last (PostgreSQL only) and returns its rows."""
        self._conn = conn
        sids, accounts = sorted(set(session_ids)), sorted(set(account_ids))
        pairs = sorted(set(requests))
        subs, names = set(subscriber_ids), sorted(set(periods))
        queries: list[tuple[Prebuilt, dict[str, Any]]] = []
        if accounts and conn.dialect.name != "sqlite":  # SQLite: the transaction is exclusive
            queries.append((LOCK, {"ids": accounts}))
        if sids:
            ids = {"ids": sids}
            wanted = {"ids": [sid for sid, _ in pairs], "numbers": [n for _, n in pairs]}
            queries += [(_OUTCOMES, wanted), (store.SESSIONS_WITH_SUBSCRIPTIONS, ids),
                        (_HOLDS, ids), (_USAGE, ids)]  # fmt: skip
        if accounts:
            queries.append((WALLETS, {"ids": accounts, "now": self.now}))
        if subs and names:
            queries.append((_PERIODS, {"subs": sorted(subs), "names": names}))
        if then is not None:
            queries.append(then)
        results = iter(fetch_all(conn, queries))
        if accounts and conn.dialect.name != "sqlite":
            next(results)
        if sids:
            for sid, number, answer in next(results):
                self.outcomes[(sid, int(number))] = bytes(answer)
            for row in store.sessions_with_subscriptions(next(results)):
                self.states[row["session_id"]] = SessionState(row, row.pop("subscription"))
            by_pk = {state.pk: state for state in self.states.values()}
            for r in sorted(next(results), key=_first):  # by id: the order they were made
                hold = dict(zip(_HOLD_KEYS, r, strict=True))
                by_pk[hold["ro_session_id"]].reservations.append(hold)
            for u in sorted(next(results), key=_first):
                usage = dict(zip(_USAGE_KEYS, u, strict=True))
                by_pk[usage["ro_session_id"]].usage[usage["service_key"]] = usage
        if accounts:
            rows: dict[int, list[Sequence[Any]]] = {a: [] for a in accounts}
            for row in next(results):
                rows[int(row[0])].append(row)
            for account_id, account_rows in rows.items():
                self.wallets[account_id] = Wallet.from_rows(account_rows, ledger)
        if subs and names:
            self._periods(next(results), subs, names)
        last = next(results) if then is not None else []
        # A session another node opened after the batch's accounts were looked up.
        late = {s.subscription.subscriber_id for s in self.states.values()} - subs
        if late and names:
            self.load_periods(conn, late, names)
        return last

    def load_periods(
        self, conn: Connection, subscriber_ids: Iterable[int], periods: Iterable[str]
    ) -> None:
        """Read the period counters of these subscribers (under their accounts' locks)."""
        subs, names = sorted(set(subscriber_ids)), sorted(set(periods))
        if subs and names:
            self._periods(fetch_all(conn, [(_PERIODS, {"subs": subs, "names": names})])[0],
                          subs, names)  # fmt: skip

    def _periods(self, rows: list[Sequence[Any]], subs: Iterable[int],
                 names: Sequence[str]) -> None:  # fmt: skip
        self._periods_read.update((sub, name) for sub in subs for name in names)
        for r in rows:
            row = dict(zip(_PERIOD_KEYS, r, strict=True))
            self.periods[(row["subscriber_id"], row["service"], row["period"])] = row

    def period_row(self, subscriber_id: int, service: str, period: str) -> dict[str, Any]:
        """The counter of a subscriber's service in a period (created at 0 when missing; read
        first unless :meth:`load` read that subscriber's period, under its account's lock)."""
        key = (subscriber_id, service, period)
        if (subscriber_id, period) not in self._periods_read:
            assert self._conn is not None, "load() runs first"
            self.load_periods(self._conn, [subscriber_id], [period])
        if key not in self.periods:
            self.periods[key] = {"id": None, "subscriber_id": subscriber_id, "service": service,
                                 "period": period, "units": 0, "dirty": False}  # fmt: skip
        return self.periods[key]

    def wallet(self, conn: Connection, ledger: Ledger, account_id: int) -> Wallet:
        if account_id not in self.wallets:
            ledger.lock_accounts([account_id])
            self.wallets[account_id] = Wallet.load(conn, account_id, self.now, ledger)
        return self.wallets[account_id]

    # -- changing ------------------------------------------------------------------------------
    def opened(self, row: dict[str, Any], subscription: store.Subscription) -> SessionState:
        """Register a session row inserted in this transaction."""
        state = SessionState(row, subscription)
        self.states[row["session_id"]] = state
        return state

    def update_session(self, session: SessionState, /, **values: Any) -> None:
        session.row.update(values)
        self._dirty[session.pk] = session
        if "service_information" in values:
            self._dirty_info[session.pk] = session

    def drop_holds(self, state: SessionState, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            state.reservations.remove(row)
            if row.get("id") is None:
                self._added.remove(row)
            else:
                self._dropped.append(int(row["id"]))

    def add_holds(self, state: SessionState, rows: list[dict[str, Any]]) -> None:
        state.reservations.extend(rows)
        self._added.extend(rows)

    def usage_row(self, state: SessionState, key: str, rating_group: int | None,
                  service_id: int | None) -> dict[str, Any]:  # fmt: skip
        row = state.usage.get(key)
        if row is None:
            row = {
                "id": None, "ro_session_id": state.pk, "service_key": key,
                "rating_group": rating_group, "service_id": service_id, "time_usage": 0,
                "volume_uplink": 0, "volume_downlink": 0, "service_units": 0, "charge": 0,
                "priced_units": 0, "first_usage_at": None, "last_usage_at": None, "dirty": True,
            }  # fmt: skip
            state.usage[key] = row
        return row

    # -- writing -------------------------------------------------------------------------------
    def flush(self, conn: Connection, ledger: Ledger) -> None:
        """Write every buffered change and, on PostgreSQL, commit (call once, last)."""
        # Every write in one statement, sent with the COMMIT in one round trip on PostgreSQL
        # (charging.bulk.combined_writes; each write goes to distinct rows). A balance that
        # moved meanwhile fails the balance compare-and-swap, so the statement and the
        # transaction: LedgerConflict, rolled back and re-run by the batcher.
        try:
            with combined_writes(conn, commit=True):
                check_balances = ledger.swap_balances()
                self._write(conn)
                ledger.flush_journal()
        except RowsMoved as exc:
            raise LedgerConflict(str(exc)) from exc
        check_balances()

    def _write(self, conn: Connection) -> None:
        _DELETE_HOLD(conn, self._dropped)
        _INSERT_HOLD(conn, self._added)
        _UPDATE_SESSION(
            conn, [s.row for pk, s in self._dirty.items() if pk not in self._dirty_info]
        )
        _UPDATE_SESSION_INFO(conn, [s.row for s in self._dirty_info.values()])
        new_usage, changed_usage = [], []
        for state in self.states.values():
            for row in state.usage.values():
                if row.pop("dirty", False):
                    (new_usage if row["id"] is None else changed_usage).append(row)
        _INSERT_USAGE(conn, new_usage)
        _UPDATE_USAGE(conn, changed_usage)
        dirty_periods = [r for r in self.periods.values() if r.get("dirty")]
        _INSERT_PERIOD(conn, [r for r in dirty_periods if r["id"] is None])
        _UPDATE_PERIOD(conn, [r for r in dirty_periods if r["id"] is not None])
        _INSERT_OUTBOX(conn, self.outbox)
        _INSERT_OUTCOME(conn, self.new_outcomes)
