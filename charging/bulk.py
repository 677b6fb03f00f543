"""Set-based writes of a batch transaction: one statement per table, whatever the row count.

On PostgreSQL each write is ONE statement whose parameters are column arrays, sent in binary
as charging.pgarrays encodes them (``INSERT … SELECT … FROM unnest(…)``,
``UPDATE … FROM unnest(…)``, ``DELETE … = ANY(…)``):
one Bind/Execute, one plan (psycopg prepares the fixed text after a few uses) and no per-row
SQLAlchemy compilation, where ``executemany`` sends a Bind/Execute per row. Other backends
(SQLite runs in-process) use SQLAlchemy ``executemany`` on an equivalent Core statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from charging import pgarrays, pgpipeline

#: ``member(column, name)``: the condition "column is in the list parameter ``name``".
Member = Callable[[sa.ColumnElement[Any], str], sa.ColumnElement[bool]]


_COMBINED = "charging.bulk.combined"
_REGISTERED = "charging.bulk.arrays"


def _driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under ``conn``, able to send :class:`PgArray` parameters."""
    info = conn.connection.info  # kept with the DBAPI connection across checkouts
    raw: psycopg.Connection[Any] = conn.connection.driver_connection
    if not info.get(_REGISTERED):
        pgarrays.register(raw)
        info[_REGISTERED] = True
    return raw


class RowsMoved(Exception):
    """A compare-and-swap write inside :func:`combined_writes` updated fewer rows than it
    expected: the statement failed, so none of its writes (nor a commit sent with them) took
    effect."""


#: What the failing row-count check of a compare-and-swap write says (see _Combined.run).
_MOVED = "rows moved: "


class _Combined:
    """Writes collected inside :func:`combined_writes`, sent as ONE statement: each write becomes a
    data-modifying ``WITH`` query (PostgreSQL §7.8.4) and the statement returns their row
    counts. They share one snapshot, so the block must not write a row twice (its writes go to
    distinct rows: the holds dropped and added, sessions, usage, counters, new rows)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []
        self.expected: dict[int, int] = {}
        self.counts: tuple[int, ...] = ()

    def add(self, sql: str, params: tuple[Any, ...], expect: int | None) -> Callable[[], int]:
        index = len(self.parts)
        self.parts.append(sql)
        self.params.extend(params)
        if expect is not None:
            self.expected[index] = expect
        return lambda: self.counts[index]

    def run(self, conn: Connection, commit: bool) -> None:
        if not self.parts:
            pgpipeline.run(conn, [], commit=commit)
            return
        params = list(self.params)
        counts = []
        for i in range(len(self.parts)):
            if i in self.expected:
                # A write that must touch exactly its expected rows fails the statement
                # otherwise (a text that is no number, cast at run time), so a COMMIT sent
                # in the same round trip finds the transaction aborted.
                counts.append(f"(SELECT CASE WHEN count(*) = %b THEN count(*) ELSE "
                              f"('{_MOVED}w{i} ' || count(*))::int8 END FROM w{i})")  # fmt: skip
                params.append(self.expected[i])
            else:
                counts.append(f"(SELECT count(*) FROM w{i})")
        ctes = ", ".join(f"w{i} AS ({sql} RETURNING 1)" for i, sql in enumerate(self.parts))
        sql = f"WITH {ctes} SELECT {', '.join(counts)}"
        (row,) = pgpipeline.run(conn, [(pgpipeline.statement(sql), params)], commit=commit)[0]
        self.counts = tuple(int(n) for n in row)


@contextmanager
def combined_writes(conn: Connection, *, commit: bool = False) -> Iterator[None]:
    """Send the bulk writes made inside the block as one statement, in one round trip, on
    PostgreSQL (see :class:`_Combined`); its errors are raised, as SQLAlchemy's, when the block
    ends (:class:`RowsMoved` for a compare-and-swap that missed). With ``commit`` the
    transaction's COMMIT goes in the same round trip: the block must be its last work, and a
    failed write leaves it aborted (to roll back). Elsewhere the writes run one by one as they
    are made and ``commit`` is left to the caller."""
    if conn.dialect.name != "postgresql":
        yield
        return
    combined = conn.info[_COMBINED] = _Combined()
    try:
        yield
        combined.run(conn, commit)
    except psycopg.errors.InvalidTextRepresentation as exc:
        if _MOVED not in str(exc):
            raise sa.exc.DBAPIError.instance(
                "(combined bulk writes)", None, exc, psycopg.Error
            ) from exc
        raise RowsMoved(str(exc)) from exc
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance(
            "(combined bulk writes)", None, exc, psycopg.Error
        ) from exc
    finally:
        conn.info.pop(_COMBINED, None)


def _write(
    conn: Connection, sql: str, params: tuple[Any, ...], expect: int | None = None
) -> Callable[[], int]:
    """Run (or, inside :func:`combined_writes`, collect) a write; returns its row count getter
    (inside the block, valid once it has ended). Inside the block, a write whose row count
    must be ``expect`` fails the whole statement otherwise (:class:`RowsMoved`)."""
    combined: _Combined | None = conn.info.get(_COMBINED)
    if combined is None:
        _driver(conn)
        count = int(conn.exec_driver_sql(sql, params).rowcount)
        return lambda: count
    return combined.add(sql, params, expect)


class _Compiled:
    """Per-dialect compiled state of a bulk statement (built on first use): its SQL and the
    array codec of each parameter column."""

    __slots__ = ("codecs", "sql")

    def __init__(self, sql: str, codecs: list[pgarrays.Codec]) -> None:
        self.sql = sql
        self.codecs = codecs

    def arrays(self, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> tuple[Any, ...]:
        return tuple(
            codec.array([row[key] for row in rows])
            for key, codec in zip(keys, self.codecs, strict=True)
        )


def _cast(column: sa.ColumnElement[Any], alias: str) -> str:
    """``u.alias`` as the column's value (JSON arrives as text)."""
    return f"u.{alias}::JSON" if isinstance(column.type, sa.JSON) else f"u.{alias}"


