"""SQL of the Ro application: subscribers, sessions, reservations, usage and stored outcomes.

Plain SQLAlchemy Core on the caller's connection (inside the batch transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from charging import identities
from charging.bulk import BulkInsert, Prebuilt, fetch_all
from charging.grants import Held, Hold
from charging.models import (
    Account,
    Plan,
    RoSession,
    Subscriber,
    SubscriberIdentity,
)

accounts_t = Account.__table__
plans_t = Plan.__table__
subscribers_t = Subscriber.__table__
identities_t = SubscriberIdentity.__table__
sessions_t = RoSession.__table__


@dataclass(frozen=True, slots=True)
class Subscription:
    """A resolved subscriber with what charging needs from its account and plan."""

    subscriber_id: int
    account_id: int
    status: str
    currency: str
    tariff: str
    final_unit_action: str
    redirect_address_type: str | None
    redirect_server: str | None
    restriction_filter_rules: tuple[str, ...]
    failure_handling: str | None


_SUBSCRIPTION_COLUMNS = (
    subscribers_t.c.id.label("subscriber_id"),
    subscribers_t.c.account_id,
    subscribers_t.c.status,
    accounts_t.c.currency,
    plans_t.c.tariff,
    plans_t.c.final_unit_action,
    plans_t.c.redirect_address_type,
    plans_t.c.redirect_server,
    plans_t.c.restriction_filter_rules,
    plans_t.c.failure_handling,
)


def _subscription_query() -> sa.Select[Any]:
    return (
        sa.select(*_SUBSCRIPTION_COLUMNS)
        .join(accounts_t, accounts_t.c.id == subscribers_t.c.account_id)
        .join(plans_t, plans_t.c.id == subscribers_t.c.plan_id)
    )


def _by_identity() -> sa.Select[Any]:
    return (
        _subscription_query()
        .add_columns(identities_t.c.kind, identities_t.c.value)
        .join(identities_t, identities_t.c.subscriber_id == subscribers_t.c.id)
    )


#: Subscribers (with their identity) named by the identities (``kinds[i]``, ``values[i]``);
#: PostgreSQL probes the (kind, value) index per pair, elsewhere callers keep the rows whose
#: pair they asked for.
SUBSCRIPTIONS_BY_IDENTITY = Prebuilt(
    lambda member: _by_identity().where(
        member(identities_t.c.kind, "kinds"), member(identities_t.c.value, "values")
    ),
    postgresql=lambda: _by_identity().where(
        sa.tuple_(identities_t.c.kind, identities_t.c.value).in_(
            sa.select(
                sa.func.unnest(sa.bindparam("kinds", type_=postgresql.ARRAY(sa.String))),
                sa.func.unnest(sa.bindparam("values", type_=postgresql.ARRAY(sa.String))),
            )
        )
    ),
)


def identity_lookup(requests: list[tuple[tuple[int, str], ...]]) -> dict[str, list[str]]:
    """The parameters of :data:`SUBSCRIPTIONS_BY_IDENTITY` for these requests'
    Subscription-Ids (empty lists: nothing to look up)."""
    keys = sorted({key for ids in requests for id_type, data in ids
                   for key in identities.lookup_keys(id_type, data)})  # fmt: skip
    return {"kinds": [k for k, _ in keys], "values": [v for _, v in keys]}


def match_subscriptions(
    requests: list[tuple[tuple[int, str], ...]], rows: list[Sequence[Any]]
) -> dict[tuple[tuple[int, str], ...], Subscription | None]:
    """For each request's Subscription-Ids, the subscriber the first matching one names, from
    rows of :data:`SUBSCRIPTIONS_BY_IDENTITY`."""
    found: dict[tuple[str, str], Subscription] = {}
    for row in rows:
        fields = list(row[:-2])
        fields[-2] = tuple(fields[-2] or ())  # restriction_filter_rules (a JSON list)
        found[(row[-2], row[-1])] = Subscription(*fields)
    out: dict[tuple[tuple[int, str], ...], Subscription | None] = {}
    for ids in requests:
        keys = (key for id_type, data in ids for key in identities.lookup_keys(id_type, data))
        out[ids] = next((found[k] for k in keys if k in found), None)
    return out


def find_subscriptions(
    conn: Connection, requests: list[tuple[tuple[int, str], ...]]
) -> dict[tuple[tuple[int, str], ...], Subscription | None]:
    """For each request's Subscription-Ids, the subscriber the first matching one names, all in
    one query."""
    lookup = identity_lookup(requests)
    rows = fetch_all(conn, [(SUBSCRIPTIONS_BY_IDENTITY, lookup)])[0] if lookup["values"] else []
    return match_subscriptions(requests, rows)


def find_subscription(
    conn: Connection, subscription_ids: tuple[tuple[int, str], ...]
) -> Subscription | None:
    """The subscriber any of the Subscription-Ids names (first match in request order)."""
    return find_subscriptions(conn, [subscription_ids])[subscription_ids]


# -- sessions ------------------------------------------------------------------------------


#: (Session-Id, account id, subscriber id) of the sessions ``ids`` that exist.
SESSION_OWNERS = Prebuilt(
    lambda member: sa.select(
        sessions_t.c.session_id, sessions_t.c.account_id, sessions_t.c.subscriber_id
    ).where(member(sessions_t.c.session_id, "ids"))
)
SESSION_KEYS = tuple(c.name for c in sessions_t.c)
#: The sessions ``ids``, each row followed by its subscriber's subscription columns.
SESSIONS_WITH_SUBSCRIPTIONS = Prebuilt(
    lambda member: (
        sa.select(sessions_t, *(c.label(f"sub_{c.name}") for c in _SUBSCRIPTION_COLUMNS))
        .join(subscribers_t, subscribers_t.c.id == sessions_t.c.subscriber_id)
        .join(accounts_t, accounts_t.c.id == subscribers_t.c.account_id)
        .join(plans_t, plans_t.c.id == subscribers_t.c.plan_id)
        .where(member(sessions_t.c.session_id, "ids"))
    )
)


def sessions_with_subscriptions(rows: list[Sequence[Any]]) -> list[dict[str, Any]]:
    """Session rows of :data:`SESSIONS_WITH_SUBSCRIPTIONS` as dicts, each with its subscriber's
    :class:`Subscription` under "subscription" (sessions of one subscriber share one)."""
    keys, width = SESSION_KEYS, len(SESSION_KEYS)
    subscriptions: dict[tuple[Any, ...], Subscription] = {}
    out = []
    for row in rows:
        values = dict(zip(keys, row[:width], strict=True))
        fields = list(row[width:])
        fields[-2] = tuple(fields[-2] or ())  # restriction_filter_rules (a JSON list)
        sub_key = tuple(fields)
        sub = subscriptions.get(sub_key)
        if sub is None:
            sub = subscriptions[sub_key] = Subscription(*fields)
        values["subscription"] = sub
        out.append(values)
    return out


def insert_session(conn: Connection, **values: Any) -> dict[str, Any]:
    """Insert a session row (any columns); returns it (with its id) as a dict."""
    pk = conn.execute(sessions_t.insert().returning(sessions_t.c.id), values).scalar_one()
    return {"closed_at": None, "close_cause": None, "cdr_sequence": 0, **values, "id": int(pk)}


_INSERT_SESSIONS = BulkInsert(
    sessions_t,
    ("session_id", "subscriber_id", "account_id", "state", "charging_type",
     "last_request_number", "origin_host", "origin_realm", "service_context_id",
     "subscription_id", "service_information", "node_id", "opened_at", "updated_at",
     "expires_at", "closed_at", "close_cause", "cdr_sequence"),
)  # fmt: skip


def _full(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"closed_at": None, "close_cause": None, "cdr_sequence": 0, **r} for r in rows]


def insert_sessions(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert session rows (each with every column of ``_INSERT_SESSIONS``; Session-Ids
    distinct) in one statement; returns them with their ids, in order."""
    full = _full(rows)
    ids = _INSERT_SESSIONS.ids_by(conn, full, "session_id")
    for row in full:
        row["id"] = ids[row["session_id"]]
    return full


