"""Group commit: the outcomes of concurrent requests are computed and committed in ONE database
transaction, and only then released to their callers (durable before answered, DESIGN.md §3.3).

A writer takes whatever work has queued (waiting up to ``window`` seconds for more, at most
``max_batch`` items), runs it in a worker thread inside one transaction — the handler names the
accounts involved, locks their rows ``FOR UPDATE`` in id order (so batches of several processes
never deadlock) and reads the batch's state under them, each item runs, the handler flushes the
batch's writes — commits, and resolves every item's future. Work that raises is
answered by its own ``fail`` and the batch is re-run without it; a transient database error
(deadlock, serialization, a unique key raced by another node) re-runs the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from charging import pgpipeline
from charging.ledger import Ledger, LedgerConflict
from charging.models import utcnow

log = logging.getLogger("openpcc.charging.batcher")

MAX_ATTEMPTS = 5
#: Seconds a writer connection keeps the plans of its prepared statements; then they are
#: dropped and made afresh, against the tables' current sizes (see GroupCommitter._connection).
REPLAN_SECONDS = 10.0


class Work(Protocol):
    """One item of a batch."""

    def run(self, conn: Connection, ledger: Ledger, ctx: Any) -> Any:
        """Do the work inside the batch transaction; the result is released after commit."""

    def fail(self, exc: BaseException) -> Any:
        """The result to release when ``run`` raised (nothing of it is committed)."""


class BatchHandler(Protocol):
    """What a batch transaction does around its items."""

    def context(self, now: datetime) -> Any:
        """A fresh unit of work for one transaction attempt."""

    def lock_keys(self, conn: Connection, ctx: Any, works: list[Any]) -> list[int]:
        """Account ids whose rows must be locked before the items run."""

    def load(self, conn: Connection, ledger: Ledger, ctx: Any, accounts: list[int],
             works: list[Any]) -> None:  # fmt: skip
        """Lock the rows of ``accounts`` (``Ledger.lock_accounts`` or an equivalent), then
        read the batch's state under the locks."""

    def flush(self, conn: Connection, ledger: Ledger, ctx: Any) -> None:
        """Write the batch's buffered changes, last in the transaction; it may commit too, in
        the same round trip (the batcher's own commit then finds nothing to do)."""


class _WorkFailed(Exception):
    def __init__(self, index: int, exc: BaseException) -> None:
        super().__init__(str(exc))
        self.index = index
        self.exc = exc


