"""Group commit: every write queued while the previous commit ran goes out in one transaction
(one fsync), off the event loop, and each caller resumes only once its write is durable.

Row writes are declarative (:class:`Upsert`, :class:`Delete`) so a batch can merge them: the
upserts of a table become one executemany, the deletes one ``DELETE … WHERE key IN (…)``. Merging
never reorders two writes that touch the same row (or a row bound to it): such a write starts a
new group, applied after the previous one in the same transaction. A function op runs as is, in
queue order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from policy.models import utcnow

IN_CHUNK = 500  # keys per IN (…) list: far below every driver's bound-parameter limit


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert or replace one row by its key."""

    table: sa.Table
    key: sa.Column[Any]
    row: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the row whose ``key`` is ``value``; with ``children`` (a foreign-key column of
    another table referencing it), first the rows bound to it, which are the op's result."""

    table: sa.Table
    key: sa.Column[Any]
    value: Any
    children: sa.Column[Any] | None = None


Op = Callable[[Connection], Any] | Upsert | Delete


class GroupCommitWriter:
    """Runs queued writes in as few transactions as possible, off the event loop."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: list[tuple[Op, asyncio.Future[Any]]] = []
        self._running: asyncio.Task[None] | None = None

    async def run(self, op: Op) -> Any:
        """Apply ``op`` in a committed transaction; returns a function op's result (a
        :class:`Delete` with children: their rows)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        # One connection for consecutive batches: under load the queue never empties and the
        # pool checkout/reset per transaction (as much CPU as the write itself) is saved.
        conn: list[Connection] = []
        while self._queue:
            while self._queue:
                batch, self._queue = self._queue, []
                ops = [op for op, _ in batch]
                try:
                    results = await asyncio.to_thread(self._commit, ops, conn)
                except Exception:
                    # Isolate the failing write: replay each alone so the others still commit.
                    for op, future in batch:
                        try:
                            result = (await asyncio.to_thread(self._commit, [op], conn))[0]
                        except Exception as exc:
                            if not future.done():
                                future.set_exception(exc)
                        else:
                            if not future.done():
                                future.set_result(result)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
            if conn:  # queue empty: hand the connection back (writes queued meanwhile loop)
                await asyncio.to_thread(conn.pop().close)

    def _commit(self, ops: list[Op], held: list[Connection]) -> list[Any]:
        """Apply ``ops`` in one transaction on ``held``'s connection (opened when empty; dropped
        after a failure, so the next batch starts on a fresh one)."""
        if not held:
            held.append(self.engine.connect())
        conn = held[0]
        results: list[Any] = [None] * len(ops)
        group = _Group()
        try:
            with conn.begin():
                for i, op in enumerate(ops):
                    if isinstance(op, Upsert | Delete):
                        if not group.add(i, op):
                            group.flush(conn, results)
                            group.add(i, op)
                    else:
                        group.flush(conn, results)
                        results[i] = op(conn)
                group.flush(conn, results)
        except Exception:
            held.clear()
            conn.close()
            raise
        return results


@dataclass(slots=True)
class _Group:
    """Row writes that commute (no two touch the same row), merged per table."""

    upserts: dict[sa.Table, dict[Any, dict[str, Any]]] = field(default_factory=dict)
    keys: dict[sa.Table, sa.Column[Any]] = field(default_factory=dict)
    deletes: list[tuple[int, Delete]] = field(default_factory=list)
    deleted: set[tuple[sa.Table, Any]] = field(default_factory=set)
    # (foreign-key column, value) of upserted rows / of rows a Delete's children clause removes
    bound: set[tuple[sa.Column[Any], Any]] = field(default_factory=set)
    orphaned: set[tuple[sa.Column[Any], Any]] = field(default_factory=set)
    # Tables with deletes by key / with rows deleted as some Delete's children: mixing both in
    # one group could hand a Delete children that an earlier op already removed.
    direct: set[sa.Table] = field(default_factory=set)
    cascaded: set[sa.Table] = field(default_factory=set)

    def add(self, index: int, op: Upsert | Delete) -> bool:
        """Take ``op`` unless it touches a row this group already writes differently."""
        if isinstance(op, Upsert):
            row, table = op.row, op.table
            value = row[op.key.name]
            fks = [(column, row[column.name]) for column in _references(table)]
            if (table, value) in self.deleted or any(ref in self.orphaned for ref in fks):
                return False
            rows = self.upserts.setdefault(table, {})
            rows.pop(value, None)  # the same row twice: the last one wins
            rows[value] = row
            self.keys[table] = op.key
            self.bound.update(fks)
            return True
        target = (op.table, op.value)
        if target in self.deleted or op.value in self.upserts.get(op.table, ()):
            return False
        if op.table in self.cascaded:
            return False
        children = op.children
        if children is not None and (
            (children, op.value) in self.bound or children.table in self.direct
        ):
            return False
        self.deleted.add(target)
        self.direct.add(op.table)
        if children is not None:
            self.orphaned.add((children, op.value))
            self.cascaded.add(children.table)
        self.deletes.append((index, op))
        return True

    def flush(self, conn: Connection, results: list[Any]) -> None:
        if self.upserts:
            now = utcnow()
            order = _table_order(next(iter(self.upserts)).metadata)  # parents first
            for table in sorted(self.upserts, key=lambda t: order.get(t, len(order))):
                rows = [{**r, "created_at": now, "updated_at": now}
                        for r in self.upserts[table].values()]  # fmt: skip
                conn.execute(upsert_statement(conn.dialect.name, table, self.keys[table]), rows)
        if self.deletes:
            self._delete(conn, results)
        self.upserts.clear()
        self.keys.clear()
        self.deletes.clear()
        self.deleted.clear()
        self.bound.clear()
        self.orphaned.clear()
        self.direct.clear()
        self.cascaded.clear()

    def _delete(self, conn: Connection, results: list[Any]) -> None:
        cascades: dict[sa.Column[Any], list[tuple[int, Any]]] = {}
        by_key: dict[sa.Column[Any], list[Any]] = {}
        for index, op in self.deletes:
            if op.children is not None:
                cascades.setdefault(op.children, []).append((index, op.value))
            by_key.setdefault(op.key, []).append(op.value)
        for column, targets in cascades.items():
            found: dict[Any, list[Any]] = {}
            for chunk in _chunks([v for _, v in targets]):
                delete = column.table.delete().where(column.in_(chunk)).returning(column.table)
                for row in conn.execute(delete):
                    found.setdefault(getattr(row, column.name), []).append(row)
            for index, value in targets:
                results[index] = found.get(value, [])
        for key, values in by_key.items():
            for chunk in _chunks(values):
                conn.execute(key.table.delete().where(key.in_(chunk)))


@functools.cache
def _references(table: sa.Table) -> tuple[sa.Column[Any], ...]:
    """The table's foreign-key columns."""
    return tuple(fk.parent for fk in table.foreign_keys)


@functools.cache
def _table_order(metadata: sa.MetaData) -> dict[sa.Table, int]:
    return {t: i for i, t in enumerate(metadata.sorted_tables)}


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


@functools.cache
def upsert_statement(dialect: str, table: sa.Table, key: sa.Column[Any]) -> Any:
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect](table)
    keep = {key.name, "created_at"}
    changes = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keep}
    return insert.on_conflict_do_update(index_elements=[key], set_=changes)
