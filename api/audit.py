"""The audit log: every write through the API, in the same transaction as the write."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from api.auth import Principal
from api.models import AuditEntry
from schemas.sql import utcnow

audit_t = AuditEntry.__table__
#: Built once (values come as parameters): no statement construction per write.
_INSERT = audit_t.insert()


def _jsonable(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(value, default=str))


def record(
    conn: Connection,
    who: Principal,
    action: str,
    resource: str,
    *,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> None:
    """Append one entry (call inside the write's transaction)."""
    conn.execute(
        _INSERT,
        {
            "at": utcnow(),
            "actor": who.name,
            "role": who.role.value,
            "action": action,
            "resource": resource[:255],
            "reason": reason and reason[:255],
            "before": _jsonable(before),
            "after": _jsonable(after),
        },
    )


def entries(
    conn: Connection, limit: int, offset: int, resource: str | None = None
) -> list[dict[str, Any]]:
    """Newest first."""
    query = sa.select(audit_t).order_by(audit_t.c.id.desc())
    if resource is not None:
        query = query.where(audit_t.c.resource == resource)
    return [dict(r) for r in conn.execute(query.limit(limit).offset(offset)).mappings()]
