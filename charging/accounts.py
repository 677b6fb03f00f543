"""Account operations used by the CLI and the REST API: top-up and balance enquiry.

A top-up is journalled (cause ``topup``) and returns the account's live Ro sessions, so the
caller can send each client a Re-Auth-Request (RFC 4006 §5.5) to re-request quota at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from charging.ledger import Cause, Ledger
from charging.models import Account, Balance, RoSession, utcnow

accounts_t = Account.__table__
balances_t = Balance.__table__
sessions_t = RoSession.__table__


@dataclass(frozen=True, slots=True)
class LiveSession:
    session_id: str
    origin_host: str
    origin_realm: str
    node_id: str | None


@dataclass(frozen=True, slots=True)
class TopUpResult:
    balance_id: int
    amount: int
    live_sessions: tuple[LiveSession, ...]


class UnknownAccount(LookupError):
    pass


def top_up(
    engine: Engine,
    account: str,
    amount: int,
    *,
    balance: str | None = None,
    reference: str | None = None,
    now: datetime | None = None,
) -> TopUpResult:
    """Credit ``amount`` minor units to the account's ``balance`` (default: its first valid
    monetary balance by priority) in one transaction."""
    if amount <= 0:
        raise ValueError("a top-up amount must be positive")
    now = now or utcnow()
    with engine.begin() as conn:
        account_id = conn.execute(
            sa.select(accounts_t.c.id).where(accounts_t.c.name == account)
        ).scalar()
        if account_id is None:
            raise UnknownAccount(account)
        ledger = Ledger(conn, now)
        ledger.lock_accounts([account_id])
        balance_id = target_balance(conn, account_id, balance, now)
        new_amount = ledger.credit(balance_id, amount, Cause("topup", reference=reference))
        ledger.flush()
        live = live_sessions(conn, account_id)
    return TopUpResult(balance_id, new_amount, live)


def target_balance(conn: Connection, account_id: int, name: str | None, now: datetime) -> int:
    """The balance a credit goes to: ``name``, else the first valid monetary one by priority."""
    query = sa.select(balances_t.c.id).where(balances_t.c.account_id == account_id)
    if name is not None:
        query = query.where(balances_t.c.name == name)
    else:
        query = query.where(
            balances_t.c.kind == "monetary",
            sa.or_(balances_t.c.valid_from.is_(None), balances_t.c.valid_from <= now),
            sa.or_(balances_t.c.valid_until.is_(None), balances_t.c.valid_until > now),
        ).order_by(balances_t.c.priority, balances_t.c.id)
    balance_id = conn.execute(query.limit(1)).scalar()
    if balance_id is None:
        raise UnknownAccount(f"account {account_id} has no balance {name or '(monetary)'}")
    return int(balance_id)


def live_sessions(conn: Connection, account_id: int) -> tuple[LiveSession, ...]:
    """Open Ro sessions charged to the account."""
    rows = conn.execute(
        sa.select(
            sessions_t.c.session_id,
            sessions_t.c.origin_host,
            sessions_t.c.origin_realm,
            sessions_t.c.node_id,
        ).where(sessions_t.c.account_id == account_id, sessions_t.c.state == "open")
    )
    return tuple(LiveSession(*row) for row in rows)


def credit_exhausted(
    engine: Engine,
    *,
    imsi: str | None = None,
    msisdn: str | None = None,
    now: datetime | None = None,
) -> bool | None:
    """Whether the subscriber's spendable money is used up (no valid monetary balance has
    credit left), for the PCRF's credit-state policy (TS 29.212 usage of the OCS state);
    None when no subscriber has these identities."""
    from charging import identities, store

    ids = tuple(
        (id_type, value)
        for id_type, value in (
            (identities.SubscriptionIdType.END_USER_IMSI, imsi),
            (identities.SubscriptionIdType.END_USER_E164, msisdn),
        )
        if value
    )
    now = now or utcnow()
    with engine.connect() as conn:
        sub = store.find_subscription(conn, ids)
        if sub is None:
            return None
        available = conn.execute(
            sa.select(
                sa.func.coalesce(
                    sa.func.max(
                        balances_t.c.amount - balances_t.c.reserved + balances_t.c.credit_limit
                    ),
                    0,
                )
            ).where(
                balances_t.c.account_id == sub.account_id,
                balances_t.c.kind == "monetary",
                sa.or_(balances_t.c.valid_from.is_(None), balances_t.c.valid_from <= now),
                sa.or_(balances_t.c.valid_until.is_(None), balances_t.c.valid_until > now),
            )
        ).scalar_one()
    return int(available) <= 0
