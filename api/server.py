"""Serving the API with uvicorn inside the running event loop (``openpcc run``), or standalone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from sqlalchemy.engine import make_url

from api.app import create_app
from api.context import ApiContext, Endpoint
from api.db import APPLICATION_NAME, AsyncDatabase
from api.http import HttpProtocol
from api.tariff_activation import Activator
from openpcc.database import create_engine

log = logging.getLogger("openpcc.api")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process (openpcc.app) owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """uvicorn on ``host:port`` as a task of the current loop; ``port`` 0 picks a free one."""

    def __init__(self, ctx: ApiContext, host: str, port: int) -> None:
        self.ctx = ctx
        config = uvicorn.Config(
            create_app(ctx),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="none",
            http=HttpProtocol,
        )
        self.server = _EmbeddedServer(config)
        self.host, self.port = host, port
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> tuple[str, int]:
        """Bind (OSError when the address is taken) and serve; returns the bound address."""
        if self.ctx.aio is None and AsyncDatabase.supports(self.ctx.engine):
            self.ctx.aio = AsyncDatabase(self.ctx.engine)  # bound to this (the serving) loop
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host, self.port), family=family, backlog=2048)
        # Inherited by accepted connections: no Nagle delay between a response's head and body.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host, port = sock.getsockname()[:2]
        self._task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the API server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("event=api_listening address=%s:%d", host, port)
        return host, port

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        await self._task
        self._task = None
        if self.ctx.aio is not None:
            await self.ctx.aio.close()
            self.ctx.aio = None


def install(app: Any) -> ApiServer | None:
    """Serve the API from ``openpcc run`` (an ``openpcc.app.App``) in the same event loop: it
    starts after the domains (their objects come from ``app.services``) and stops on shutdown."""
    settings = app.settings
    if not settings.api_enabled:
        return None

    def endpoints() -> list[Endpoint]:
        return [
            Endpoint(f"{lst.node.identity.origin_host}@{lst.port}", lst.node, lst.bound)
            for lst in app.listeners
        ]

    app.database()  # migrated to head once, by the process's shared engine
    # The API's own pool: more connections for concurrent requests and no pre-ping round trip
    # per checkout (a dropped connection fails one request with 503 and the pool is refreshed).
    named = {"connect_args": {"application_name": APPLICATION_NAME}}
    engine = create_engine(
        settings.database_url,
        pool_pre_ping=False,
        pool_size=10,
        max_overflow=20,
        **(named if make_url(settings.database_url).get_backend_name() == "postgresql" else {}),
    )
    ctx = ApiContext(
        settings,
        engine,
        app.metrics,
        nodes=endpoints,
        ocs=app.services.get("charging.service"),
        pcrf=app.services.get("policy.service"),
    )
    server = ApiServer(ctx, settings.api_host, settings.api_port)
    activator = ctx.extra["tariff_activator"] = Activator(ctx)

    async def start() -> None:
        activator.start()
        # The data plane (Diameter) keeps running without its management plane: log loudly.
        try:
            await server.start()
        except OSError as exc:
            log.error(
                "event=api_unavailable address=%s:%d error=%s",
                settings.api_host,
                settings.api_port,
                exc,
            )

    async def stop() -> None:
        await server.stop()
        await activator.stop()
        engine.dispose()

    app.startup.append(start)
    app.shutdown.append(stop)
    return server
