"""Subscribers: create, read, update, delete, list, and lookup by IMSI, MSISDN or SIP URI.

A subscriber lives in the ledger (account, plan, identities) and, when ``policy_profile`` is
given, in the PCRF's view too (its first IMSI and MSISDN get that profile).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from sqlalchemy.engine import Connection

from api import audit
from api.auth import Principal, admin, operator, reader
from api.db import Ctx, PageQuery, aread, awrite, read
from charging import admin as ledger
from charging import identities
from policy import provisioning as policy
from schemas.api import Page, Subscriber, SubscriberCreate, SubscriberUpdate

router = APIRouter(prefix="/api/v1/subscribers", tags=["subscribers"])
LOOKUP_KINDS = {"imsi": identities.IMSI, "msisdn": identities.MSISDN, "sip_uri": identities.SIP_URI}


def _policy_keys(sub: dict[str, Any]) -> tuple[str | None, str | None]:
    return (sub["imsi"][0] if sub["imsi"] else None, sub["msisdn"][0] if sub["msisdn"] else None)


def _full(conn: Connection, sub: dict[str, Any]) -> dict[str, Any]:
    return {**sub, "policy_profile": policy.profile_of(conn, *_policy_keys(sub))}


def _set_profile(conn: Connection, sub: dict[str, Any], profile: str | None) -> None:
    imsi, msisdn = _policy_keys(sub)
    if imsi or msisdn:
        try:
            policy.assign_profile(conn, imsi, msisdn, profile)
        except LookupError as exc:
            raise ledger.NotFound(str(exc)) from None


def _live_gx(ctx: Ctx, sub: dict[str, Any]) -> bool:
    if ctx.pcrf is None:
        return False
    imsis, msisdns = set(sub["imsi"]), set(sub["msisdn"])
    return any(g.imsi in imsis or g.msisdn in msisdns for g in ctx.pcrf.store.all_gx())


async def _reload_policy(ctx: Ctx) -> None:
    if ctx.pcrf is not None:
        await ctx.pcrf.reload_policies()


@router.get("", response_model=Page[Subscriber])
def list_subscribers(
    ctx: Ctx,
    paging: PageQuery,
    _: Annotated[Principal, Depends(reader)],
    account: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    def run(conn: Connection) -> list[dict[str, Any]]:
        subs = ledger.list_subscribers(conn, paging.limit + 1, paging.offset, account)
        return [_full(conn, s) for s in subs]

    return paging.page(read(ctx, run))


@router.get("/lookup", response_model=Subscriber)
def lookup(
    ctx: Ctx,
    _: Annotated[Principal, Depends(reader)],
    imsi: Annotated[str | None, Query(max_length=64)] = None,
    msisdn: Annotated[str | None, Query(max_length=64)] = None,
    sip_uri: Annotated[str | None, Query(max_length=255)] = None,
) -> dict[str, Any]:
    """Exactly one of ``imsi``, ``msisdn`` (any E.164 spelling, ``tel:`` too) or ``sip_uri``."""
    given = {k: v for k, v in (("imsi", imsi), ("msisdn", msisdn), ("sip_uri", sip_uri)) if v}
    if len(given) != 1:
        raise HTTPException(422, "give exactly one of imsi, msisdn, sip_uri")
    ((field, value),) = given.items()
    return read(ctx, lambda c: _full(c, ledger.lookup(c, LOOKUP_KINDS[field], value)))


@router.get("/{name}", response_model=Subscriber)
async def get_subscriber(
    name: str, ctx: Ctx, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return await aread(ctx, lambda c: _full(c, ledger.get_subscriber(c, name)))


@router.post("", response_model=Subscriber, status_code=201)
async def create_subscriber(
    body: SubscriberCreate, ctx: Ctx, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    ids = {f: getattr(body, f) for f in ledger.IDENTITY_FIELDS}

    def run(conn: Connection) -> dict[str, Any]:
        sub = ledger.create_subscriber(
            conn, body.name, body.account, body.plan, body.status.value, ids
        )
        if body.policy_profile is not None:
            _set_profile(conn, sub, body.policy_profile)
        sub = _full(conn, sub)
        audit.record(conn, who, "subscriber.create", f"subscriber:{body.name}", after=sub)
        return sub

    sub = await awrite(ctx, run)
    await _reload_policy(ctx)
    return sub


@router.patch("/{name}", response_model=Subscriber)
async def update_subscriber(
    name: str, body: SubscriberUpdate, ctx: Ctx, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)

    def run(conn: Connection) -> dict[str, Any]:
        before = _full(conn, ledger.get_subscriber(conn, name))
        sub = ledger.update_subscriber(conn, name, changes)
        keys_changed = _policy_keys(sub) != _policy_keys(before)
        profile = changes.get("policy_profile", before["policy_profile"])
        if keys_changed and before["policy_profile"] is not None:
            _set_profile(conn, before, None)
        if profile is not None and (keys_changed or profile != before["policy_profile"]):
            _set_profile(conn, sub, profile)
        after = _full(conn, sub)
        audit.record(
            conn, who, "subscriber.update", f"subscriber:{name}", before=before, after=after
        )
        return after

    sub = await awrite(ctx, run)
    await _reload_policy(ctx)
    if ctx.pcrf is not None:
        await ctx.pcrf.subscriber_changed(*_policy_keys(sub))
    return sub


@router.delete("/{name}", status_code=204)
async def delete_subscriber(
    name: str, ctx: Ctx, who: Annotated[Principal, Depends(admin)]
) -> Response:
    def run(conn: Connection) -> None:
        before = _full(conn, ledger.get_subscriber(conn, name))
        if _live_gx(ctx, before):
            raise ledger.Conflict(f"subscriber {name!r} has a live data session; end it first")
        ledger.delete_subscriber(conn, name)
        if before["policy_profile"] is not None:
            _set_profile(conn, before, None)
        audit.record(conn, who, "subscriber.delete", f"subscriber:{name}", before=before)

    await awrite(ctx, run)
    await _reload_policy(ctx)
    return Response(status_code=204)
