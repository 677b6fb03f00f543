"""Live sessions: Gx IP-CAN sessions and their bound Rx AF sessions (held by this node's PCRF)
with rules and QoS, and Ro credit-control sessions (ledger) with reservations and the charge so
far; terminating one asks its client to end it:

* Gx: RAR with Session-Release-Cause (TS 29.212 §4.5.6 / §5.3.44): the PCEF answers and sends
  CCR-T; bound Rx sessions are then aborted by the PCRF.
* Rx: ASR to the AF (TS 29.214 §4.4.6); the AF answers ASA and sends STR.
* Ro: ASR to the CTF (RFC 6733 §8.5, TS 32.299 §6.5.3); it ends the call and sends CCR-T, which
  settles and charges the session (the sweep closes it if CCR-T never comes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from api import audit
from api.auth import Principal, operator, reader
from api.context import ApiContext
from api.db import Ctx, PageQuery, aread, awrite
from charging import admin as ledger
from diam.constants import (
    APP_CREDIT_CONTROL,
    APP_GX,
    APP_RX,
    CMD_ABORT_SESSION,
    CMD_RE_AUTH,
)
from diam.errors import DiameterError
from diam.message import Message
from policy.qos import derive_rules
from schemas.api import Sessions, Terminated

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])
AUTHORIZE_ONLY = 0
#: Session-Release-Cause UNSPECIFIED_REASON (TS 29.212 §5.3.44).
UNSPECIFIED_REASON = 0
#: Auth-Session-State NO_STATE_MAINTAINED is not used: Rx/Ro ASR carry only the mandatory AVPs.


def _policy_sessions(ctx: ApiContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if ctx.pcrf is None:
        return [], []
    gx_out, rx_out = [], []
    qos = ctx.pcrf.rx.qos
    for gx in sorted(ctx.pcrf.store.all_gx(), key=lambda g: g.session_id):
        d = gx.decision
        bound = ctx.pcrf.store.rx_of(gx)
        gx_out.append(
            {
                "session_id": gx.session_id,
                "imsi": gx.imsi,
                "msisdn": gx.msisdn,
                "apn": gx.apn,
                "ue_ipv4": gx.ue_ipv4,
                "pcef_host": gx.pcef_host,
                "qci": d.qci if d else None,
                "ambr_ul": d.ambr.ul if d else None,
                "ambr_dl": d.ambr.dl if d else None,
                "rules": sorted(d.predefined_rules) if d else [],
                "reasons": list(d.reasons) if d else [],
                "rx_sessions": sorted(rx.session_id for rx in bound),
            }
        )
        for rx in bound:
            rules = derive_rules(rx.session_id, rx.components.values(), qos, rx.icid)
            rx_out.append(
                {
                    "session_id": rx.session_id,
                    "gx_session_id": gx.session_id,
                    "af_host": rx.af_host,
                    "rules": [
                        {
                            "name": r.name,
                            "qci": r.qos.qci,
                            "gbr_ul": r.qos.gbr_ul,
                            "gbr_dl": r.qos.gbr_dl,
                            "mbr_ul": r.qos.mbr_ul,
                            "mbr_dl": r.qos.mbr_dl,
                            "media_component": r.media_component_number,
                        }
                        for r in rules
                    ],
                }
            )
    return gx_out, rx_out


def _ro_view(row: dict[str, Any]) -> dict[str, Any]:
    info = row.pop("service_information") or {}
    ims = info.get("ims") or {}
    ids = [str(data) for _, data in info.get("subscription_ids", [])]
    return {
        **row,
        "subscription_ids": ids,
        "calling_party": ims.get("calling_party"),
        "called_party": ims.get("called_party"),
    }


@router.get("", response_model=Sessions)
async def list_sessions(
    ctx: Ctx,
    paging: PageQuery,
    _: Annotated[Principal, Depends(reader)],
    subscriber: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """Gx and Rx sessions of this node's PCRF (page applies to each list), open Ro sessions."""
    gx, rx = _policy_sessions(ctx)
    window = slice(paging.offset, paging.offset + paging.limit)
    ro = await aread(
        ctx, lambda c: ledger.open_sessions(c, paging.limit, paging.offset, subscriber)
    )
    return {
        "gx": gx[window],
        "rx": rx[window],
        "ro": [_ro_view(r) for r in ro],
        "limit": paging.limit,
        "offset": paging.offset,
    }


async def _send(ctx: ApiContext, msg: Message, host: str) -> int | None:
    for endpoint in ctx.nodes():
        peer = endpoint.node.peer(host)
        if peer is None:
            continue
        msg.add(
            ("Origin-Host", endpoint.node.identity.origin_host),
            ("Origin-Realm", endpoint.node.identity.origin_realm),
        )
        try:
            answer = await endpoint.node.request(msg, peer=peer)
        except (DiameterError, TimeoutError, ConnectionError):
            return None
        code = answer.get("Result-Code")
        if code is None:
            exp = answer.first("Experimental-Result")
            code = exp.get("Experimental-Result-Code") if exp is not None else None
        return None if code is None else int(code)
    raise HTTPException(409, f"peer {host} is not connected to this node")


def _request(
    command: int, app: int, session_id: str, host: str, realm: str, *avps: tuple[str, Any]
) -> Message:
    return Message.request(
        command,
        app,
        [
            ("Session-Id", session_id),
            ("Destination-Realm", realm),
            ("Destination-Host", host),
            ("Auth-Application-Id", app),
            *avps,
        ],
    )


@router.delete("/{session_id:path}", response_model=Terminated)
async def terminate(
    session_id: str, ctx: Ctx, who: Annotated[Principal, Depends(operator)]
) -> dict[str, Any]:
    """End a live Gx, Rx or Ro session by its Session-Id (404 when none is live here)."""
    pcrf = ctx.pcrf
    gx = pcrf.store.gx(session_id) if pcrf is not None else None
    if gx is not None:
        app, command, host = "gx", "RAR", gx.pcef_host
        msg = _request(
            CMD_RE_AUTH,
            APP_GX,
            session_id,
            gx.pcef_host,
            gx.pcef_realm,
            ("Re-Auth-Request-Type", AUTHORIZE_ONLY),
            ("Session-Release-Cause", UNSPECIFIED_REASON),
        )
    else:
        rx = await pcrf.store.rx(session_id) if pcrf is not None else None
        if rx is not None:
            app, command, host = "rx", "ASR", rx.af_host
            msg = _request(
                CMD_ABORT_SESSION, APP_RX, session_id, rx.af_host, rx.af_realm, ("Abort-Cause", 0)
            )  # BEARER_RELEASED, TS 29.214 §5.3.1
        else:
            ro = await aread(ctx, lambda c: ledger.find_open_session(c, session_id))
            if ro is None:
                raise HTTPException(404, f"no live session {session_id!r}")
            app, command, host = "ro", "ASR", ro["origin_host"]
            msg = _request(
                CMD_ABORT_SESSION,
                APP_CREDIT_CONTROL,
                session_id,
                ro["origin_host"],
                ro["origin_realm"],
            )
    code = await _send(ctx, msg, host)
    out = {"session_id": session_id, "application": app, "command": command, "result_code": code}
    await awrite(
        ctx,
        lambda c: audit.record(
            c, who, "session.terminate", f"session:{session_id}"[:255], after=out
        ),
    )
    return out
