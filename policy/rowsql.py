"""The group-commit writer's row writes as prepared driver statements.

SQLAlchemy compiles each statement once per dialect (its SQL text, bind casts and parameter
order), values go through the columns' own bind/result processors, and the statement runs on the
DBAPI cursor of the writer's SQLAlchemy connection, inside the writer's transaction. What this
skips is SQLAlchemy's per-execution work (execution context, cache key, expanding-parameter
rendering, result wrapping): for a one-row write about twice SQLite's own CPU.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Statement:
    sql: str
    names: tuple[str, ...]  # bind names, in positional order for positional paramstyles
    processors: tuple[Processor, ...]
    positional: bool

    def params(self, row: dict[str, Any], done: dict[str, Any]) -> Any:
        """Driver parameters of one row; ``done`` holds values already converted."""
        values = [
            done[n] if n in done else (p(row[n]) if p is not None else row[n])
            for n, p in zip(self.names, self.processors, strict=True)
        ]
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))

    def convert(self, extra: dict[str, Any]) -> dict[str, Any]:
        """``extra`` (same for every row) converted once."""
        procs = dict(zip(self.names, self.processors, strict=True))
        return {k: (procs[k](v) if procs.get(k) is not None else v) for k, v in extra.items()}


class RowSql:
    """Prepared upserts and deletes for one dialect (SQLite, PostgreSQL/psycopg)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        # psycopg 3 returns each parameter set's RETURNING rows from one pipelined executemany.
        self._many_returning = dialect.driver == "psycopg"
        self._cache: dict[tuple[str, sa.Column[Any]], _Statement] = {}
        self._rows: dict[sa.Table, tuple[Any, tuple[Processor, ...]]] = {}

    def begin(self, driver: Any) -> None:
        """Open a transaction on the driver connection. SQLite: BEGIN IMMEDIATE, the write lock
        up front, as openpcc.database has SQLAlchemy do (no lock-upgrade deadlock between
        processes); psycopg opens one implicitly at the first statement."""
        if self.dialect.name == "sqlite":
            driver.execute("BEGIN IMMEDIATE")

    def upsert(
        self,
        cursor: Any,
        key: sa.Column[Any],
        rows: Iterable[dict[str, Any]],
        extra: dict[str, Any],
    ) -> None:
        """Insert or replace ``rows`` by ``key``; ``extra`` adds the same values to every row."""
        stmt = self._statement("upsert", key)
        done = stmt.convert(extra)
        cursor.executemany(stmt.sql, [stmt.params(row, done) for row in rows])

    def delete(self, cursor: Any, key: sa.Column[Any], values: Iterable[Any]) -> None:
        stmt = self._statement("delete", key)
        cursor.executemany(stmt.sql, [stmt.params({key.name: v}, {}) for v in values])

    def delete_returning(self, cursor: Any, column: sa.Column[Any], values: list[Any]) -> list[Any]:
        """Delete the rows whose ``column`` is one of ``values``; returns them (named tuples
        with the table's column names, values converted as a SQLAlchemy select would)."""
        stmt = self._statement("delete_returning", column)
        params = [stmt.params({column.name: v}, {}) for v in values]
        if self._many_returning:
            cursor.executemany(stmt.sql, params, returning=True)
            raw: list[Any] = []
            while True:
                raw += cursor.fetchall()
                if not cursor.nextset():
                    break
        else:
            raw = [r for p in params for r in cursor.execute(stmt.sql, p).fetchall()]
        shape, processors = self._row_shape(column.table)
        return [
            shape._make(p(v) if p is not None else v for v, p in zip(r, processors, strict=True))
            for r in raw
        ]

    def _statement(self, kind: str, key: sa.Column[Any]) -> _Statement:
        found = self._cache.get((kind, key))
        if found is not None:
            return found
        table = key.table
        if kind == "upsert":
            names = [c.name for c in table.columns]
            compiled = upsert_statement(self.dialect.name, table, key).compile(
                dialect=self.dialect, column_keys=names
            )
        else:
            delete = table.delete().where(key == sa.bindparam(key.name))
            if kind == "delete_returning":
                delete = delete.returning(*table.columns)
            compiled = delete.compile(dialect=self.dialect)
        order = tuple(compiled.positiontup or compiled.binds)
        processors = tuple(self._bind_processor(table.c[n]) for n in order)
        found = _Statement(compiled.string, order, processors, compiled.positional)
        self._cache[(kind, key)] = found
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


@functools.cache
def upsert_statement(dialect: str, table: sa.Table, key: sa.Column[Any]) -> Any:
    """INSERT … ON CONFLICT (key) DO UPDATE of every column but ``created_at``."""
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect](table)
    keep = {key.name, "created_at"}
    changes = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keep}
    return insert.on_conflict_do_update(index_elements=[key], set_=changes)
