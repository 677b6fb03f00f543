"""Group commit: every write queued while the previous commit ran goes out in one transaction
(one fsync), off the event loop, and each caller resumes only once its write is durable.

Row writes are declarative (:class:`Upsert`, :class:`Delete`) so a batch can merge them: the
upserts of a table become one multi-row statement, its deletes another (policy.rowsql).
Merging never reorders two writes that touch the same row (or a row bound to it): such a write
starts a new group, applied after the previous one in the same transaction. A function op runs
as is, in queue order, on the SQLAlchemy connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from policy.models import utcnow
from policy.rowsql import RowSql

log = logging.getLogger("openpcc.policy")

IDLE_SECONDS = 1.0  # without writes, the writer thread hands its connection back and ends


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
_Job = tuple[asyncio.AbstractEventLoop, list[tuple[Op, "asyncio.Future[Any]"]]]


class GroupCommitWriter:
    """Runs queued writes in as few transactions as possible on its own thread.

    One batch is in the thread at a time; whatever is queued meanwhile becomes the next batch.
    Batches start at least ``interval`` seconds apart: under a steady stream of small writes
    each commit (thread hand-offs, fsync) then serves several of them, at the price of at most
    ``interval`` of extra latency; when writes are rarer nothing waits. The thread keeps its
    connection between batches and ends, handing the connection back, after ``IDLE_SECONDS``
    without writes (the next write starts a new one).
    """

    def __init__(self, engine: Engine, interval: float = 0.0) -> None:
        self.engine = engine
        self.interval = interval
        self._last_send = float("-inf")
        self._pending: list[tuple[Op, asyncio.Future[Any]]] = []
        self._in_flight = False
        self._lock = threading.Lock()  # guards _thread/_jobs against the thread's idle exit
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job | None] | None = None
        self._sql: RowSql | None = None

    async def run(self, op: Op) -> Any:
        """Apply ``op`` in a committed transaction; returns a function op's result (a
        :class:`Delete` with children: their rows)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((op, future))
        if not self._in_flight:
            self._in_flight = True
            self._schedule(loop)
        return await future

    async def close(self) -> None:
        """Finish the queued batch and end the thread (a later write starts a new one)."""
        with self._lock:
            thread, jobs = self._thread, self._jobs
            self._thread = self._jobs = None
            if jobs is not None:
                jobs.put(None)
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send the pending writes ``interval`` after the previous batch started, else at the
        end of this loop iteration (writes of requests that arrived together share a batch)."""
        at = self._last_send + self.interval
        if at > loop.time():
            loop.call_at(at, self._send, loop)
        else:
            loop.call_soon(self._send, loop)

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        self._last_send = loop.time()
        batch, self._pending = self._pending, []
        with self._lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._serve, args=(self._jobs,), name="policy-writer", daemon=True
                )
                self._thread.start()
            self._jobs.put((loop, batch))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Op, asyncio.Future[Any]]],
        outcomes: list[tuple[bool, Any]],
    ) -> None:
        """On the event loop: resume the batch's writers, send what queued meanwhile."""
        for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
            if not future.done():
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        if self._pending:
            self._schedule(loop)
        else:
            self._in_flight = False

    def _serve(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        """The writer thread: apply batches until closed or idle."""
        conn: Connection | None = None
        try:
            while True:
                try:
                    job = jobs.get(timeout=IDLE_SECONDS)
                except queue.Empty:
                    with self._lock:
                        if jobs.empty():
                            if self._jobs is jobs:
                                self._thread = self._jobs = None
                            return
                    continue
                if job is None:
                    return
                loop, batch = job
                conn, outcomes = self._apply(conn, [op for op, _ in batch])
                try:
                    loop.call_soon_threadsafe(self._finish, loop, batch, outcomes)
                except RuntimeError:  # the loop is closed: nobody waits for these
                    self._in_flight = False
        finally:
            if conn is not None:
                conn.close()

    def _apply(
        self, conn: Connection | None, ops: list[Op]
    ) -> tuple[Connection | None, list[tuple[bool, Any]]]:
        """Commit ``ops`` in one transaction; when that fails, each alone (so the others still
        commit). Returns the connection to keep (None after a failure) and per op (ok, result or
        exception)."""
        try:
            if conn is None:
                conn = self.engine.connect()
            return conn, [(True, r) for r in self._commit(conn, ops)]
        except Exception as exc:
            if conn is not None:
                _discard(conn)
            if len(ops) == 1:
                return None, [(False, exc)]
        outcomes: list[tuple[bool, Any]] = []
        conn = None
        for op in ops:
            conn, (outcome,) = self._apply(conn, [op])
            outcomes.append(outcome)
        return conn, outcomes

    def _commit(self, conn: Connection, ops: list[Op]) -> list[Any]:
        """Apply ``ops`` in one transaction on ``conn``. Row writes only: the transaction is the
        driver connection's (SQLAlchemy's begin/commit cost as much CPU as a small write);
        with a function op, SQLAlchemy's."""
        if self._sql is None:
            self._sql = RowSql(conn.dialect)
        sql = self._sql
        results: list[Any] = [None] * len(ops)
        if not all(isinstance(op, Upsert | Delete) for op in ops):
            with conn.begin():
                self._run(conn, sql, ops, results)
            return results
        driver = conn.connection.dbapi_connection
        assert driver is not None
        try:
            sql.begin(driver)
            self._run(conn, sql, ops, results)
            driver.commit()
        except BaseException:
            try:
                driver.rollback()
            except Exception:
                log.debug("event=policy_writer_rollback_failed", exc_info=True)
            raise
        return results

    @staticmethod
    def _run(conn: Connection, sql: RowSql, ops: list[Op], results: list[Any]) -> None:
        group = _Group()
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for i, op in enumerate(ops):
                if isinstance(op, Upsert | Delete):
                    if not group.add(i, op):
                        group.flush(sql, cursor, results)
                        group.add(i, op)
                else:
                    group.flush(sql, cursor, results)
                    results[i] = op(conn)
            group.flush(sql, cursor, results)
        finally:
            cursor.close()


def _discard(conn: Connection) -> None:
    """Hand back a connection whose transaction failed (SQLAlchemy invalidates a broken one);
    the next batch checks out another."""
    try:
        conn.close()
    except Exception:
        log.debug("event=policy_writer_connection_close_failed", exc_info=True)


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

    def flush(self, sql: RowSql, cursor: Any, results: list[Any]) -> None:
        if self.upserts:
            now = utcnow()
            stamps = {"created_at": now, "updated_at": now}
            order = _table_order(next(iter(self.upserts)).metadata)  # parents first
            for table in sorted(self.upserts, key=lambda t: order.get(t, len(order))):
                sql.upsert(cursor, self.keys[table], list(self.upserts[table].values()), stamps)
        if self.deletes:
            self._delete(sql, cursor, results)
        self.upserts.clear()
        self.keys.clear()
        self.deletes.clear()
        self.deleted.clear()
        self.bound.clear()
        self.orphaned.clear()
        self.direct.clear()
        self.cascaded.clear()

    def _delete(self, sql: RowSql, cursor: Any, results: list[Any]) -> None:
        cascades: dict[sa.Column[Any], list[tuple[int, Any]]] = {}
        by_key: dict[sa.Column[Any], list[Any]] = {}
        for index, op in self.deletes:
            if op.children is not None:
                cascades.setdefault(op.children, []).append((index, op.value))
            by_key.setdefault(op.key, []).append(op.value)
        for column, targets in cascades.items():
            found: dict[Any, list[Any]] = {}
            for row in sql.delete_returning(cursor, column, [v for _, v in targets]):
                found.setdefault(getattr(row, column.name), []).append(row)
            for index, value in targets:
                results[index] = found.get(value, [])
        for key, values in by_key.items():
            sql.delete(cursor, key, values)


@functools.cache
def _references(table: sa.Table) -> tuple[sa.Column[Any], ...]:
    """The table's foreign-key columns."""
    return tuple(fk.parent for fk in table.foreign_keys)


@functools.cache
def _table_order(metadata: sa.MetaData) -> dict[sa.Table, int]:
    return {t: i for i, t in enumerate(metadata.sorted_tables)}
