"""The balance lookup's read (``GET /api/v1/accounts/{name}``, the API's most frequent call).

On PostgreSQL one prepared statement returns exactly the answer's columns (the account, and per
balance its availability and validity now) over the ledger's tables, read straight on psycopg
(api/db.py); the rows become the ``AccountOut`` JSON in one validation and one dump. Elsewhere
(SQLite) the ledger's own ``get_account`` answers. Both run the ledger's statement
(``charging.admin.ACCOUNT_WITH_BALANCES``); tests/integration/api compares them.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from api.context import ApiContext
from api.db import aread
from charging import admin as ledger
from schemas.api import AccountOut
from schemas.sql import utcnow

ANSWER = TypeAdapter(AccountOut)

#: The names of the statement's balance columns (from the 4th on), in order.
BALANCE_FIELDS = tuple(c.name for c in ledger.BALANCE_COLUMNS)


async def account_json(ctx: ApiContext, name: str) -> bytes:
    """The account ``name`` with its balances as ``AccountOut`` JSON; NotFound when unknown."""
    if ctx.aio is None:
        found: dict[str, Any] = await aread(ctx, lambda c: ledger.get_account(c, name))
    else:
        rows = await ctx.aio.fetch(
            ctx.aio.prepared(ledger.ACCOUNT_WITH_BALANCES), {"account_name": name, "now": utcnow()}
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