def _params(columns: Sequence[sa.ColumnElement[Any]]) -> tuple[str, list[pgarrays.Codec]]:
    codecs = [pgarrays.codec(c) for c in columns]
    return ", ".join(f"%b::{c.sql_type}[]" for c in codecs), codecs


class BulkInsert:
    """``INSERT`` of many rows (dicts keyed by column name) into ``table``."""

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._pg: _Compiled | None = None

    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if conn.dialect.name != "postgresql":
            conn.execute(self.table.insert(), [{c: r[c] for c in self.columns} for r in rows])
            return
        pg = self._pg or self._compile()
        _write(conn, pg.sql, pg.arrays(rows, self.columns))

    def statement(
        self, rows: Sequence[dict[str, Any]], tail: str = ""
    ) -> tuple[str, tuple[Any, ...]]:
        """The PostgreSQL INSERT of ``rows`` with ``tail`` appended (conditions on the unnest
        alias ``u``, RETURNING…), and its parameters: for :func:`fetch_all`."""
        pg = self._pg or self._compile()
        return f"{pg.sql} {tail}", pg.arrays(rows, self.columns)

    def ids_by(self, conn: Connection, rows: Sequence[dict[str, Any]], key: str) -> dict[Any, int]:
        """Insert ``rows`` and return the generated ``id`` of each by its (unique) ``key``."""
        if not rows:
            return {}
        t = self.table
        if conn.dialect.name != "postgresql":
            result = conn.execute(
                t.insert().returning(t.c[key], t.c.id, sort_by_parameter_order=True),
                [{c: r[c] for c in self.columns} for r in rows],
            )
            return {k: int(pk) for k, pk in result}
        pg = self._pg or self._compile()
        _driver(conn)
        result = conn.exec_driver_sql(
            f"{pg.sql} RETURNING {key}, id", pg.arrays(rows, self.columns)
        )
        return {k: int(pk) for k, pk in result}

    def _compile(self) -> _Compiled:
        cols = [self.table.c[name] for name in self.columns]
        names = ", ".join(self.columns)
        arrays, codecs = _params(cols)
        select = ", ".join(_cast(c, c.name) for c in cols)
        sql = (f"INSERT INTO {self.table.name} ({names}) SELECT {select} "
               f"FROM unnest({arrays}) AS u({names})")  # fmt: skip
        self._pg = _Compiled(sql, codecs)
        return self._pg


