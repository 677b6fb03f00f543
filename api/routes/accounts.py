"""Accounts and balances: create, list buckets, top-up and adjust (reason mandatory, journalled
and audited), history. After a change the account's live Ro sessions get a Re-Auth-Request
(RFC 4006 §5.5) and the PCRF re-decides its subscribers' Gx sessions, so a top-up lifts a credit
throttle or redirect at once (TS 29.212 §4.5.2 PCRF-initiated RAR)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from sqlalchemy.engine import Connection

from api import audit
from api.auth import Principal, operator, reader
from api.context import ApiContext
from api.db import Ctx, PageQuery, aread, awrite, read
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


@router.get("/{name}", response_model=AccountOut)
async def get_account(
    name: str, ctx: Ctx, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    # async + one worker-thread hop for the query: FastAPI then serialises on the loop instead
    # of in a second thread hop (the balance lookup is the hottest call).
    return await aread(ctx, lambda c: ledger.get_account(c, name))


@router.get("/{name}/history", response_model=Page[JournalOut])
def history(
    name: str, ctx: Ctx, paging: PageQuery, _: Annotated[Principal, Depends(reader)]
) -> dict[str, Any]:
    return paging.page(
        read(ctx, lambda c: ledger.history(c, name, paging.limit + 1, paging.offset))
    )


async def _change(
    ctx: ApiContext,
    who: Principal,
    name: str,
    amount: int,
    kind: str,
    reason: str,
    balance: str | None,
) -> dict[str, Any]:
    def run(conn: Connection) -> tuple[dict[str, Any], tuple[LiveSession, ...], list[dict]]:
        before = ledger.get_account(conn, name)
        changed, live = ledger.credit(
            conn, name, amount, kind=kind, reference=reason, balance=balance
        )
        audit.record(
            conn,
            who,
            f"balance.{kind}",
            f"account:{name}",
            reason=reason,
            before=before["balances"],
            after={"amount": amount, "balance": changed},
        )
        return changed, live, ledger.subscribers_of_account(conn, name)

    changed, live, subscribers = await awrite(ctx, run)
    reauthorized: list[str] = []
    if ctx.ocs is not None and live:
        answers = await ctx.ocs.reauthorize(live)
        reauthorized = sorted(answers)
    reevaluated: list[str] = []
    if ctx.pcrf is not None:
        for sub in subscribers:
            imsi = sub["imsi"][0] if sub["imsi"] else None
            msisdn = sub["msisdn"][0] if sub["msisdn"] else None
            await ctx.pcrf.subscriber_changed(imsi=imsi, msisdn=msisdn)
            reevaluated.append(sub["name"])
    return {
        "account": name,
        "balance": changed,
        "reauthorized_ro_sessions": reauthorized,
        "reevaluated_subscribers": reevaluated,
    }


@router.post("/{name}/topups", response_model=BalanceChange)
async def top_up(
    name: str, body: TopUp, ctx: Ctx, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    """Credit money (journal cause ``topup``); the reason is kept in the journal and audit log."""
    return await _change(ctx, who, name, body.amount, "topup", body.reason, body.balance)


@router.post("/{name}/adjustments", response_model=BalanceChange)
async def adjust(
    name: str, body: Adjustment, ctx: Ctx, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    """Signed correction (journal cause ``adjust``); a debit the balance cannot cover is 409."""
    return await _change(ctx, who, name, body.amount, "adjust", body.reason, body.balance)
