"""Diameter peers of this process: every connection with its RFC 6733 §5.6 state."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.auth import Principal, reader
from api.db import Ctx, PageQuery
from schemas.api import Page, PeerOut

router = APIRouter(prefix="/api/v1/peers", tags=["peers"])


@router.get("", response_model=Page[PeerOut])
def list_peers(
    ctx: Ctx, paging: PageQuery, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    rows = []
    for endpoint in ctx.nodes():
        for peer in endpoint.node.connections:
            address = peer.remote_address
            rows.append(
                {
                    "listener": endpoint.label,
                    "origin_host": peer.origin_host,
                    "origin_realm": peer.origin_realm,
                    "state": peer.state.value,
                    "remote_address": f"{address[0]}:{address[1]}" if address else None,
                    "applications": sorted(peer.applications),
                    "pending_requests": peer.pending_count,
                }
            )
    window = rows[paging.offset : paging.offset + paging.limit + 1]
    return paging.page(window)
