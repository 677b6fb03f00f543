"""Set-based writes of a batch transaction: one statement per table, whatever the row count.

On PostgreSQL each write is ONE statement whose parameters are column arrays, sent in binary
(``INSERT … SELECT … FROM unnest(…)``, ``UPDATE … FROM unnest(…)``, ``DELETE … = ANY(…)``):
one Bind/Execute, one plan (psycopg prepares the fixed text after a few uses) and no per-row
SQLAlchemy compilation, where ``executemany`` sends a Bind/Execute per row. Other backends
(SQLite runs in-process) use SQLAlchemy ``executemany`` on an equivalent Core statement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect

_Processor = Callable[[Any], Any] | None
#: ``member(column, name)``: the condition "column is in the list parameter ``name``".
Member = Callable[[sa.ColumnElement[Any], str], sa.ColumnElement[bool]]


_PIPELINE = "charging.bulk.pipeline"


@contextmanager
def pipeline(conn: Connection) -> Iterator[None]:
    """Send the bulk writes made inside the block in one round trip on PostgreSQL (psycopg
    pipeline mode); their errors are raised, as SQLAlchemy's, when the block ends. A no-op
    elsewhere."""
    if conn.dialect.name != "postgresql":
        yield
        return
    raw = conn.connection.driver_connection
    conn.info[_PIPELINE] = raw
    try:
        with raw.pipeline():
            yield
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance(
            "(pipelined bulk writes)", None, exc, psycopg.Error
        ) from exc
    finally:
        conn.info.pop(_PIPELINE, None)


def _write(conn: Connection, sql: str, params: tuple[Any, ...]) -> int:
    raw = conn.info.get(_PIPELINE)
    if raw is None:
        return int(conn.exec_driver_sql(sql, params).rowcount)
    raw.cursor().execute(sql, params)  # queued: the result arrives when the pipeline ends
    return -1


def _pg_type(column: sa.Column[Any], dialect: Dialect) -> str:
    if isinstance(column.type, sa.JSON):
        return "TEXT"  # serialised here, cast to JSON in the statement
    return column.type.compile(dialect=dialect)


def _processor(column: sa.Column[Any], dialect: Dialect) -> _Processor:
    if isinstance(column.type, sa.JSON):
        return lambda v: None if v is None else json.dumps(v)
    return column.type.bind_processor(dialect)


def _arrays(rows: Sequence[dict[str, Any]], keys: Sequence[str],
            processors: Sequence[_Processor]) -> tuple[list[Any], ...]:  # fmt: skip
    out = []
    for key, proc in zip(keys, processors, strict=True):
        values = [row[key] for row in rows]
        out.append([proc(v) for v in values] if proc is not None else values)
    return tuple(out)


class _Compiled:
    """Per-dialect compiled state of a bulk statement (built on first use)."""

    __slots__ = ("processors", "sql")

    def __init__(self, sql: str, processors: list[_Processor]) -> None:
        self.sql = sql
        self.processors = processors


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
        pg = self._pg or self._compile(conn.dialect)
        _write(conn, pg.sql, _arrays(rows, self.columns, pg.processors))

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
        pg = self._pg or self._compile(conn.dialect)
        result = conn.exec_driver_sql(
            f"{pg.sql} RETURNING {key}, id", _arrays(rows, self.columns, pg.processors)
        )
        return {k: int(pk) for k, pk in result}

    def _compile(self, dialect: Dialect) -> _Compiled:
        cols = [self.table.c[name] for name in self.columns]
        names = ", ".join(self.columns)
        arrays = ", ".join(f"%b::{_pg_type(c, dialect)}[]" for c in cols)
        select = ", ".join(
            f"u.{c.name}::JSON" if isinstance(c.type, sa.JSON) else f"u.{c.name}" for c in cols
        )
        sql = (f"INSERT INTO {self.table.name} ({names}) SELECT {select} "
               f"FROM unnest({arrays}) AS u({names})")  # fmt: skip
        self._pg = _Compiled(sql, [_processor(c, dialect) for c in cols])
        return self._pg


class BulkUpdate:
    """``UPDATE`` of many rows by ``key``: each row dict holds the key, the new values of
    ``columns`` and, for every column in ``match``, its expected current value under
    ``"was_" + name`` (a compare-and-swap: rows that moved are not updated). Returns the number
    of rows updated (-1 inside :func:`pipeline`, where it is not known yet)."""

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

    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        if conn.dialect.name != "postgresql":
            params = [
                {"b_key": r[self.key], **{f"b_{c}": r[c] for c in self.columns},
                 **{f"b_was_{m}": r[f"was_{m}"] for m in self.match}}
                for r in rows
            ]  # fmt: skip
            return int(conn.execute(self._core, params).rowcount)
        pg = self._pg or self._compile(conn.dialect)
        keys = (self.key, *self.columns, *(f"was_{m}" for m in self.match))
        return _write(conn, pg.sql, _arrays(rows, keys, pg.processors))

    def _compile(self, dialect: Dialect) -> _Compiled:
        t = self.table
        cols = [t.c[self.key], *(t.c[c] for c in self.columns), *(t.c[m] for m in self.match)]
        aliases = ["k", *(f"n_{c}" for c in self.columns), *(f"w_{m}" for m in self.match)]
        arrays = ", ".join(f"%b::{_pg_type(c, dialect)}[]" for c in cols)
        sets = ", ".join(
            f"{c} = u.n_{c}::JSON" if isinstance(t.c[c].type, sa.JSON) else f"{c} = u.n_{c}"
            for c in self.columns
        )
        where = " AND ".join([f"t.{self.key} = u.k", *(f"t.{m} = u.w_{m}" for m in self.match)])
        sql = (f"UPDATE {t.name} AS t SET {sets} FROM unnest({arrays}) "
               f"AS u({', '.join(aliases)}) WHERE {where}")  # fmt: skip
        self._pg = _Compiled(sql, [_processor(c, dialect) for c in cols])
        return self._pg


class BulkDelete:
    """``DELETE`` of the rows of ``table`` whose ``key`` is in a list."""

    def __init__(self, table: sa.Table, key: str) -> None:
        self.table = table
        self.key = key
        self._pg_sql = f"DELETE FROM {table.name} WHERE {key} = ANY(%b::BIGINT[])"

    def __call__(self, conn: Connection, keys: Sequence[Any]) -> None:
        if not keys:
            return
        if conn.dialect.name != "postgresql":
            conn.execute(self.table.delete().where(self.table.c[self.key].in_(list(keys))))
            return
        _write(conn, self._pg_sql, (list(keys),))


def _in_list(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    return column.in_(sa.bindparam(name, expanding=True))


def _any_array(column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))


def fetch_all(
    conn: Connection, queries: Sequence[tuple[Prebuilt, dict[str, Any]]]
) -> list[list[Sequence[Any]]]:
    """Run read statements in order; returns each one's rows (in select-column order).

    On PostgreSQL they go in ONE round trip (psycopg pipeline mode) as plain tuples; the server
    still runs them one after the other, each with its own snapshot (READ COMMITTED), so reads
    queued after a ``SELECT … FOR UPDATE`` see what the previous holder of those locks
    committed. Elsewhere they run one by one through SQLAlchemy.
    """
    if conn.dialect.name != "postgresql":
        return [list(conn.execute(query(conn), params)) for query, params in queries]
    raw = conn.connection.driver_connection
    try:
        with raw.pipeline():
            cursors = []
            for query, params in queries:
                cursor = raw.cursor()
                cursor.execute(query.sql(conn), params)
                cursors.append(cursor)
            return [cursor.fetchall() for cursor in cursors]
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance("(pipelined reads)", None, exc, psycopg.Error) from exc


class Prebuilt:
    """A read statement built once per dialect. ``build(member)`` makes it, with
    ``member(column, name)`` for "column is in the list parameter ``name``": an expanding
    ``IN (…)``, but on PostgreSQL ``column = ANY(:name)`` with one array parameter, so the SQL
    text is the same for any list length and psycopg's query and prepared-statement caches hit.
    """

    def __init__(self, build: Callable[[Member], sa.Executable]) -> None:
        self._build = build
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
            stmt = self._by_dialect[name] = self._build(
                _any_array if name == "postgresql" else _in_list
            )
        return stmt
