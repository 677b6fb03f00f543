"""Serving the API with uvicorn inside the running event loop (``openpcc run``), or standalone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from api.app import create_app
from api.context import ApiContext

log = logging.getLogger("openpcc.api")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process (openpcc.app) owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """uvicorn on ``host:port`` as a task of the current loop; ``port`` 0 picks a free one."""

    def __init__(self, ctx: ApiContext, host: str, port: int) -> None:
        config = uvicorn.Config(
            create_app(ctx),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="none",
        )
        self.server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        """Start serving; returns the bound address once the socket listens."""
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises the bind error
                raise RuntimeError("the API server stopped during start-up")
            await asyncio.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        log.info("event=api_listening address=%s:%d", host, port)
        return host, port

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
        self._task = None
