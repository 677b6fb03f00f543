"""The group-commit writer's row writes as prepared driver statements, many rows each.

SQLAlchemy compiles each statement once per dialect and row count (its SQL text, bind casts and
parameter order), values go through the columns' own bind/result processors, and the statement
runs on the DBAPI cursor of the writer's SQLAlchemy connection, inside the writer's transaction.
This skips SQLAlchemy's per-execution work (execution context, cache key, expanding-parameter
rendering, result wrapping).

A batch's rows of one table go out as one multi-row statement (``INSERT … VALUES (…), (…) ON
CONFLICT …``, ``DELETE … WHERE key IN (…) [RETURNING …]``), not as an executemany that binds,
steps and resets once per row: on SQLite the writer's CPU per written row halves (~18 → ~9 µs
for Gx session rows). Row counts are split into powers of two (at most ``MAX_ROWS``), so each
table has a few distinct statements for the drivers' statement caches (sqlite3 keeps 128,
psycopg prepares the ones it sees often).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None

#: Rows per statement: 64 rows of our widest table stay under SQLite's historic limit of 999
#: bound parameters (SQLITE_MAX_VARIABLE_NUMBER before 3.32).
MAX_ROWS = 64


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    columns: tuple[str, ...]  # bound per row, in this order
    processors: tuple[Processor, ...]
    names: tuple[str, ...] | None  # the driver's parameter names (None: positional)

    def params(self, rows: Sequence[dict[str, Any]], done: dict[str, Any]) -> Any:
        """Driver parameters for ``rows``; ``done`` holds values (same for every row) already
        converted."""
        values = [
            done[c] if c in done else (p(row[c]) if p is not None else row[c])
            for row in rows
            for c, p in zip(self.columns, self.processors, strict=True)
        ]
        return tuple(values) if self.names is None else dict(zip(self.names, values, strict=True))

    def convert(self, extra: dict[str, Any]) -> dict[str, Any]:
        """``extra`` converted once."""
        procs = dict(zip(self.columns, self.processors, strict=True))
        return {k: (procs[k](v) if procs.get(k) is not None else v) for k, v in extra.items()}


class RowSql:
    """Prepared multi-row upserts and deletes for one dialect (SQLite, PostgreSQL/psycopg)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._cache: dict[tuple[str, sa.Column[Any], int], _Statement] = {}
        self._rows: dict[sa.Table, tuple[Any, tuple[Processor, ...]]] = {}

    def begin(self, driver: Any) -> None:
        """Open a transaction on the driver connection. SQLite: BEGIN IMMEDIATE, the write lock
        up front, as openpcc.database has SQLAlchemy do (no lock-upgrade deadlock between
        processes); psycopg opens one implicitly at the first statement."""
        if self.dialect.name == "sqlite":
            driver.execute("BEGIN IMMEDIATE")

    def upsert(
        self, cursor: Any, key: sa.Column[Any], rows: list[dict[str, Any]], extra: dict[str, Any]
    ) -> None:
        """Insert or replace ``rows`` (distinct keys) by ``key``; ``extra`` adds the same
        values to every row."""
        done: dict[str, Any] | None = None
        for chunk in _chunks(rows):
            stmt = self._statement("upsert", key, len(chunk))
            if done is None:
                done = stmt.convert(extra)
            cursor.execute(stmt.sql, stmt.params(chunk, done))

    def delete(self, cursor: Any, key: sa.Column[Any], values: list[Any]) -> None:
        for chunk in _chunks(values):
            stmt = self._statement("delete", key, len(chunk))
            cursor.execute(stmt.sql, stmt.params([{key.name: v} for v in chunk], {}))

    def delete_returning(self, cursor: Any, column: sa.Column[Any], values: list[Any]) -> list[Any]:
        """Delete the rows whose ``column`` is one of ``values``; returns them (named tuples
        with the table's column names, values converted as a SQLAlchemy select would)."""
        raw: list[Any] = []
        for chunk in _chunks(values):
            stmt = self._statement("delete_returning", column, len(chunk))
            cursor.execute(stmt.sql, stmt.params([{column.name: v} for v in chunk], {}))
            raw += cursor.fetchall()
        shape, processors = self._row_shape(column.table)
        return [
            shape._make(p(v) if p is not None else v for v, p in zip(r, processors, strict=True))
            for r in raw
        ]

    def _statement(self, kind: str, key: sa.Column[Any], n: int) -> _Statement:
        found = self._cache.get((kind, key, n))
        if found is not None:
            return found
        table = key.table
        columns = tuple(c.name for c in table.columns) if kind == "upsert" else (key.name,)
        binds = [{c: sa.bindparam(f"{c}_m{i}", type_=table.c[c].type) for c in columns}
                 for i in range(n)]  # fmt: skip
        if kind == "upsert":
            stmt: Any = upsert_statement(self.dialect.name, table, key, binds)
        else:
            stmt = table.delete().where(key.in_([b[key.name] for b in binds]))
            if kind == "delete_returning":
                stmt = stmt.returning(*table.columns)
        compiled = stmt.compile(dialect=self.dialect)
        # Parameters are built row by row, column by column: a positional statement must bind
        # them in that order.
        names = tuple(b[c].key for b in binds for c in columns)
        assert not compiled.positional or tuple(compiled.positiontup or ()) == names
        processors = tuple(self._bind_processor(table.c[c]) for c in columns)
        found = _Statement(
            compiled.string, columns, processors, None if compiled.positional else names
        )
        self._cache[(kind, key, n)] = found
        return found

    def _bind_processor(self, column: sa.Column[Any]) -> Processor:
        return column.type.dialect_impl(self.dialect).bind_processor(self.dialect)  # type: ignore[no-any-return]

    def _row_shape(self, table: sa.Table) -> tuple[Any, tuple[Processor, ...]]:
        found = self._rows.get(table)
        if found is None:
            shape = namedtuple("Row", [c.name for c in table.columns])  # type: ignore[misc]
            processors = tuple(
                c.type.dialect_impl(self.dialect).result_processor(self.dialect, None)
                for c in table.columns
            )
            found = self._rows[table] = (shape, processors)
        return found


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    """``items`` in runs of powers of two, largest first, at most MAX_ROWS each."""
    start = 0
    while start < len(items):
        size = min(MAX_ROWS, 1 << ((len(items) - start).bit_length() - 1))
        yield items[start : start + size]
        start += size


def upsert_statement(
    dialect: str, table: sa.Table, key: sa.Column[Any], rows: list[dict[str, Any]]
) -> Any:
    """INSERT … VALUES ``rows`` … ON CONFLICT (key) DO UPDATE of every column but
    ``created_at``."""
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect](table)
    insert = insert.values(rows)
    keep = {key.name, "created_at"}
    changes = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keep}
    return insert.on_conflict_do_update(index_elements=[key], set_=changes)