class BulkUpdate:
    """``UPDATE`` of many rows by ``key``: each row dict holds the key, the new values of
    ``columns`` and, for every column in ``match``, its expected current value under
    ``"was_" + name`` (a compare-and-swap: rows that moved are not updated)."""

    def __init__(self, table: sa.Table, key: str, columns: Sequence[str],
                 match: Sequence[str] = ()) -> None:  # fmt: skip
        self.table = table
        self.key = key
        self.columns = tuple(columns)
        self.match = tuple(match)
        self._pg: _Compiled | None = None
        t = table
        self._core = (
            t.update()
            .where(t.c[key] == sa.bindparam("b_key"),
                   *(t.c[m] == sa.bindparam(f"b_was_{m}") for m in self.match))
            .values({c: sa.bindparam(f"b_{c}") for c in self.columns})
        )  # fmt: skip

    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]], *,
                 exact: bool = False) -> Callable[[], int]:  # fmt: skip
        """Update ``rows``; returns the getter of the number of rows updated (inside
        :func:`combined_writes`, call it after the block; there, with ``exact``, any row
        that was not updated fails the block with :class:`RowsMoved`)."""
        if not rows:
            return lambda: 0
        if conn.dialect.name != "postgresql":
            params = [
                {"b_key": r[self.key], **{f"b_{c}": r[c] for c in self.columns},
                 **{f"b_was_{m}": r[f"was_{m}"] for m in self.match}}
                for r in rows
            ]  # fmt: skip
            count = int(conn.execute(self._core, params).rowcount)
            return lambda: count
        pg = self._pg or self._compile()
        keys = (self.key, *self.columns, *(f"was_{m}" for m in self.match))
        return _write(conn, pg.sql, pg.arrays(rows, keys), len(rows) if exact else None)

    def _compile(self) -> _Compiled:
        t = self.table
        cols = [t.c[self.key], *(t.c[c] for c in self.columns), *(t.c[m] for m in self.match)]
        aliases = ["k", *(f"n_{c}" for c in self.columns), *(f"w_{m}" for m in self.match)]
        arrays, codecs = _params(cols)
        sets = ", ".join(f"{c} = {_cast(t.c[c], f'n_{c}')}" for c in self.columns)
        where = " AND ".join([f"t.{self.key} = u.k", *(f"t.{m} = u.w_{m}" for m in self.match)])
        sql = (f"UPDATE {t.name} AS t SET {sets} FROM unnest({arrays}) "
               f"AS u({', '.join(aliases)}) WHERE {where}")  # fmt: skip
        self._pg = _Compiled(sql, codecs)
        return self._pg


class BulkDelete:
    """``DELETE`` of the rows of ``table`` whose ``key`` is in a list."""

    def __init__(self, table: sa.Table, key: str) -> None:
        self.table = table
        self.key = key
        self._codec = pgarrays.codec(table.c[key])
        self._pg_sql = f"DELETE FROM {table.name} WHERE {key} = ANY(%b::{self._codec.sql_type}[])"

    def __call__(self, conn: Connection, keys: Sequence[Any]) -> None:
        if not keys:
            return
        if conn.dialect.name != "postgresql":
            conn.execute(self.table.delete().where(self.table.c[self.key].in_(list(keys))))
            return
        _write(conn, self._pg_sql, (self._codec.array(keys),))


def _in_list(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    return column.in_(sa.bindparam(name, expanding=True))


def _any_array(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))


def fetch_all(
    conn: Connection, queries: Sequence[tuple[Prebuilt | str, Any]]
) -> list[list[Sequence[Any]]]:
    """Run read statements in order; returns each one's rows (in select-column order). A
    statement given as SQL text (PostgreSQL only, e.g. :meth:`BulkInsert.statement` with a
    RETURNING) is run as it is.

    On PostgreSQL they go in ONE round trip (charging.pgpipeline) as plain tuples; the server
    still runs them one after the other, each with its own snapshot (READ COMMITTED), so reads
    queued after a ``SELECT … FOR UPDATE`` see what the previous holder of those locks
    committed. Elsewhere they run one by one through SQLAlchemy.
    """
    if conn.dialect.name != "postgresql":
        return [list(conn.execute(query(conn), params)) for query, params in queries]  # type: ignore[operator]
    calls = [
        (pgpipeline.statement(query if isinstance(query, str) else query.sql(conn)), params)
        for query, params in queries
    ]
    try:
        return pgpipeline.run(conn, calls)
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance("(pipelined reads)", None, exc, psycopg.Error) from exc


class Prebuilt:
    """A read statement built once per dialect. ``build(member)`` makes it, with
    ``member(column, name)`` for "column is in the list parameter ``name``": an expanding
    ``IN (…)``, but on PostgreSQL ``column = ANY(:name)`` with one array parameter, so the SQL
    text is the same for any list length and psycopg's query and prepared-statement caches hit.
    """

    def __init__(
        self,
        build: Callable[[Member], sa.Executable],
        postgresql: Callable[[], sa.Executable] | None = None,
    ) -> None:
        self._build = build
        self._postgresql = postgresql  # a PostgreSQL-specific form, when there is one
        self._by_dialect: dict[str, sa.Executable] = {}
        self._pg_sql: str | None = None

    def sql(self, conn: Connection) -> str:
        """The PostgreSQL statement as psycopg SQL text (``%(name)s`` parameters)."""
        if self._pg_sql is None:
            self._pg_sql = str(self(conn).compile(dialect=conn.dialect))
        return self._pg_sql

    def __call__(self, conn: Connection) -> sa.Executable:
        name = conn.dialect.name
        stmt = self._by_dialect.get(name)
        if stmt is None:
            if name == "postgresql":
                stmt = self._postgresql() if self._postgresql else self._build(_any_array)
            else:
                stmt = self._build(_in_list)
            self._by_dialect[name] = stmt
        return stmt
