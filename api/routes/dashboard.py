"""One call for the console dashboard: counts, Diameter totals and latency, outbox lag."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.auth import Principal, reader
from api.db import Ctx
from api.telemetry import diameter_totals, live_counts, outbox_status

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])


@router.get("")
async def dashboard(ctx: Ctx, _: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    """``diameter.buckets`` are cumulative (upper bound in seconds, count) pairs since start: the
    console turns two snapshots into a request rate and latency percentiles for the interval."""
    counts, outbox = await asyncio.gather(
        asyncio.to_thread(live_counts, ctx), asyncio.to_thread(outbox_status, ctx)
    )
    total, buckets = diameter_totals(ctx)
    endpoints = ctx.nodes()
    peers = [p for e in endpoints for p in e.node.connections]
    return {
        "node": ",".join(e.node.identity.origin_host for e in endpoints) or "api",
        "sessions": counts,
        "peers": {"open": sum(p.state.value == "open" for p in peers), "total": len(peers)},
        "diameter": {
            "requests": total,
            "buckets": [["+Inf" if b == float("inf") else b, n] for b, n in buckets],
        },
        "outbox": outbox,
    }
