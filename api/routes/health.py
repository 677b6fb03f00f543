"""``/healthz`` (the process answers), ``/readyz`` (database, Diameter listeners, Kafka when
configured, plus any check the wiring adds) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from api.context import ApiContext
from api.db import Ctx
from schemas.api import Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _database(ctx: ApiContext) -> tuple[bool, str]:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        return False, type(exc).__name__
    return True, ctx.engine.dialect.name


def _kafka(bootstrap: str) -> tuple[bool, str]:
    """A TCP connect to any bootstrap broker (cheap; the exporter reports delivery itself)."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return True, server.strip()
        except (OSError, ValueError):
            continue
    return False, f"no broker of {bootstrap} accepts connections"


def _listeners(ctx: ApiContext) -> tuple[bool, str]:
    nodes = ctx.nodes()
    if not nodes:
        return True, "no Diameter listener in this process"
    down = [e.label for e in nodes if e.bound is None]
    return not down, "listening" if not down else f"not listening: {', '.join(down)}"


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(ctx: Ctx) -> Any:
    checks = {"database": lambda: _database(ctx), "diameter": lambda: _listeners(ctx)}
    if ctx.settings.kafka_bootstrap and ctx.settings.cdr_sink in ("auto", "kafka"):
        checks["kafka"] = lambda: _kafka(ctx.settings.kafka_bootstrap)
    checks.update(ctx.checks)
    results = await asyncio.gather(*(asyncio.to_thread(fn) for fn in checks.values()))
    body = {
        "ready": all(ok for ok, _ in results),
        "checks": [
            {"name": name, "ok": ok, "detail": detail}
            for name, (ok, detail) in zip(checks, results, strict=True)
        ],
    }
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Process-wide metrics (CDR exporter, Python runtime) then this API's collectors."""
    text = generate_latest(REGISTRY) + generate_latest(request.app.state.registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)
