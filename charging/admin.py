"""Management operations on the ledger for the REST API and the CLI: accounts, subscribers and
their identities, balances, journalled top-ups and adjustments, history and live Ro sessions.

Every function works on the caller's ``Connection`` so the caller decides the transaction (the
API writes its audit row in the same one). Reads return plain dicts; unknown names raise
:class:`NotFound`, conflicting writes :class:`Conflict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charging import identities
from charging.accounts import LiveSession, UnknownAccount, live_sessions, target_balance
from charging.ledger import Cause, Ledger
from charging.models import (
    Account,
    Balance,
    JournalEntry,
    Plan,
    Reservation,
    RoSession,
    SessionUsage,
    Subscriber,
    SubscriberIdentity,
    utcnow,
)
from schemas.sql import UTCDateTime

accounts_t = Account.__table__
balances_t = Balance.__table__
journal_t = JournalEntry.__table__
plans_t = Plan.__table__
reservations_t = Reservation.__table__
sessions_t = RoSession.__table__
usage_t = SessionUsage.__table__
subscribers_t = Subscriber.__table__
identities_t = SubscriberIdentity.__table__

#: API field name → identity kind (charging.identities).
IDENTITY_FIELDS = {
    "imsi": identities.IMSI,
    "msisdn": identities.MSISDN,
    "sip_uris": identities.SIP_URI,
    "nai": identities.NAI,
}


class NotFound(LookupError):
    """The named account, plan, subscriber or balance does not exist."""


class Conflict(ValueError):
    """The write contradicts what is stored (duplicate name or identity, insufficient funds)."""


# -- accounts ---------------------------------------------------------------------------------


def account_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(accounts_t.c.id).where(accounts_t.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no account {name!r}")
    return int(found)


def create_account(
    conn: Connection, name: str, currency: str, balances: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    """A new account with its balances; opening amounts are journalled as ``provision``."""
    if conn.execute(sa.select(accounts_t.c.id).where(accounts_t.c.name == name)).first():
        raise Conflict(f"account {name!r} exists")
    now = utcnow()
    new_id = conn.execute(
        accounts_t.insert()
        .values(name=name, currency=currency, created_at=now)
        .returning(accounts_t.c.id)
    ).scalar_one()
    ledger = Ledger(conn, now)
    for spec in balances:
        values = {k: v for k, v in spec.items() if k != "amount"}
        balance_id = conn.execute(
            balances_t.insert()
            .values(account_id=new_id, created_at=now, updated_at=now, **values)
            .returning(balances_t.c.id)
        ).scalar_one()
        if spec.get("amount"):
            ledger.credit(balance_id, int(spec["amount"]), Cause("provision", reference=name))
    ledger.flush()
    return get_account(conn, name)


_now = sa.bindparam("now", type_=UTCDateTime)
#: A balance as the API shows it (schemas.api.BalanceOut, in its field order), availability and
#: validity computed by the database: ``available = amount - reserved + credit_limit``, valid
#: when ``valid_from <= now < valid_until`` (either end open).
BALANCE_COLUMNS = (
    balances_t.c.name,
    balances_t.c.kind,
    balances_t.c.unit,
    balances_t.c.bundle,
    balances_t.c.amount,
    balances_t.c.reserved,
    balances_t.c.credit_limit,
    (balances_t.c.amount - balances_t.c.reserved + balances_t.c.credit_limit).label("available"),
    balances_t.c.priority,
    balances_t.c.valid_from,
    balances_t.c.valid_until,
    sa.and_(
        sa.or_(balances_t.c.valid_from.is_(None), balances_t.c.valid_from <= _now),
        sa.or_(balances_t.c.valid_until.is_(None), balances_t.c.valid_until > _now),
    ).label("valid_now"),
)
#: One round trip (the account, then BALANCE_COLUMNS per balance; parameters ``account_name``
#: and ``now``), built once: the balance lookup is the API's most frequent call.
ACCOUNT_WITH_BALANCES = (
    sa.select(
        accounts_t.c.name.label("account"),
        accounts_t.c.currency,
        accounts_t.c.created_at,
        *BALANCE_COLUMNS,
    )
    .outerjoin(balances_t, balances_t.c.account_id == accounts_t.c.id)
    .where(accounts_t.c.name == sa.bindparam("account_name"))
    .order_by(balances_t.c.priority, balances_t.c.id)
)


def get_account(conn: Connection, name: str, now: datetime | None = None) -> dict[str, Any]:
    """The account with its balances (see BALANCE_COLUMNS)."""
    params = {"account_name": name, "now": now or utcnow()}
    rows = conn.execute(ACCOUNT_WITH_BALANCES, params).mappings().all()
    if not rows:
        raise NotFound(f"no account {name!r}")
    return {
        "name": rows[0]["account"],
        "currency": rows[0]["currency"],
        "created_at": rows[0]["created_at"],
        "balances": [_balance(r) for r in rows if r["name"] is not None],
    }


def list_accounts(conn: Connection, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(accounts_t.c.name).order_by(accounts_t.c.id).limit(limit).offset(offset)
    ).scalars()
    return [get_account(conn, name) for name in rows]


def balances_of(conn: Connection, acct_id: int, now: datetime | None = None) -> list[dict]:
    rows = conn.execute(
        sa.select(*BALANCE_COLUMNS)
        .where(balances_t.c.account_id == acct_id)
        .order_by(balances_t.c.priority, balances_t.c.id),
        {"now": now or utcnow()},
    ).mappings()
    return [_balance(r) for r in rows]


def _balance(r: sa.RowMapping) -> dict[str, Any]:
    return {
        "name": r["name"],
        "kind": r["kind"],
        "unit": r["unit"],
        "bundle": r["bundle"],
        "amount": int(r["amount"]),
        "reserved": int(r["reserved"]),
        "credit_limit": int(r["credit_limit"]),
        "available": int(r["available"]),
        "priority": r["priority"],
        "valid_from": r["valid_from"],
        "valid_until": r["valid_until"],
        "valid_now": bool(r["valid_now"]),
    }


def money_available(conn: Connection, acct_id: int, now: datetime | None = None) -> int:
    """Spendable money now: the sum of the valid monetary balances' positive availability."""
    return sum(
        max(b["available"], 0)
        for b in balances_of(conn, acct_id, now)
        if b["kind"] == "monetary" and b["valid_now"]
    )


