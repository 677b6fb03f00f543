"""Small helpers shared by the routes: transactions off the event loop, paging, page bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from sqlalchemy.engine import Connection

from api.context import ApiContext

T = TypeVar("T")
MAX_PAGE = 500


async def context(request: Request) -> ApiContext:
    # Dependencies are async so FastAPI does not hop to a worker thread for them.
    return request.app.state.ctx  # type: ignore[no-any-return]


Ctx = Annotated[ApiContext, Depends(context)]


class Paging:
    def __init__(self, limit: int, offset: int) -> None:
        self.limit = limit
        self.offset = offset

    def page(self, items: list[Any]) -> dict[str, Any]:
        """A Page body; the query asked for ``limit + 1`` rows to know whether more follow."""
        more = len(items) > self.limit
        return {
            "items": items[: self.limit],
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.offset + self.limit if more else None,
        }


async def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9, description="items to skip")] = 0,
) -> Paging:
    return Paging(limit, offset)


PageQuery = Annotated[Paging, Depends(paging)]


def read(ctx: ApiContext, fn: Callable[[Connection], T]) -> T:
    with ctx.engine.connect() as conn:
        return fn(conn)


def write(ctx: ApiContext, fn: Callable[[Connection], T]) -> T:
    with ctx.engine.begin() as conn:
        return fn(conn)


async def awrite(ctx: ApiContext, fn: Callable[[Connection], T]) -> T:
    """A write transaction in a worker thread (for async routes that follow up on the wire)."""
    return await asyncio.to_thread(write, ctx, fn)


async def aread(ctx: ApiContext, fn: Callable[[Connection], T]) -> T:
    return await asyncio.to_thread(read, ctx, fn)
