"""Background work of the PCRF: one timer per key on the event loop (a Gx session is re-decided
at its next time-of-day boundary, PCRF-initiated re-authorisation, TS 29.212), and
fire-and-forget tasks (ASR/RAR to AFs) that are awaited on shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

log = logging.getLogger("openpcc.policy")

Clock = Callable[[], datetime]


class Scheduler:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def at(self, key: str, when: datetime | None, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` at ``when`` (by the scheduler's clock), replacing the key's timer."""
        self.cancel(key)
        if when is None:
            return
        delay = max((when - self.clock()).total_seconds(), 0.0)
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key, job)

    def cancel(self, key: str) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def _fire(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        self._timers.pop(key, None)
        self.spawn(job())

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background (awaited by :meth:`close`, errors logged)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event=policy_job_failed", exc_info=task.exception())

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
