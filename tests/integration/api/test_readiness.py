"""/readyz answers 503 naming what is not ready: a configured Kafka that accepts no connections,
a Diameter listener not bound; /healthz stays 200 (the process is up)."""

from __future__ import annotations

import socket

import httpx

from api.context import ApiContext, Endpoint
from api.server import ApiServer
from diam.identity import LocalIdentity
from diam.node import Node
from openpcc.database import create_engine, upgrade
from schemas.settings import Settings
from tests.fixtures.api import LoopThread


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def test_readyz_reports_kafka_and_listener_failures(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    upgrade(engine)
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{_closed_port()}")
    loop = LoopThread()

    async def start() -> tuple[ApiServer, str]:
        node = Node(LocalIdentity("pcc.test", "test"))
        ctx = ApiContext(settings, engine, nodes=lambda: [Endpoint("pcc", node, None)])
        server = ApiServer(ctx, "127.0.0.1", 0)
        host, port = await server.start()
        return server, f"http://{host}:{port}"

    server, base = loop.run(start())
    try:
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503
        checks = {c["name"]: (c["ok"], c["detail"]) for c in ready.json()["checks"]}
        assert checks["database"] == (True, "sqlite")
        assert checks["kafka"][0] is False and "no broker" in checks["kafka"][1]
        assert checks["diameter"] == (False, "not listening: pcc")
        assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        loop.run(server.stop())
        loop.close()
        engine.dispose()
