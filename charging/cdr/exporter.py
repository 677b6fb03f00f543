"""The background CDR exporter: outbox rows → sink, marked sent only once the sink acknowledged.

Loop: claim the oldest unsent rows (a batch), hand them to the sink, and once the sink says they
are durable (Kafka acks=all / file fsync) mark them sent. The next batch is claimed in a helper
thread while the current one is handed to the sink, and up to ``depth`` batches await their
acknowledgement, so database work, producer work and broker round trips overlap; batches are
claimed, sent and marked strictly in ``id`` order. A claim made while batches are in flight
starts past them (no stepping over its own locked rows); once the exporter has caught up it claims
from the oldest unsent row again, so a row committed late with a lower id is never skipped.

Any failure (sink or database) releases every pending batch unmarked and backs off exponentially
(with jitter) before trying again, so while Kafka is down rows simply wait in the outbox. Delivery
is at least once; a duplicate carries the same ``cdrId``.

The loop is synchronous (kafka-python and the DB driver block) and runs in its own thread;
``run_in_thread`` makes it an asyncio task for the OpenPCC process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from charging.cdr import metrics
from charging.cdr.sink import Delivery, Sink, SinkError
from charging.cdr.store import Batch, Lag, OutboxStore

log = logging.getLogger(__name__)

Pending = deque[tuple[Batch, Delivery]]


class Exporter:
    """Moves CDRs from one outbox to one sink."""

    def __init__(
        self,
        store: OutboxStore,
        sink: Sink,
        *,
        batch_size: int = 1000,
        depth: int = 2,
        poll_seconds: float = 0.05,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 30.0,
        metrics_every_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.sink = sink
        self.batch_size = batch_size
        self.depth = max(1, depth)
        self.poll_seconds = poll_seconds
        self.backoff_initial = backoff_initial_seconds
        self.backoff_max = backoff_max_seconds
        self.metrics_every = metrics_every_seconds
        self.exported = 0
        self.failures = 0
        self.last_error: str | None = None
        self._exported_metric = metrics.EXPORTED.labels(sink.name)
        self._failures_metric = metrics.EXPORT_FAILURES.labels(sink.name)
        self._next_metrics = 0.0
        self._prefetch: Future[Batch] | None = None

    # -- one step at a time ----------------------------------------------------------------

    def _start(self, pending: Pending) -> int:
        """Claim a batch and hand it to the sink; returns its size (0 = outbox drained)."""
        batch = self.store.claim(self.batch_size)
        if not batch.rows:
            return 0
        try:
            delivery = self.sink.send(batch.rows)
        except BaseException:
            self.store.release(batch)
            raise
        pending.append((batch, delivery))
        return len(batch.rows)

    def _finish_oldest(self, pending: Pending) -> None:
        batch, delivery = pending[0]
        delivery.wait()
        self.store.mark_sent(batch)
        pending.popleft()
        self.exported += len(batch.rows)
        self._exported_metric.inc(len(batch.rows))

    def _release_all(self, pending: Pending) -> None:
        batches = [batch for batch, _ in pending]
        pending.clear()
        if self._prefetch is not None:
            future, self._prefetch = self._prefetch, None
            with contextlib.suppress(Exception):  # a failed claim holds nothing
                batches.append(future.result())
        for batch in batches:
            try:
                self.store.release(batch)
            except SQLAlchemyError:
                log.warning("cdr export: could not release a batch (claims expire)", exc_info=True)

    def export_available(self) -> int:
        """Export until the outbox has nothing unclaimed left; returns the rows marked sent.
        Raises ``SinkError`` (rows stay unsent). For the CLI and tests."""
        pending: Pending = deque()
        total = 0
        try:
            while self._start(pending):
                before = self.exported
                self._finish_oldest(pending)
                total += self.exported - before
        finally:
            self._release_all(pending)
        return total

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Export until ``stop`` is set."""
        self.store.release_own_claims()
        pending: Pending = deque()
        streak = 0
        log.info("cdr export: started (sink=%s, owner=%s)", self.sink.name, self.store.owner)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cdr-claim") as claims:
            try:
                while not stop.is_set():
                    try:
                        drained = self._step(pending, claims)
                        streak = 0
                    except Exception as exc:  # never stop exporting: back off and retry
                        self._release_all(pending)
                        streak += 1
                        self._record_failure(exc)
                        stop.wait(self._backoff(streak))
                        continue
                    self._refresh_metrics()
                    if drained:
                        self.sink.maintain()
                        stop.wait(self.poll_seconds)
            finally:
                self._release_all(pending)
                if streak == 0:  # a healthy sink: export what the last moments wrote
                    self._final_drain()
                self.sink.close()
        log.info("cdr export: stopped after %d records", self.exported)

    def _final_drain(self) -> None:
        try:
            self.export_available()
        except Exception as exc:
            log.warning("cdr export: final drain failed, rows stay in the outbox: %r", exc)

    def _step(self, pending: Pending, claims: ThreadPoolExecutor) -> bool:
        """Send one batch (claiming the next one meanwhile in the ``claims`` thread) and finish
        the oldest when ``depth`` batches are in flight. True when the outbox is drained."""
        if self._prefetch is None:
            self._prefetch = claims.submit(self.store.claim, self.batch_size)
        future, self._prefetch = self._prefetch, None
        batch = future.result()
        if not batch.rows:
            while pending:
                self._finish_oldest(pending)
            return True
        full = len(batch.rows) == self.batch_size
        if full:  # more waiting: claim the next batch, past this one, while this one is sent
            self._prefetch = claims.submit(self.store.claim, self.batch_size, batch.ids[-1])
        try:
            delivery = self.sink.send(batch.rows)
        except BaseException:
            self.store.release(batch)
            raise
        pending.append((batch, delivery))
        if len(pending) >= self.depth or not full:
            self._finish_oldest(pending)
        return False

    def _backoff(self, streak: int) -> float:
        delay = min(self.backoff_max, self.backoff_initial * 2 ** min(streak - 1, 16))
        return delay * random.uniform(0.8, 1.0)

    def _record_failure(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = repr(exc)
        self._failures_metric.inc()
        expected = isinstance(exc, (SinkError, SQLAlchemyError, OSError))
        log.warning(
            "cdr export: batch failed, rows stay in the outbox: %r", exc, exc_info=not expected
        )
        self._next_metrics = 0.0
        self._refresh_metrics()

    def _refresh_metrics(self) -> None:
        now = time.monotonic()
        if now < self._next_metrics:
            return
        try:
            lag = self.store.lag()
        except SQLAlchemyError:
            lag = None
        took = time.monotonic() - now
        # Counting a huge backlog is not free: never spend more than ~10% of the time on it.
        self._next_metrics = now + max(self.metrics_every, 10 * took)
        if lag is not None:
            publish_lag(lag)


def publish_lag(lag: Lag) -> None:
    """Set the outbox lag gauges."""
    metrics.OUTBOX_LAG.set(lag.unsent)
    metrics.OUTBOX_OLDEST_AGE.set(lag.oldest_age_seconds(datetime.now(UTC)))


async def run_in_thread(exporter: Exporter, join_timeout: float = 30.0) -> None:
    """Run ``exporter`` in a dedicated thread until this coroutine is cancelled."""
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    finished: asyncio.Future[None] = loop.create_future()

    def target() -> None:
        error: BaseException | None = None
        try:
            exporter.run(stop)
        except BaseException as exc:
            error = exc
        if not loop.is_closed():
            loop.call_soon_threadsafe(_settle, finished, error)

    thread = threading.Thread(target=target, name="cdr-exporter", daemon=True)
    thread.start()
    try:
        await asyncio.shield(finished)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, join_timeout)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