def credit(
    conn: Connection,
    account: str,
    amount: int,
    *,
    kind: str,
    reference: str,
    balance: str | None = None,
) -> tuple[dict[str, Any], tuple[LiveSession, ...]]:
    """Move ``amount`` minor units (negative: a debit) into the account's ``balance`` (default:
    its first valid monetary balance), journalled with cause ``kind`` (``topup`` or ``adjust``).
    Returns the changed balance and the account's live Ro sessions (to re-authorise).
    A debit the balance cannot cover (``amount - reserved + credit_limit``) is a :class:`Conflict`.
    """
    if amount == 0:
        raise Conflict("amount must not be zero")
    now = utcnow()
    acct = account_id(conn, account)
    ledger = Ledger(conn, now)
    ledger.lock_accounts([acct])
    try:
        balance_id = target_balance(conn, acct, balance, now)
    except UnknownAccount as exc:
        raise NotFound(str(exc)) from exc
    cause = Cause(kind, reference=reference[:128])
    if amount > 0:
        ledger.credit(balance_id, amount, cause)
    elif not ledger.debit(balance_id, -amount, cause):
        raise Conflict(f"balance cannot cover a debit of {-amount}")
    ledger.flush()
    changed = next(b for b in balances_of(conn, acct, now) if b["name"] == _name(conn, balance_id))
    return changed, live_sessions(conn, acct)


def _name(conn: Connection, balance_id: int) -> str:
    return str(
        conn.execute(sa.select(balances_t.c.name).where(balances_t.c.id == balance_id)).scalar()
    )


