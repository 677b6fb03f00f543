"""A small SIP user agent (UE) for the demo and the tests: REGISTER, place and answer calls,
hang up, re-INVITE, and take network-initiated BYEs. It speaks to the core as its outbound proxy
(a pre-loaded Route, as a UE uses its P-CSCF)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from ims.sdp import Connection, Media, SessionDescription, make_answer, parse_sdp
from ims.sip.dialog import Dialog
from ims.sip.endpoint import Endpoint
from ims.sip.headers import Headers
from ims.sip.message import Request, Response, make_response, new_branch, new_tag
from ims.sip.transaction import ServerTransaction, Target, Timers
from ims.sip.uri import SipUri, parse_uri

_call_ids = itertools.count(1)


def audio_offer(
    address: str,
    port: int,
    codec: str = "AMR-WB",
    bandwidth_as: int = 49,
) -> SessionDescription:
    """A VoLTE-style offer: AMR-WB (or AMR / PCMU) + telephone-event, b=AS/RS/RR, ptime 20."""
    addrtype = "IP6" if ":" in address else "IP4"
    sdp = SessionDescription(
        f"- {port} 1 IN {addrtype} {address}", "-", Connection(addrtype, address)
    )
    rate = 16000 if codec == "AMR-WB" else 8000
    pt = "0" if codec == "PCMU" else "97"
    media = Media("audio", port, "RTP/AVP", [pt, "101"])
    media.bandwidths = {"AS": bandwidth_as, "RS": 0, "RR": 2000}
    if codec != "PCMU":
        media.attributes.append(("rtpmap", f"97 {codec}/{rate}/1"))
        media.attributes.append(("fmtp", "97 mode-change-capability=2;max-red=0"))
    media.attributes += [
        ("rtpmap", f"101 telephone-event/{rate}"),
        ("fmtp", "101 0-15"),
        ("ptime", "20"),
        ("sendrecv", None),
    ]
    sdp.media.append(media)
    return sdp


@dataclass(slots=True, eq=False)
class Leg:
    """One call as this UA sees it."""

    dialog: Dialog | None
    final: Response | None = None
    invite: Request | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    bye: Request | None = None  # a BYE the network or the peer sent us
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)


class UserAgent:
    def __init__(
        self,
        user: str,
        core: Target,
        domain: str,
        ip: str = "127.0.0.1",
        transport: str = "UDP",
        timers: Timers | None = None,
        answer_status: int = 200,
        answer_delay: float = 0.0,
        media_port: int = 40000,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.user = user
        self.core = core
        self.domain = domain
        self.ip = ip
        self.transport = transport
        self.endpoint = Endpoint(self, timers)
        self.answer_status = answer_status
        self.answer_delay = answer_delay
        self.media_port = media_port
        self.extra_headers = headers or {}
        self.legs: dict[str, Leg] = {}
        self.incoming: asyncio.Queue[Leg] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cseq = itertools.count(1)
        self.register_call_id = f"reg-{user}-{new_tag()}"

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact(self) -> SipUri:
        return self.endpoint.uri(self.user, self.transport)

    async def start(self) -> None:
        await self.endpoint.start(self.ip, 0)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.endpoint.close()

    def _headers(self, method: str, to: str, call_id: str, cseq: int) -> Headers:
        headers = Headers()
        headers.add("Via", self.endpoint.via(self.transport, new_branch()))
        headers.add("Max-Forwards", "70")
        headers.add(
            "Route",
            f"<sip:{self.core.host}:{self.core.port}"
            f"{';transport=tcp' if self.transport == 'TCP' else ''};lr>",
        )
        headers.add("From", f"<{self.aor}>;tag={new_tag()}")
        headers.add("To", to)
        headers.add("Call-ID", call_id)
        headers.add("CSeq", f"{cseq} {method}")
        headers.add("Contact", f"<{self.contact}>")
        for name, value in self.extra_headers.items():
            headers.add(name, value)
        return headers

    async def register(self, expires: int = 600) -> Response:
        headers = self._headers(
            "REGISTER", f"<{self.aor}>", self.register_call_id, next(self._cseq)
        )
        headers.add("Expires", str(expires))
        request = Request("REGISTER", parse_uri(f"sip:{self.domain}"), headers)
        return await self.endpoint.request(request, self.core).final

    async def call(
        self,
        callee: str,
        offer: SessionDescription | None = None,
        provisional: list[Response] | None = None,
    ) -> Leg:
        """INVITE ``callee``; on 2xx send the ACK. Returns when the final response arrived."""
        offer = offer or audio_offer(self.ip, self.media_port)
        call_id = f"call-{next(_call_ids)}-{new_tag()}@{self.ip}"
        headers = self._headers("INVITE", f"<{callee}>", call_id, 1)
        headers.add("Content-Type", "application/sdp")
        invite = Request("INVITE", parse_uri(callee), headers, offer.encode())
        leg = Leg(None, invite=invite)
        self.legs[call_id] = leg

        def seen(_tx: object, response: Response) -> None:
            if provisional is not None and response.status < 200:
                provisional.append(response)

        final = await self.endpoint.request(invite, self.core, seen).final
        leg.final = final
        if 200 <= final.status < 300:
            leg.dialog = Dialog.as_uac(invite, final)
            ack = leg.dialog.create_request(
                "ACK", self.endpoint.via(self.transport), cseq=invite.cseq[0]
            )
            self.endpoint.send(ack, self.core)
            leg.confirmed.set()
        else:
            leg.ended.set()
        return leg

    async def cancel(self, leg: Leg) -> Response:
        assert leg.invite is not None
        invite = leg.invite
        headers = Headers()
        headers.add("Via", invite.headers.get("Via") or "")
        headers.add("Max-Forwards", "70")
        headers.add("Route", invite.headers.get("Route") or "")
        headers.add("From", invite.headers.get("From") or "")
        headers.add("To", invite.headers.get("To") or "")
        headers.add("Call-ID", invite.call_id)
        headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
        return await self.endpoint.request(Request("CANCEL", invite.uri, headers), self.core).final

    async def bye(self, leg: Leg) -> Response:
        assert leg.dialog is not None
        request = leg.dialog.create_request("BYE", self.endpoint.via(self.transport))
        response = await self.endpoint.request(request, self.core).final
        leg.ended.set()
        return response

    async def reinvite(
        self, leg: Leg, offer: SessionDescription, method: str = "INVITE"
    ) -> Response:
        """A new offer in the dialog: re-INVITE (ACKed) or UPDATE (RFC 3311)."""
        assert leg.dialog is not None
        request = leg.dialog.create_request(
            method, self.endpoint.via(self.transport), offer.encode()
        )
        request.headers.add("Contact", f"<{self.contact}>")
        response = await self.endpoint.request(request, self.core).final
        if method == "INVITE" and 200 <= response.status < 300:
            ack = leg.dialog.create_request(
                "ACK", self.endpoint.via(self.transport), cseq=request.cseq[0]
            )
            self.endpoint.send(ack, self.core)
        return response

    # --- transaction user ---------------------------------------------------------------------
    def on_request(self, request: Request, tx: ServerTransaction | None, source: Target) -> None:
        leg = self.legs.get(request.call_id)
        if request.method == "ACK":
            if leg is not None:
                leg.confirmed.set()
            return
        assert tx is not None
        if request.method == "INVITE" and request.to.tag is None:
            task = asyncio.ensure_future(self._answer(request, tx))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif request.method == "CANCEL":
            tx.respond(make_response(request, 200))
            invite_tx = self.endpoint.layer.match_invite(request)
            if invite_tx is not None and invite_tx.answerable:
                invite_tx.respond(make_response(invite_tx.request, 487, to_tag=new_tag()))
            if leg is not None:
                leg.ended.set()
        elif request.method == "BYE":
            tx.respond(make_response(request, 200 if leg else 481))
            if leg is not None:
                leg.bye = request
                leg.ended.set()
        elif request.method in ("INVITE", "UPDATE") and leg is not None:
            body = b""
            if request.body:
                body = make_answer(parse_sdp(request.body), self.ip, self.media_port).encode()
            response = make_response(request, 200, body=body)
            response.headers.add("Contact", f"<{self.contact}>")
            tx.respond(response)
        else:
            tx.respond(make_response(request, 200 if request.method == "OPTIONS" else 405))

    def on_stray_response(self, response: Response, source: Target) -> None:
        """2xx retransmissions for an INVITE we already ACKed: ACK again (§13.2.2.4)."""
        leg = self.legs.get(response.call_id)
        if leg is not None and leg.dialog is not None and response.cseq[1] == "INVITE":
            ack = leg.dialog.create_request(
                "ACK", self.endpoint.via(self.transport), cseq=response.cseq[0]
            )
            self.endpoint.send(ack, self.core)

    async def _answer(self, invite: Request, tx: ServerTransaction) -> None:
        tag = new_tag()
        leg = Leg(Dialog.as_uas(invite, tag), invite=invite)
        self.legs[invite.call_id] = leg
        ringing = make_response(invite, 180, to_tag=tag)
        ringing.headers.add("Contact", f"<{self.contact}>")
        tx.respond(ringing)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        if tx.state.value != "Proceeding":  # cancelled meanwhile
            return
        if self.answer_status >= 300:
            tx.respond(make_response(invite, self.answer_status, to_tag=tag))
            leg.ended.set()
            return
        body = b""
        if invite.body:
            body = make_answer(parse_sdp(invite.body), self.ip, self.media_port).encode()
        ok = make_response(invite, 200, to_tag=tag, body=body)
        ok.headers.add("Contact", f"<{self.contact}>")
        tx.respond(ok)
        await self.incoming.put(leg)
        await self._retransmit_until_ack(leg, tx, ok)

    async def _retransmit_until_ack(self, leg: Leg, tx: ServerTransaction, ok: Response) -> None:
        """§13.3.1.4: the UAS core retransmits its 2xx until the ACK arrives."""
        timers = self.endpoint.timers
        interval = timers.t1
        waited = 0.0
        while waited < timers.b:
            try:
                await asyncio.wait_for(leg.confirmed.wait(), interval)
                return
            except TimeoutError:
                waited += interval
                tx.respond(ok)
                interval = min(interval * 2, timers.t2)
