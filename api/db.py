"""Small helpers shared by the routes: database access from async routes, paging, page bodies.

On PostgreSQL the async routes read on the event loop itself: psycopg's async driver under
SQLAlchemy's ``AsyncEngine``, with the domains' plain ``Connection`` functions called through
``run_sync`` (greenlets; the loop serves other requests while a query is on the wire), over a few
long-lived autocommit connections: one round trip per query (no BEGIN/ROLLBACK, no pool checkout)
and no worker thread woken per request. The hottest read (the balance lookup) skips SQLAlchemy's
per-execution work too: :meth:`AsyncDatabase.fetch` runs a Core SELECT compiled once
(:class:`Prepared`) as a server-side prepared statement straight on the same psycopg connection.
Write transactions run in a worker thread on the sync engine: for several statements in a row
psycopg's blocking calls cost less CPU than its async waits (15-25 % per top-up, measured) and
release the GIL while PostgreSQL works. Other databases (SQLite) read in a worker thread too.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import Depends, Query, Request
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import Select

from api.context import ApiContext

T = TypeVar("T")
MAX_PAGE = 500
#: Autocommit connections kept for reads; more concurrent reads wait for one to be free.
READERS = 8
#: ``application_name`` of the API's connections (pg_stat_activity shows them by it).
APPLICATION_NAME = "openpcc-api"


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


@dataclass(frozen=True, slots=True)
class Prepared:
    """A Core SELECT compiled once for psycopg (:meth:`AsyncDatabase.fetch`): its SQL text
    (``%(name)s`` parameters) and each column's result processor (e.g. UTC timestamps)."""

    sql: str
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def compile(cls, statement: Select[Any], dialect: Dialect) -> Prepared:
        compiled = statement.compile(dialect=dialect)
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
        return cls(str(compiled), processors)


class AsyncDatabase:
    """Reads of ``ctx.engine``'s database through psycopg's async driver (PostgreSQL only).

    Connections belong to the event loop that opened them: use one instance per serving loop
    and :meth:`close` it on that loop.
    """

    def __init__(self, engine: Engine, readers: int = READERS) -> None:
        # Connections are kept out of the pool while idle (no checkout per read, no pre-ping):
        # one the server dropped fails its request with 503 (api/app.py) and is replaced.
        self.engine: AsyncEngine = create_async_engine(
            engine.url,
            pool_size=readers,
            max_overflow=0,
            pool_pre_ping=False,
            connect_args={"application_name": APPLICATION_NAME},
        )
        self._idle: list[AsyncConnection] = []
        self._readers = asyncio.Semaphore(readers)
        self._prepared: dict[Select[Any], Prepared] = {}

    def prepared(self, statement: Select[Any]) -> Prepared:
        """``statement`` compiled for this database, once."""
        found = self._prepared.get(statement)
        if found is None:
            found = self._prepared[statement] = Prepared.compile(statement, self.engine.dialect)
        return found

    @staticmethod
    def supports(engine: Engine) -> bool:
        """PostgreSQL through psycopg, and greenlet (``SQLAlchemy[asyncio]``) installed."""
        return (
            engine.dialect.name == "postgresql"
            and engine.dialect.driver == "psycopg"
            and importlib.util.find_spec("greenlet") is not None
        )

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on an autocommit connection: each statement sees what was committed when it
        started, as inside PostgreSQL's default READ COMMITTED transaction (which the reads
        used before), minus the BEGIN and ROLLBACK round trips."""
        async with self._readers:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                result = await conn.run_sync(fn)
            except BaseException as exc:
                await self._failed(conn, exc)
                raise
            self._idle.append(conn)
            return result

    async def fetch(self, query: Prepared, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of ``query`` straight on psycopg (a server-side prepared statement), on the
        same autocommit connections as :meth:`read` and with SQLAlchemy's result processing
        of its columns: no greenlet, no per-execution compilation cache or result proxy."""
        async with self._readers:
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                raw = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
                try:
                    cursor = await raw.execute(query.sql, params, prepare=True)
                    rows = await cursor.fetchall()
                except psycopg.Error as exc:
                    # As SQLAlchemy would raise it: the app's handlers answer 503 or 422.
                    raise DBAPIError.instance(
                        query.sql,
                        params,
                        exc,
                        psycopg.Error,
                        connection_invalidated=raw.broken or raw.closed,
                    ) from exc
            except BaseException as exc:
                await self._failed(conn, exc)
                raise
            self._idle.append(conn)
        processors = query.processors
        return [
            tuple(p(v) if p else v for p, v in zip(processors, row, strict=True)) for row in rows
        ]

    async def _failed(self, conn: AsyncConnection, exc: BaseException) -> None:
        """Keep or drop ``conn`` after ``exc`` ended its read."""
        if isinstance(exc, DBAPIError):
            if exc.connection_invalidated or conn.invalidated:
                # The server dropped it (restart, failover): the idle ones went with it.
                # This request answers 503; the next read opens a fresh connection.
                if not conn.invalidated:
                    await conn.invalidate()
                await conn.close()
                await self._close_idle()
            else:
                self._idle.append(conn)
        elif isinstance(exc, Exception):
            self._idle.append(conn)  # e.g. NotFound: autocommit, nothing left open
        else:
            # Cancelled mid-statement: the connection's state is unknown.
            await asyncio.shield(conn.close())

    async def _connect(self) -> AsyncConnection:
        conn = await self.engine.connect()
        return await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def _close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def close(self) -> None:
        await self._close_idle()
        await self.engine.dispose()


async def awrite(ctx: ApiContext, fn: Callable[[Connection], T]) -> T:
    """A write transaction in a worker thread (committed when ``fn`` returns)."""
    return await asyncio.to_thread(write, ctx, fn)


async def aread(ctx: ApiContext, fn: Callable[[Connection], T]) -> T:
    """A read (autocommit on PostgreSQL) without blocking the event loop."""
    if ctx.aio is not None:
        return await ctx.aio.read(fn)
    return await asyncio.to_thread(read, ctx, fn)
