"""Call state the proxy keeps per INVITE dialog, and the hooks P-CSCF/S-CSCF roles plug in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from ims.sdp import SessionDescription
from ims.sip.headers import Headers
from ims.sip.message import Request, Response
from ims.sip.transaction import ClientTransaction, ServerTransaction, Target
from ims.sip.uri import SipUri


class CallState(StrEnum):
    TRYING = "trying"  # INVITE received, not yet forwarded or no answer yet
    EARLY = "early"  # provisional response with a To tag
    CONFIRMED = "confirmed"  # 2xx relayed
    ENDED = "ended"


class Rejection(NamedTuple):
    """A hook's verdict: reject with ``status``; ``reason`` is an RFC 3326 Reason value."""

    status: int
    reason: str | None = None
    warning: str | None = None


@dataclass(slots=True)
class Party:
    """One end of the call as the proxy sees it."""

    aor: str
    header: str  # From (caller) / To (callee) header value, with the tag once known
    contact: SipUri | None
    target: Target | None  # where requests for this party go
    signalling: Target | None = None  # where its requests came from
    cseq: int = 0  # highest CSeq seen in requests from this party

    @property
    def identity(self) -> str:
        """The user part of the AOR (an MSISDN for tel-style users)."""
        return self.aor.split(":", 1)[1].split("@", 1)[0]


@dataclass(slots=True, eq=False)
class Call:
    call_id: str
    icid: str
    caller: Party
    callee: Party
    invite: Request  # as forwarded downstream (for CANCEL)
    server_tx: ServerTransaction
    client_tx: ClientTransaction | None = None
    state: CallState = CallState.TRYING
    offer: SessionDescription | None = None
    answer: SessionDescription | None = None
    offerer: str = "caller"  # who sent the current offer: "caller" or "callee"
    answer_raw: bytes | None = None
    access_network_info: str | None = None
    created_at: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    ended_at: float | None = None
    end_cause: str | None = None
    cancelled: bool = False
    data: dict[str, Any] = field(default_factory=dict)  # per-role state (Rx/Ro sessions)

    @property
    def duration(self) -> float:
        if self.answered_at is None:
            return 0.0
        return (self.ended_at or time.monotonic()) - self.answered_at


class EndedCall(NamedTuple):
    """What the core keeps of a finished call (its last 1000), without the call's messages."""

    call_id: str
    icid: str
    caller: str  # AOR
    callee: str  # AOR
    end_cause: str
    duration: float


class CallHooks:
    """Extension points; every method may be overridden, the defaults do nothing.

    ``on_invite`` runs before an initial INVITE is forwarded, ``on_answer`` before a response
    with an SDP answer is relayed (either may reject the call), ``on_confirmed`` after the 2xx,
    ``on_end`` once per call with its cause; ``on_registration`` after each successful REGISTER."""

    async def on_invite(self, call: Call) -> Rejection | None:
        return None

    async def on_answer(self, call: Call, response: Response) -> Rejection | None:
        return None

    async def on_confirmed(self, call: Call) -> None:
        return None

    async def on_end(self, call: Call, cause: str) -> None:
        return None

    async def on_registration(self, aor: str, source: Target, registered: bool) -> None:
        """After a successful REGISTER: ``registered`` is False once no binding is left."""
        return None


def in_dialog_request(
    method: str, call: Call, towards_callee: bool, via: str, reason: str | None = None
) -> Request:
    """A proxy-originated request inside the call's dialog (network-initiated BYE, §16 and
    TS 24.229 §5.2.8.1.2: the P-CSCF releases both legs itself)."""
    sender, receiver = (call.caller, call.callee) if towards_callee else (call.callee, call.caller)
    assert receiver.contact is not None
    sender.cseq += 1
    headers = Headers()
    headers.add("Via", via)
    headers.add("Max-Forwards", "70")
    headers.add("From", sender.header)
    headers.add("To", receiver.header)
    headers.add("Call-ID", call.call_id)
    headers.add("CSeq", f"{sender.cseq} {method}")
    if reason:
        headers.add("Reason", reason)
    return Request(method, receiver.contact, headers)


def cancel_for(invite: Request) -> Request:
    """§9.1: CANCEL with the INVITE's Request-URI, top Via, Route, From, To, Call-ID, CSeq no."""
    headers = Headers()
    headers.add("Via", invite.headers.get("Via") or "")
    headers.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    return Request("CANCEL", invite.uri, headers)
