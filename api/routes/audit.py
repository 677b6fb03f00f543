"""The audit log of API writes (operators and admins may read it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api import audit
from api.auth import Principal, operator
from api.db import Ctx, PageQuery, read
from schemas.api import Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    role: str
    action: str
    resource: str
    reason: str | None
    before: Any
    after: Any


@router.get("", response_model=Page[AuditOut])
def list_audit(
    ctx: Ctx,
    paging: PageQuery,
    _: Annotated[Principal, Depends(operator)],
    resource: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
) -> dict[str, Any]:
    return paging.page(
        read(ctx, lambda c: audit.entries(c, paging.limit + 1, paging.offset, resource))
    )
