"""SQL of the Ro application: subscribers, sessions, reservations, usage and stored outcomes.

Plain SQLAlchemy Core on the caller's connection (inside the batch transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charging import identities
from charging.grants import Held, Hold
from charging.models import (
    Account,
    CcrOutcome,
    Plan,
    Reservation,
    RoSession,
    SessionUsage,
    Subscriber,
    SubscriberIdentity,
)

accounts_t = Account.__table__
plans_t = Plan.__table__
subscribers_t = Subscriber.__table__
identities_t = SubscriberIdentity.__table__
sessions_t = RoSession.__table__
reservations_t = Reservation.__table__
usage_t = SessionUsage.__table__
outcomes_t = CcrOutcome.__table__


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


def _subscription(row: sa.Row[Any] | None) -> Subscription | None:
    if row is None:
        return None
    values = row._asdict()
    values["restriction_filter_rules"] = tuple(values["restriction_filter_rules"] or ())
    return Subscription(**values)


def _subscription_query() -> sa.Select[Any]:
    return (
        sa.select(*_SUBSCRIPTION_COLUMNS)
        .join(accounts_t, accounts_t.c.id == subscribers_t.c.account_id)
        .join(plans_t, plans_t.c.id == subscribers_t.c.plan_id)
    )


def find_subscription(
    conn: Connection, subscription_ids: tuple[tuple[int, str], ...]
) -> Subscription | None:
    """The subscriber any of the Subscription-Ids names (first match in request order)."""
    for id_type, data in subscription_ids:
        for kind, value in identities.lookup_keys(id_type, data):
            row = conn.execute(
                _subscription_query()
                .join(identities_t, identities_t.c.subscriber_id == subscribers_t.c.id)
                .where(identities_t.c.kind == kind, identities_t.c.value == value)
            ).first()
            if row is not None:
                return _subscription(row)
    return None


def subscription_of(conn: Connection, subscriber_id: int) -> Subscription:
    row = conn.execute(_subscription_query().where(subscribers_t.c.id == subscriber_id)).first()
    found = _subscription(row)
    if found is None:
        raise LookupError(f"subscriber {subscriber_id} vanished")
    return found


# -- sessions ------------------------------------------------------------------------------


def session_account(conn: Connection, session_id: str) -> int | None:
    return conn.execute(
        sa.select(sessions_t.c.account_id).where(sessions_t.c.session_id == session_id)
    ).scalar()


def load_session(conn: Connection, session_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(sessions_t).where(sessions_t.c.session_id == session_id)).first()
    return None if row is None else dict(row._mapping)


def insert_session(conn: Connection, **values: Any) -> int:
    return int(
        conn.execute(sessions_t.insert().values(**values).returning(sessions_t.c.id)).scalar_one()
    )


def update_session(conn: Connection, session_pk: int, **values: Any) -> None:
    conn.execute(sessions_t.update().where(sessions_t.c.id == session_pk).values(**values))


def expired_sessions(conn: Connection, now: datetime, limit: int) -> list[tuple[str, int]]:
    """(Session-Id, account id) of open sessions idle past their expiry."""
    rows = conn.execute(
        sa.select(sessions_t.c.session_id, sessions_t.c.account_id)
        .where(sessions_t.c.state == "open", sessions_t.c.expires_at < now)
        .order_by(sessions_t.c.expires_at)
        .limit(limit)
    )
    return [(r.session_id, int(r.account_id)) for r in rows]


# -- reservations --------------------------------------------------------------------------


def reservations(
    conn: Connection, session_pk: int, service_key: str | None = None
) -> list[dict[str, Any]]:
    query = sa.select(reservations_t).where(reservations_t.c.ro_session_id == session_pk)
    if service_key is not None:
        query = query.where(reservations_t.c.service_key == service_key)
    return [dict(r._mapping) for r in conn.execute(query.order_by(reservations_t.c.id))]


def as_held(rows: list[dict[str, Any]]) -> list[Held]:
    return [
        Held(
            r["id"],
            r["balance_id"],
            int(r["amount"]),
            int(r["granted_units"]),
            bool((r["details"] or {}).get("bucket")),
        )
        for r in rows
    ]


def delete_reservations(conn: Connection, ids: list[int]) -> None:
    if ids:
        conn.execute(reservations_t.delete().where(reservations_t.c.id.in_(ids)))


def insert_reservations(
    conn: Connection,
    session_pk: int,
    service_key: str,
    unit: str,
    holds: list[Hold],
    granted_at: datetime,
    expires_at: datetime,
    tariff_change_at: datetime | None,
) -> None:
    if not holds:
        return
    change = tariff_change_at.isoformat() if tariff_change_at is not None else None
    conn.execute(
        reservations_t.insert(),
        [
            {
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
        ],
    )


# -- usage ---------------------------------------------------------------------------------


def usage_row(conn: Connection, session_pk: int, service_key: str) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(usage_t).where(
            usage_t.c.ro_session_id == session_pk, usage_t.c.service_key == service_key
        )
    ).first()
    return None if row is None else dict(row._mapping)


def add_usage(
    conn: Connection,
    session_pk: int,
    service_key: str,
    rating_group: int | None,
    service_id: int | None,
    *,
    now: datetime,
    time: int = 0,
    uplink: int = 0,
    downlink: int = 0,
    units: int = 0,
    charge: int = 0,
    priced_units: int = 0,
) -> None:
    """Accumulate usage and charge of one service of a session (row created on first use)."""
    existing = usage_row(conn, session_pk, service_key)
    used = bool(time or uplink or downlink or units)
    if existing is None:
        conn.execute(
            usage_t.insert().values(
                ro_session_id=session_pk,
                service_key=service_key,
                rating_group=rating_group,
                service_id=service_id,
                time_usage=time,
                volume_uplink=uplink,
                volume_downlink=downlink,
                service_units=units,
                charge=charge,
                priced_units=priced_units,
                first_usage_at=now if used else None,
                last_usage_at=now if used else None,
            )
        )
        return
    values: dict[str, Any] = {
        "time_usage": usage_t.c.time_usage + time,
        "volume_uplink": usage_t.c.volume_uplink + uplink,
        "volume_downlink": usage_t.c.volume_downlink + downlink,
        "service_units": usage_t.c.service_units + units,
        "charge": usage_t.c.charge + charge,
        "priced_units": usage_t.c.priced_units + priced_units,
    }
    if used:
        values["last_usage_at"] = now
        if existing["first_usage_at"] is None:
            values["first_usage_at"] = now
    conn.execute(usage_t.update().where(usage_t.c.id == existing["id"]).values(**values))


def session_usage(conn: Connection, session_pk: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(usage_t).where(usage_t.c.ro_session_id == session_pk).order_by(usage_t.c.id)
    )
    return [dict(r._mapping) for r in rows]


# -- stored outcomes -----------------------------------------------------------------------


def find_outcome(conn: Connection, session_id: str, request_number: int) -> bytes | None:
    return conn.execute(
        sa.select(outcomes_t.c.answer).where(
            outcomes_t.c.session_id == session_id,
            outcomes_t.c.request_number == request_number,
        )
    ).scalar()


def insert_outcomes(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(outcomes_t.insert(), rows)
