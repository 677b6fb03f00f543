"""CDRs: search the outbox by subscriber, time and IMS Charging Identifier; download as CSV or
JSON lines (same columns as ``openpcc cdr export``); outbox status (export lag)."""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from api.auth import Principal, reader
from api.db import Ctx, PageQuery, read
from api.telemetry import outbox_status
from charging.cdr import search as cdrs
from charging.cdr.export import write_csv, write_jsonl
from schemas.api import CdrOut, OutboxStatus, Page
from schemas.cdr import ChargingDataRecord

router = APIRouter(prefix="/api/v1/cdrs", tags=["cdrs"])
DOWNLOAD_MAX = 100_000


class Filters:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values


async def filters(
    subscriber: Annotated[
        str | None,
        Query(min_length=1, max_length=128, description="served subscription id (e.g. MSISDN)"),
    ] = None,
    icid: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    since: Annotated[AwareDatetime | None, Query(description="outbox time, inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(description="outbox time, exclusive")] = None,
) -> Filters:
    if since is not None and until is not None and until <= since:
        raise HTTPException(422, "until must be after since")
    return Filters({"subscriber": subscriber, "icid": icid, "since": since, "until": until})


FilterQuery = Annotated[Filters, Depends(filters)]


@router.get("", response_model=Page[CdrOut])
def search(
    ctx: Ctx, filters: FilterQuery, paging: PageQuery, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    found = read(
        ctx,
        lambda c: cdrs.search(c, **filters.values, limit=paging.limit + 1, offset=paging.offset),
    )
    items = [
        {
            "id": f.row.id,
            "cdr_id": f.row.cdr_id,
            "partition_key": f.row.partition_key,
            "created_at": f.row.created_at,
            "sent_at": f.sent_at,
            "attempts": f.attempts,
            "record": ChargingDataRecord.model_validate_json(f.row.payload),
        }
        for f in found
    ]
    return paging.page(items)


@router.get(
    "/download",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def download(
    ctx: Ctx,
    filters: FilterQuery,
    _: Annotated[Principal, Depends(reader)],
    format: Annotated[Literal["csv", "jsonl"], Query()] = "jsonl",
    limit: Annotated[int, Query(ge=1, le=DOWNLOAD_MAX)] = 10_000,
) -> Response:
    """The matching CDRs, oldest first: CSV (one line per service container) or JSON lines."""
    found = read(ctx, lambda c: cdrs.search(c, **filters.values, limit=limit))
    rows = [f.row for f in reversed(found)]
    out = io.StringIO()
    if format == "csv":
        write_csv(rows, out)
        media, ext = "text/csv", "csv"
    else:
        write_jsonl(rows, out)
        media, ext = "application/x-ndjson", "jsonl"
    return Response(
        out.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="cdrs.{ext}"'},
    )


@router.get("/outbox", response_model=OutboxStatus)
def outbox(ctx: Ctx, _: Annotated[Principal, Depends(reader)]) -> dict[str, Any]:
    return outbox_status(ctx)
