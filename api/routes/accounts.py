"""Accounts and balances: create, list buckets, top-up and adjust (reason mandatory, journalled
and audited), history. After a change the account's live Ro sessions get a Re-Auth-Request
(RFC 4006 §5.5) and the PCRF re-decides its subscribers' Gx sessions, so a top-up lifts a credit
throttle or redirect at once (TS 29.212 §4.5.2 PCRF-initiated RAR). Top-ups and adjustments
take an ``Idempotency-Key`` (api/idempotency.py) so a client may retry them safely."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from api import audit, idempotency
from api.auth import Principal, operator, reader
from api.context import ApiContext
from api.db import Ctx, PageQuery, aread, awrite, read
from api.lean import LeanRoute
from api.lookup import account_json
from charging import admin as ledger
from charging.accounts import LiveSession
from schemas.api import (
    AccountCreate,
    AccountOut,
    Adjustment,
    BalanceChange,
    JournalOut,
    Page,
    TopUp,
)

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])


@router.get("", response_model=Page[AccountOut])
def list_accounts(
    ctx: Ctx, paging: PageQuery, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return paging.page(
        read(ctx, lambda c: ledger.list_accounts(c, paging.limit + 1, paging.offset))
    )


@router.post("", response_model=AccountOut, status_code=201)
def create_account(
    body: AccountCreate, ctx: Ctx, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    balances = [b.model_dump(mode="python") for b in body.balances]
    for b in balances:
        b["kind"], b["unit"] = str(b["kind"]), str(b["unit"])
    if len({b["name"] for b in balances}) != len(balances):
        raise ledger.Conflict("duplicate balance names")

    def run(conn: Connection) -> dict[str, Any]:
        account = ledger.create_account(conn, body.name, body.currency, balances)
        audit.record(conn, who, "account.create", f"account:{body.name}", after=account)
        return account

    with ctx.engine.begin() as conn:
        return run(conn)


async def get_account(
    name: str, request: Request, _: Annotated[Principal, Depends(reader)]
) -> Response:
    # The hottest call: one prepared statement on the event loop (api/lookup.py) and a lean
    # route (api/lean.py); FastAPI still documents it from this signature and response_model.
    body = await account_json(request.app.state.ctx, name)
    return Response(body, media_type="application/json")


router.add_api_route(
    "/{name}",
    get_account,
    methods=["GET"],
    response_model=AccountOut,
    route_class_override=LeanRoute,
)


@router.get("/{name}/history", response_model=Page[JournalOut])
def history(
    name: str, ctx: Ctx, paging: PageQuery, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return paging.page(
        read(ctx, lambda c: ledger.history(c, name, paging.limit + 1, paging.offset))
    )


def _stored(status: int, body: Any, response: Response) -> dict[str, Any]:
    response.status_code = status
    response.headers[idempotency.REPLAYED] = "true"
    return body  # type: ignore[no-any-return]


async def _change(
    ctx: ApiContext,
    who: Principal,
    name: str,
    body: TopUp | Adjustment,
    kind: str,
    response: Response,
    key: str | None,
) -> dict[str, Any]:
    claim = None
    if key is not None:
        claim = idempotency.claim_for(
            who.name, key, kind, f"account:{name}", body.model_dump(mode="json")
        )
        replay = await aread(ctx, lambda c: idempotency.stored(c, claim))
        if replay is not None:
            return _stored(*replay, response)

    def run(conn: Connection) -> tuple[dict[str, Any], tuple[LiveSession, ...], list[dict]]:
        if claim is not None:
            idempotency.claim(conn, claim)
        changed, live = ledger.credit(
            conn, name, body.amount, kind=kind, reference=body.reason, balance=body.balance
        )
        audit.record(
            conn,
            who,
            f"balance.{kind}",
            f"account:{name}",
            reason=body.reason,
            before={"balance": _before(changed, body.amount)},
            after={"amount": body.amount, "balance": changed},
        )
        outcome = _outcome(name, changed, [], [])
        if claim is not None:
            idempotency.complete(conn, claim, 200, outcome)
        # Only a PCRF in this process re-decides Gx sessions (a subscriber read each).
        subscribers = ledger.subscribers_of_account(conn, name) if ctx.pcrf is not None else []
        return outcome, live, subscribers

    try:
        outcome, live, subscribers = await awrite(ctx, run)
    except IntegrityError as exc:
        if claim is None or not idempotency.lost_race(exc):
            raise
        # A concurrent duplicate committed first: our credit rolled back, answer its outcome.
        replay = await aread(ctx, lambda c: idempotency.stored(c, claim))
        if replay is None:
            raise
        return _stored(*replay, response)
    if ctx.ocs is not None and live:
        answers = await ctx.ocs.reauthorize(live)
        outcome["reauthorized_ro_sessions"] = sorted(answers)
    if ctx.pcrf is not None:
        for sub in subscribers:
            imsi = sub["imsi"][0] if sub["imsi"] else None
            msisdn = sub["msisdn"][0] if sub["msisdn"] else None
            await ctx.pcrf.subscriber_changed(imsi=imsi, msisdn=msisdn)
            outcome["reevaluated_subscribers"].append(sub["name"])
    if claim is not None and (live or subscribers):
        # The stored answer then names the follow-ups too (a crash before this leaves them empty).
        await awrite(ctx, lambda c: idempotency.complete(c, claim, 200, outcome))
    return outcome


def _before(changed: dict[str, Any], amount: int) -> dict[str, Any]:
    """The changed balance as it was: ``credit`` moved only its amount, by ``amount``, under the
    account's row lock in this transaction, so this is exact (and saves reading it first)."""
    return {
        **changed,
        "amount": changed["amount"] - amount,
        "available": changed["available"] - amount,
    }


def _outcome(
    name: str, changed: dict[str, Any], reauthorized: list[str], reevaluated: list[str]
) -> dict[str, Any]:
    """The answer body as JSON (as stored for replays)."""
    return BalanceChange(
        account=name,
        balance=changed,  # type: ignore[arg-type]
        reauthorized_ro_sessions=reauthorized,
        reevaluated_subscribers=reevaluated,
    ).model_dump(mode="json")


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="client-chosen unique key (e.g. a UUID): a retry with the same key and body "
        "is answered from the first request's stored outcome without crediting again; the same "
        "key with another body is 422. Scoped to the API key.",
    ),
]


@router.post("/{name}/topups", response_model=BalanceChange)
async def top_up(
    name: str,
    body: TopUp,
    ctx: Ctx,
    who: Annotated[Principal, Depends(operator)],
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Credit money (journal cause ``topup``); the reason is kept in the journal and audit log."""
    return await _change(ctx, who, name, body, "topup", response, idempotency_key)


@router.post("/{name}/adjustments", response_model=BalanceChange)
async def adjust(
    name: str,
    body: Adjustment,
    ctx: Ctx,
    who: Annotated[Principal, Depends(operator)],
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Signed correction (journal cause ``adjust``); a debit the balance cannot cover is 409."""
    return await _change(ctx, who, name, body, "adjust", response, idempotency_key)
