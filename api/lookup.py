"""The balance lookup's read (``GET /api/v1/accounts/{name}``, the API's most frequent call).

On PostgreSQL one prepared statement returns exactly the answer's columns (the account, and per
balance its availability and validity now) over the ledger's tables, read straight on psycopg
(api/db.py); the rows become the ``AccountOut`` JSON in one validation and one dump. Elsewhere
(SQLite) the ledger's own ``get_account`` answers. Both follow ``charging.admin.get_account``:
``available = amount - reserved + credit_limit``, valid when ``valid_from <= now < valid_until``
(either end open), balances by priority then id; tests/integration/api compares them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from api.context import ApiContext
from api.db import aread
from charging import admin as ledger
from charging.models import Account, Balance
from schemas.api import AccountOut, BalanceOut
from schemas.sql import UTCDateTime, utcnow

accounts_t = Account.__table__
balances_t = Balance.__table__
ANSWER = TypeAdapter(AccountOut)

_now = sa.bindparam("now", type_=UTCDateTime)
STATEMENT = (
    sa.select(
        accounts_t.c.name,
        accounts_t.c.currency,
        accounts_t.c.created_at,
        balances_t.c.name,
        balances_t.c.kind,
        balances_t.c.unit,
        balances_t.c.bundle,
        balances_t.c.amount,
        balances_t.c.reserved,
        balances_t.c.credit_limit,
        (balances_t.c.amount - balances_t.c.reserved + balances_t.c.credit_limit).label(
            "available"
        ),
        balances_t.c.priority,
        balances_t.c.valid_from,
        balances_t.c.valid_until,
        sa.and_(
            sa.or_(balances_t.c.valid_from.is_(None), balances_t.c.valid_from <= _now),
            sa.or_(balances_t.c.valid_until.is_(None), balances_t.c.valid_until > _now),
        ).label("valid_now"),
    )
    .outerjoin(balances_t, balances_t.c.account_id == accounts_t.c.id)
    .where(accounts_t.c.name == sa.bindparam("account_name"))
    .order_by(balances_t.c.priority, balances_t.c.id)
)
#: The names of the statement's balance columns (from the 4th on), in order.
BALANCE_FIELDS = tuple(BalanceOut.model_fields)


async def account_json(ctx: ApiContext, name: str) -> bytes:
    """The account ``name`` with its balances as ``AccountOut`` JSON; NotFound when unknown."""
    if ctx.aio is None:
        found: dict[str, Any] = await aread(ctx, lambda c: ledger.get_account(c, name))
    else:
        rows = await ctx.aio.fetch(
            ctx.aio.prepared(STATEMENT), {"account_name": name, "now": utcnow()}
        )
        if not rows:
            raise ledger.NotFound(f"no account {name!r}")
        first = rows[0]
        found = {
            "name": first[0],
            "currency": first[1],
            "created_at": first[2],
            "balances": [
                dict(zip(BALANCE_FIELDS, r[3:], strict=True)) for r in rows if r[3] is not None
            ],
        }
    return ANSWER.dump_json(ANSWER.validate_python(found))