class GroupCommitter:
    """Batches work into shared transactions (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        handler: BatchHandler,
        *,
        window: float = 0.001,
        max_batch: int = 256,
        writers: int = 1,
        clock: Callable[[], datetime] = utcnow,
        replan_seconds: float = REPLAN_SECONDS,
    ) -> None:
        if writers < 1 or max_batch < 1 or window < 0:
            raise ValueError("writers and max_batch must be >= 1, window >= 0")
        self.engine = engine
        self.handler = handler
        self.window = window
        self.max_batch = max_batch
        self.writers = writers
        self.clock = clock
        self.replan_seconds = replan_seconds
        self._queue: asyncio.Queue[tuple[Work, asyncio.Future[Any]]] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(writers, thread_name_prefix="group-commit")
        self._tasks: list[asyncio.Task[None]] = []
        # One connection per writer thread, kept between batches: no pool checkout (and its
        # pre-ping round trip) per batch. Dropped after any failed transaction.
        self._local = threading.local()
        self._connections: list[Connection] = []
        #: Counters for metrics and benchmarks.
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._writer()) for _ in range(self.writers)]

    async def close(self) -> None:
        """Finish what is queued, then stop."""
        while not self._queue.empty():
            await asyncio.sleep(self.window or 0.001)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._executor.shutdown(wait=True)
        for conn in self._connections:
            conn.close()
        self._connections = []

    async def submit(self, work: Work) -> Any:
        """Queue ``work`` and return its result once its transaction committed."""
        if not self._tasks:
            raise RuntimeError("GroupCommitter.start() was not called")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put((work, future))
        return await future

    async def _writer(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            if self.window and self._queue.qsize() < self.max_batch:
                await asyncio.sleep(self.window)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            works = [work for work, _ in batch]
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, works)
            except Exception as exc:  # the database is unreachable: fail the whole batch
                log.exception("batch of %d failed", len(works))
                results = [work.fail(exc) for work in works]
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def run_batch(self, works: list[Work]) -> list[Any]:
        """Run ``works`` in one transaction (blocking; called in a worker thread)."""
        results: list[Any] = [None] * len(works)
        pending = list(range(len(works)))
        attempt = 0
        while pending:
            try:
                done = self._transaction([works[i] for i in pending])
            except _WorkFailed as failed:
                index = pending.pop(failed.index)
                log.error("work failed: %r", failed.exc, exc_info=failed.exc)
                results[index] = works[index].fail(failed.exc)
                continue
            except (OperationalError, IntegrityError, LedgerConflict) as exc:
                attempt += 1
                if attempt < MAX_ATTEMPTS and _transient(exc):
                    time.sleep(0.002 * attempt)
                    continue
                if len(pending) == 1:
                    raise
                # Isolate the culprit: one transaction per item from here on.
                for index in pending:
                    try:
                        results[index] = self.run_batch([works[index]])[0]
                    except (OperationalError, IntegrityError, LedgerConflict) as single:
                        results[index] = works[index].fail(single)
                return results
            for index, result in zip(pending, done, strict=True):
                results[index] = result
            pending = []
        self.batches += 1
        self.items += len(works)
        return results

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
            if conn.dialect.name == "postgresql":
                # One generic plan per prepared statement: PostgreSQL's default would keep
                # re-planning the '= ANY(array)' reads (their generic cost, for an array of
                # unknown length, never beats a custom plan's), ~0.1-0.2 ms of server CPU per
                # statement. The plans are rebuilt whenever (auto)ANALYZE updates statistics.
                conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
                # Every batch statement looks up at most max_batch keys through an index. A
                # generic plan guesses an array parameter's length and a young table's size,
                # and would rather read whole tables (ro_sessions, ccr_outcomes, subscribers,
                # session_usage: they only grow) by sequential scan, hash or merge join: up
                # to several ms of database CPU per batch, worse as the tables grow. These
                # make index lookups in nested loops win wherever they exist (cost
                # penalties, not bans).
                for plan_setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
                    conn.exec_driver_sql(f"SET {plan_setting} = off")
                conn.commit()
            self._connections.append(conn)
            self._local.planned = time.monotonic()
        elif time.monotonic() - self._local.planned > self.replan_seconds:
            # A plan made while a table was young (tens of rows) stays cached until ANALYZE
            # next runs, which autovacuum may not do for a minute as the table grows by
            # thousands of rows a second; one that scans an index whole then costs more
            # every batch. psycopg forgets its prepared statements on DEALLOCATE ALL.
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("DEALLOCATE ALL")
                conn.commit()
                pgpipeline.forget_prepared(conn)
            self._local.planned = time.monotonic()
        return conn

    def _transaction(self, works: list[Work]) -> list[Any]:
        conn = self._connection()
        try:
            return self._run_in(conn, works)
        except (_WorkFailed, LedgerConflict):
            raise  # rolled back; the connection is sound
        except BaseException:
            with contextlib.suppress(Exception):  # a fresh (pre-pinged) one for the next try
                conn.close()
            self._connections.remove(conn)
            raise

    def _run_in(self, conn: Connection, works: list[Work]) -> list[Any]:
        handler = self.handler
        with conn.begin():
            now = self.clock()
            ctx = handler.context(now)
            ledger = Ledger(conn, now)
            accounts = sorted(set(handler.lock_keys(conn, ctx, works)))
            handler.load(conn, ledger, ctx, accounts, works)
            results = []
            for i, work in enumerate(works):
                try:
                    results.append(work.run(conn, ledger, ctx))
                except (OperationalError, IntegrityError):
                    raise
                except Exception as exc:
                    raise _WorkFailed(i, exc) from exc
            handler.flush(conn, ledger, ctx)
        return results


def _transient(exc: Exception) -> bool:
    """Deadlock, serialization failure, lock timeout, a unique key another node won, a
    balance that moved under a compare-and-swap, or prepared statements lost."""
    if isinstance(exc, IntegrityError | LedgerConflict) or not isinstance(exc, DBAPIError):
        return True
    if isinstance(exc.orig, pgpipeline.StatementsLost):
        return True
    text = str(exc.orig).lower()
    return any(
        word in text
        for word in ("deadlock", "could not serialize", "database is locked", "lock timeout")
    )