def history(conn: Connection, account: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """Journal entries of the account, newest first."""
    acct = account_id(conn, account)
    rows = conn.execute(
        sa.select(journal_t, balances_t.c.name.label("balance"))
        .join(balances_t, balances_t.c.id == journal_t.c.balance_id)
        .where(journal_t.c.account_id == acct)
        .order_by(journal_t.c.id.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    keys = (
        "id",
        "balance",
        "cause",
        "delta_amount",
        "delta_reserved",
        "amount_after",
        "reserved_after",
        "session_id",
        "request_number",
        "reference",
        "created_at",
    )
    return [{k: r[k] for k in keys} for r in rows]


# -- subscribers ------------------------------------------------------------------------------


def _plan_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(plans_t.c.id).where(plans_t.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no plan {name!r}")
    return int(found)


def _subscriber_row(conn: Connection, name: str) -> sa.RowMapping:
    row = (
        conn.execute(
            sa.select(
                subscribers_t, accounts_t.c.name.label("account"), plans_t.c.name.label("plan")
            )
            .join(accounts_t, accounts_t.c.id == subscribers_t.c.account_id)
            .join(plans_t, plans_t.c.id == subscribers_t.c.plan_id)
            .where(subscribers_t.c.name == name)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no subscriber {name!r}")
    return row


def get_subscriber(conn: Connection, name: str) -> dict[str, Any]:
    """The subscriber with its identities grouped by API field (imsi, msisdn, sip_uris, nai)."""
    row = _subscriber_row(conn, name)
    ids: dict[str, list[str]] = {f: [] for f in IDENTITY_FIELDS}
    by_kind = {kind: f for f, kind in IDENTITY_FIELDS.items()}
    for kind, value in conn.execute(
        sa.select(identities_t.c.kind, identities_t.c.value)
        .where(identities_t.c.subscriber_id == row["id"])
        .order_by(identities_t.c.id)
    ):
        ids[by_kind[kind]].append(value)
    keys = ("id", "name", "account", "plan", "status", "created_at", "updated_at")
    return {**{k: row[k] for k in keys}, **ids}


def list_subscribers(
    conn: Connection, limit: int, offset: int, account: str | None = None
) -> list[dict[str, Any]]:
    query = sa.select(subscribers_t.c.name).order_by(subscribers_t.c.id)
    if account is not None:
        query = query.where(subscribers_t.c.account_id == account_id(conn, account))
    names = conn.execute(query.limit(limit).offset(offset)).scalars().all()
    return [get_subscriber(conn, n) for n in names]


def lookup(conn: Connection, kind: str, value: str) -> dict[str, Any]:
    """The subscriber owning the identity ``kind:value`` (normalised first)."""
    try:
        normalised = identities.normalise(kind, value)
    except ValueError as exc:
        raise NotFound(str(exc)) from None
    name = conn.execute(
        sa.select(subscribers_t.c.name)
        .join(identities_t, identities_t.c.subscriber_id == subscribers_t.c.id)
        .where(identities_t.c.kind == kind, identities_t.c.value == normalised)
    ).scalar()
    if name is None:
        raise NotFound(f"no subscriber with {kind} {value!r}")
    return get_subscriber(conn, name)


def create_subscriber(
    conn: Connection,
    name: str,
    account: str,
    plan: str,
    status: str,
    ids: dict[str, list[str]],
) -> dict[str, Any]:
    """A new subscriber; ``ids`` maps API identity fields to values (at least one)."""
    if conn.execute(sa.select(subscribers_t.c.id).where(subscribers_t.c.name == name)).first():
        raise Conflict(f"subscriber {name!r} exists")
    now = utcnow()
    new_id = conn.execute(
        subscribers_t.insert()
        .values(
            name=name,
            account_id=account_id(conn, account),
            plan_id=_plan_id(conn, plan),
            status=status,
            created_at=now,
            updated_at=now,
        )
        .returning(subscribers_t.c.id)
    ).scalar_one()
    _set_identities(conn, int(new_id), ids)
    return get_subscriber(conn, name)


def update_subscriber(conn: Connection, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Change account, plan, status and/or identity lists (a given list replaces the old)."""
    row = _subscriber_row(conn, name)
    values: dict[str, Any] = {}
    if changes.get("account") is not None:
        values["account_id"] = account_id(conn, changes["account"])
    if changes.get("plan") is not None:
        values["plan_id"] = _plan_id(conn, changes["plan"])
    if changes.get("status") is not None:
        values["status"] = changes["status"]
    ids = {f: changes[f] for f in IDENTITY_FIELDS if changes.get(f) is not None}
    if ids:
        merged = {f: get_subscriber(conn, name)[f] for f in IDENTITY_FIELDS} | ids
        _set_identities(conn, int(row["id"]), merged)
    conn.execute(
        subscribers_t.update()
        .where(subscribers_t.c.id == row["id"])
        .values(updated_at=utcnow(), **values)
    )
    return get_subscriber(conn, name)


def delete_subscriber(conn: Connection, name: str) -> None:
    """Delete a subscriber without open Ro sessions (closed sessions keep it: Conflict)."""
    row = _subscriber_row(conn, name)
    if conn.execute(
        sa.select(sessions_t.c.id).where(sessions_t.c.subscriber_id == row["id"]).limit(1)
    ).first():
        raise Conflict(f"subscriber {name!r} has charging sessions on record; bar it instead")
    conn.execute(identities_t.delete().where(identities_t.c.subscriber_id == row["id"]))
    conn.execute(subscribers_t.delete().where(subscribers_t.c.id == row["id"]))


def _set_identities(conn: Connection, subscriber_id: int, ids: dict[str, list[str]]) -> None:
    wanted: set[tuple[str, str]] = set()
    for field_name, values in ids.items():
        kind = IDENTITY_FIELDS[field_name]
        for value in values:
            try:
                wanted.add((kind, identities.normalise(kind, value)))
            except ValueError as exc:
                raise Conflict(str(exc)) from None
    if not wanted:
        raise Conflict("a subscriber needs at least one identity")
    owners = conn.execute(
        sa.select(identities_t.c.kind, identities_t.c.value).where(
            identities_t.c.subscriber_id != subscriber_id,
            sa.tuple_(identities_t.c.kind, identities_t.c.value).in_(sorted(wanted)),
        )
    ).all()
    if owners:
        taken = ", ".join(f"{k}:{v}" for k, v in owners)
        raise Conflict(f"identity already belongs to another subscriber: {taken}")
    conn.execute(identities_t.delete().where(identities_t.c.subscriber_id == subscriber_id))
    conn.execute(
        identities_t.insert(),
        [{"subscriber_id": subscriber_id, "kind": k, "value": v} for k, v in sorted(wanted)],
    )


# -- live Ro sessions --------------------------------------------------------------------------


def open_sessions(
    conn: Connection, limit: int, offset: int, subscriber: str | None = None
) -> list[dict[str, Any]]:
    """Open Ro sessions with their reservations (held credit) and usage charged so far."""
    query = (
        sa.select(sessions_t, subscribers_t.c.name.label("subscriber"), accounts_t.c.currency)
        .join(subscribers_t, subscribers_t.c.id == sessions_t.c.subscriber_id)
        .join(accounts_t, accounts_t.c.id == sessions_t.c.account_id)
        .where(sessions_t.c.state == "open")
        .order_by(sessions_t.c.id)
    )
    if subscriber is not None:
        query = query.where(subscribers_t.c.name == subscriber)
    rows = conn.execute(query.limit(limit).offset(offset)).mappings().all()
    ids = [r["id"] for r in rows]
    held: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    charged: dict[int, int] = dict.fromkeys(ids, 0)
    if ids:
        for r in conn.execute(
            sa.select(reservations_t).where(reservations_t.c.ro_session_id.in_(ids))
        ).mappings():
            held[r["ro_session_id"]].append(
                {
                    "service": r["service_key"],
                    "amount": int(r["amount"]),
                    "granted_units": int(r["granted_units"]),
                    "unit": r["unit"],
                    "expires_at": r["expires_at"],
                }
            )
        for sid, total in conn.execute(
            sa.select(usage_t.c.ro_session_id, sa.func.sum(usage_t.c.charge))
            .where(usage_t.c.ro_session_id.in_(ids))
            .group_by(usage_t.c.ro_session_id)
        ):
            charged[sid] = int(total or 0)
    return [
        {
            "session_id": r["session_id"],
            "subscriber": r["subscriber"],
            "charging_type": r["charging_type"],
            "origin_host": r["origin_host"],
            "origin_realm": r["origin_realm"],
            "node_id": r["node_id"],
            "opened_at": r["opened_at"],
            "expires_at": r["expires_at"],
            "request_number": int(r["last_request_number"]),
            "service_information": r["service_information"],
            "reservations": held[r["id"]],
            "charged": charged[r["id"]],
            "currency": r["currency"],
        }
        for r in rows
    ]


def find_open_session(conn: Connection, session_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.select(sessions_t).where(
                sessions_t.c.session_id == session_id, sessions_t.c.state == "open"
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def subscribers_of_account(conn: Connection, account: str) -> list[dict[str, Any]]:
    return list_subscribers(conn, 10_000, 0, account=account)


def count_open_sessions(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(sessions_t).where(sessions_t.c.state == "open")
        ).scalar_one()
    )
