"""Tariffs: validate and upload tariff YAML, activate an upload at a date, price enquiry.

The newest upload of a plan name whose ``activate_at`` has passed is the live one; price
enquiries use it, else the plan the OCS loaded from its tariff files. Activating with a time in
the past or now also hands the plan to this process's OCS for new grants.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy.engine import Connection

from api import audit
from api.auth import Principal, admin, operator, reader
from api.context import ApiContext
from api.db import Ctx, PageQuery, read, write
from api.models import TariffUpload as Upload
from charging.admin import NotFound
from rating.engine import Data, Events, Voice, price
from rating.errors import RatingError
from rating.loader import TariffFileError, load_plan_text
from rating.plan import Plan
from schemas.api import Page, PriceOut, PriceQuery, TariffActivate, TariffCheck, TariffOut
from schemas.api import TariffUpload as UploadBody

router = APIRouter(prefix="/api/v1/tariffs", tags=["tariffs"])
uploads = Upload.__table__


def _check(source: str) -> tuple[Plan | None, dict[str, Any]]:
    try:
        plan = load_plan_text(source, "upload.yaml")
    except TariffFileError as exc:
        return None, {"valid": False, "problems": list(exc.problems)}
    versions = [v.effective_from.isoformat() for v in plan.versions]
    return plan, {"valid": True, "name": plan.name, "versions": versions}


def _out(row: Any, now: datetime) -> dict[str, Any]:
    keys = ("id", "name", "uploaded_by", "uploaded_at", "activate_at")
    out = {k: row[k] for k in keys}
    out["active"] = row["activate_at"] is not None and row["activate_at"] <= now
    return out


@router.post("/validate", response_model=TariffCheck)
def validate(body: UploadBody, _: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
    """Check a tariff file without storing it; problems name the line they were found on."""
    return _check(body.source)[1]


@router.post("", response_model=TariffOut, status_code=201)
def upload(body: UploadBody, ctx: Ctx, who: Annotated[Principal, Depends(admin)]) -> dict:
    plan, report = _check(body.source)
    if plan is None:
        raise HTTPException(422, "; ".join(report["problems"]) or "invalid tariff")

    def run(conn: Connection) -> dict[str, Any]:
        now = datetime.now(UTC)
        new_id = conn.execute(
            uploads.insert()
            .values(name=plan.name, source=body.source, uploaded_by=who.name, uploaded_at=now)
            .returning(uploads.c.id)
        ).scalar_one()
        row = conn.execute(sa.select(uploads).where(uploads.c.id == new_id)).mappings().one()
        out = _out(row, now)
        audit.record(conn, who, "tariff.upload", f"tariff:{plan.name}", after=out)
        return out

    return write(ctx, run)


@router.get("", response_model=Page[TariffOut])
def list_tariffs(
    ctx: Ctx, paging: PageQuery, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    def run(conn: Connection) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        rows = conn.execute(
            sa.select(uploads)
            .order_by(uploads.c.id.desc())
            .limit(paging.limit + 1)
            .offset(paging.offset)
        ).mappings()
        return [_out(r, now) for r in rows]

    return paging.page(read(ctx, run))


@router.post("/{upload_id}/activate", response_model=TariffOut)
def activate(
    upload_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    body: TariffActivate,
    ctx: Ctx,
    who: Annotated[Principal, Depends(admin)],
) -> dict[str, Any]:
    now = datetime.now(UTC)
    at = body.at or now

    def run(conn: Connection) -> tuple[dict[str, Any], str]:
        row = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).mappings().first()
        if row is None:
            raise NotFound(f"no tariff upload {upload_id}")
        conn.execute(uploads.update().where(uploads.c.id == upload_id).values(activate_at=at))
        out = {**_out(row, now), "activate_at": at, "active": at <= now}
        audit.record(
            conn, who, "tariff.activate", f"tariff:{row['name']}", before=_out(row, now), after=out
        )
        return out, row["source"]

    out, _ = write(ctx, run)
    if out["active"]:
        activator = ctx.extra.get("tariff_activator")
        if activator is not None:
            activator.apply_due()
    return out


def _live_plan(ctx: ApiContext, name: str) -> Plan:
    def run(conn: Connection) -> str | None:
        return conn.execute(
            sa.select(uploads.c.source)
            .where(uploads.c.name == name, uploads.c.activate_at <= datetime.now(UTC))
            .order_by(uploads.c.activate_at.desc(), uploads.c.id.desc())
            .limit(1)
        ).scalar()

    source = read(ctx, run)
    if source is not None:
        return load_plan_text(source, "upload.yaml")
    if ctx.ocs is not None and name in ctx.ocs.config.tariffs:
        return ctx.ocs.config.tariffs[name]
    raise NotFound(f"no live tariff {name!r}")


@router.post("/{name}/price", response_model=PriceOut)
def price_enquiry(
    name: str, body: PriceQuery, ctx: Ctx, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    """What ``units`` of one service cost under the live tariff ``name`` (no balance touched)."""
    kinds = [k for k in (body.destination, body.rating_group, body.service_id) if k is not None]
    if len(kinds) != 1:
        raise HTTPException(422, "give exactly one of destination, rating_group, service_id")
    plan = _live_plan(ctx, name)
    if body.destination is not None:
        usage: Voice | Data | Events = Voice(body.destination, body.units)
    elif body.rating_group is not None:
        usage = Data(body.rating_group, body.units)
    else:
        usage = Events(body.service_id or 0, body.units)
    try:
        charge = price(plan, usage, body.start or datetime.now(UTC))
    except (RatingError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    lines = [
        {
            "item": ln.item,
            "units": ln.units,
            "amount": ln.amount,
            "band": ln.band,
            "tier": ln.tier,
            "rate": None if ln.rate is None else str(ln.rate),
            "per": ln.per,
        }
        for ln in charge.lines
    ]
    return {
        "tariff": plan.name,
        "currency": charge.currency,
        "amount": charge.total,
        "lines": lines,
    }