def open_sessions(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[str, Any]]:
    """PostgreSQL: the statement (for ``charging.bulk.fetch_all``) inserting those of the
    CCR-I session ``rows`` whose Session-Id is new and whose request has no stored outcome
    (a retransmission is answered from it), returning (Session-Id, id) of the rows inserted;
    and the rows, completed, to give those ids to."""
    full = _full(rows)
    sql, params = _INSERT_SESSIONS.statement(full, (
        "WHERE NOT EXISTS (SELECT 1 FROM ro_sessions s WHERE s.session_id = u.session_id) "
        "AND NOT EXISTS (SELECT 1 FROM ccr_outcomes o WHERE o.session_id = u.session_id "
        "AND o.request_number = u.last_request_number) RETURNING session_id, id"
    ))  # fmt: skip
    return full, (sql, params)


def expired_sessions(conn: Connection, now: datetime, limit: int) -> list[tuple[str, int]]:
    """(Session-Id, account id) of open sessions idle past their expiry."""
    rows = conn.execute(
        sa.select(sessions_t.c.session_id, sessions_t.c.account_id)
        .where(sessions_t.c.state == "open", sessions_t.c.expires_at < now)
        .order_by(sessions_t.c.expires_at)
        .limit(limit)
    )
    return [(r.session_id, int(r.account_id)) for r in rows]


def as_held(rows: list[dict[str, Any]]) -> list[Held]:
    """Stored (or just made) reservations as the grants module settles them."""
    return [
        Held(
            index,
            r["balance_id"],
            int(r["amount"]),
            int(r["granted_units"]),
            bool((r["details"] or {}).get("bucket")),
        )
        for index, r in enumerate(rows)
    ]


def reservation_rows(
    session_pk: int,
    service_key: str,
    unit: str,
    holds: list[Hold],
    granted_at: datetime,
    expires_at: datetime,
    tariff_change_at: datetime | None,
) -> list[dict[str, Any]]:
    change = tariff_change_at.isoformat() if tariff_change_at is not None else None
    return [
        {
            "id": None,
            "ro_session_id": session_pk,
            "service_key": service_key,
            "balance_id": h.balance_id,
            "amount": h.amount,
            "granted_units": h.units,
            "unit": "money" if not h.bucket else unit,
            "granted_at": granted_at,
            "expires_at": expires_at,
            "details": {"bucket": h.bucket, "tariff_change_at": change},
        }
        for h in holds
    ]
