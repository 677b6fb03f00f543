"""P-CSCF role: Rx (TS 29.214) towards the PCRF, shaped like Kamailio's ims_qos.

On the SDP answer one AAR per UE (caller and callee each have their own IP-CAN session): media
components from offer + answer (``ims.media``), Framed-IP-Address = the UE's SDP address,
Subscription-Id as SIP URI, AF-Charging-Identifier = the ICID and Kamailio's seven
Specific-Actions. A refused AAR rejects the call (488 for a media/policy refusal, 500 otherwise,
TS 24.229 §5.2.7.2) unless ``mandatory`` is off. BYE/CANCEL/release → STR. An ASR (or an RAR
announcing loss/release of the bearer) releases the call with BYE to both sides.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from functools import lru_cache

from diam.constants import (
    APP_RX,
    CMD_AA,
    CMD_ABORT_SESSION,
    CMD_RE_AUTH,
    CMD_SESSION_TERMINATION,
    VENDOR_3GPP,
)
from diam.errors import DiameterError
from diam.message import Message
from diam.node import Node
from diam.octets import avp, group
from diam.octets import request as wire_request
from diam.peer import Peer
from ims.call import Call, CallHooks, Rejection
from ims.links import PeerLink
from ims.media import MediaComponentInput, media_components, signalling_component, ue_address
from ims.sip.message import Response
from ims.sip.transaction import Target

log = logging.getLogger("openpcc.ims")

# TS 29.214 §5.3.16: what ims_qos subscribes to.
KAMAILIO_ACTIONS = (2, 3, 4, 6, 8, 9, 12)
LOSS_OF_BEARER, RELEASE_OF_BEARER = 2, 4
DIAMETER_LOGOUT = 1
POLICY_REFUSALS = frozenset({5061, 5062, 5063, 5065})  # TS 29.214 §5.5: service/IP-CAN refused


# AVPs whose values repeat from call to call (component and flow numbers, media type, flow
# status and usage, codec bandwidths): encoded once per value.
_repeated = lru_cache(maxsize=1024)(avp)


def component_avp(comp: MediaComponentInput) -> bytes:
    """Media-Component-Description (TS 29.214 §5.3.21) with Max = Min requested bandwidth, as
    wire octets."""
    children = [
        _repeated("Media-Component-Number", comp.number),
        _repeated("Media-Type", int(comp.media_type)),
    ]
    for name, value in (
        ("Max-Requested-Bandwidth-UL", comp.max_ul),
        ("Max-Requested-Bandwidth-DL", comp.max_dl),
        ("Min-Requested-Bandwidth-UL", comp.min_ul),
        ("Min-Requested-Bandwidth-DL", comp.min_dl),
        ("RR-Bandwidth", comp.rr),
        ("RS-Bandwidth", comp.rs),
    ):
        if value is not None:
            children.append(_repeated(name, value))
    children += [avp("Codec-Data", data) for data in comp.codec_data]
    children.append(_repeated("Flow-Status", int(comp.flow_status)))
    for sub in comp.sub_components:
        children.append(
            group(
                "Media-Sub-Component",
                _repeated("Flow-Number", sub.flow_number),
                *(avp("Flow-Description", d) for d in sub.flow_descriptions),
                _repeated("Flow-Usage", int(sub.flow_usage)),
            )
        )
    return group("Media-Component-Description", *children)


# TS 29.214 §5.3.16: the seven subscriptions, encoded once.
_ACTIONS = b"".join(avp("Specific-Action", a) for a in KAMAILIO_ACTIONS)
_RX_APP = avp("Auth-Application-Id", APP_RX)
_LOGOUT = avp("Termination-Cause", DIAMETER_LOGOUT)


@lru_cache(maxsize=16)
def _aar_head(realm: str) -> bytes:
    """The AAR's constant AVPs after Session-Id, as ims_qos sends them."""
    return b"".join(
        (
            _RX_APP,
            group(
                "Vendor-Specific-Application-Id",
                avp("Vendor-Id", VENDOR_3GPP),
                _RX_APP,
            ),
            avp("Destination-Realm", realm),
            avp("AF-Application-Identifier", b"IMS Services"),
        )
    )


@lru_cache(maxsize=16)
def _realm(realm: str) -> bytes:
    return avp("Destination-Realm", realm)


def result_code(answer: Message) -> int | None:
    code = answer.get("Result-Code")
    if code is not None:
        return int(code)
    er = answer.first("Experimental-Result")
    return None if er is None else er.get("Experimental-Result-Code")


class PcscfRx(CallHooks):
    """The Rx client; ``release(call, reason, cause)`` is the core's network-release entry."""

    def __init__(
        self,
        node: Node,
        link: PeerLink,
        release: Callable[[Call, str, str], None],
        *,
        mandatory: bool = True,
        timeout: float = 3.0,
        register_aar: bool = False,
        signalling: tuple[str, int] | None = None,
    ) -> None:
        self.node = node
        self.link = link
        self.release = release
        self.mandatory = mandatory
        self.timeout = timeout
        self.sessions: dict[str, tuple[Call, str]] = {}  # Rx Session-Id → (call, side)
        # TS 29.214 §4.4.5a: AF signalling path per registered AOR (when register_aar is on)
        self.register_aar = register_aar
        self.signalling = signalling  # the P-CSCF's own SIP address (ip, port)
        self.registrations: dict[str, str] = {}  # AOR → Rx Session-Id
        self._registration_locks: dict[str, asyncio.Lock] = {}
        self._counter = 0
        self._session_prefix = f"{node.identity.origin_host};rx;{id(self) & 0xFFFF:x};"
        node.add_route(APP_RX, CMD_ABORT_SESSION, self.on_asr)
        node.add_route(APP_RX, CMD_RE_AUTH, self.on_rar)

    def _session_id(self) -> str:
        self._counter += 1
        return f"{self._session_prefix}{self._counter}"

    async def on_answer(self, call: Call, response: Response) -> Rejection | None:
        if call.offer is None or call.answer is None:
            return None
        sides = call.data.setdefault("rx", {})
        # both AARs in flight at once (and in one write): the caller's in a task, the callee's here
        caller = asyncio.ensure_future(self._aar(call, "caller", sides))
        callee_code = await self._aar(call, "callee", sides)
        for side, code in (("caller", await caller), ("callee", callee_code)):
            if code is not None and 2000 <= code < 3000:
                continue
            log.info("event=rx_refused call=%s side=%s code=%s", call.call_id, side, code)
            if not self.mandatory:
                continue
            status = 488 if code in POLICY_REFUSALS else 500
            text = f"Rx AAR refused ({code})" if code else "PCRF unreachable"
            return Rejection(status, f'SIP;cause={status};text="{text}"', text)
        return None

    async def _aar(self, call: Call, side: str, sides: dict[str, str]) -> int | None:
        assert call.offer is not None and call.answer is not None
        ue_is_offerer = call.offerer == side
        party = call.caller if side == "caller" else call.callee
        session_id = sides.get(side) or self._session_id()
        ip = ue_address(call.offer, call.answer, ue_is_offerer)
        if ip is None:
            return None
        components = media_components(call.offer, call.answer, ue_is_offerer)
        code = await self._send_aar(session_id, party.aor, ip, components, call.icid)
        if code is None or 2000 <= code < 3000:
            # An AAR without answer may still have been applied (the PCRF slow, not gone): the
            # call's end sends its STR too, so no bearer is left behind (else 5002, harmless).
            sides[side] = session_id
            self.sessions[session_id] = (call, side)
        return code

    async def _send_aar(
        self,
        session_id: str,
        aor: str,
        ip: str,
        components: list[MediaComponentInput],
        icid: str | None,
    ) -> int | None:
        """One AAR as ims_qos builds it; the result code, None when the PCRF is unreachable."""
        if ":" not in ip:
            framed = avp("Framed-IP-Address", socket.inet_pton(socket.AF_INET, ip))
        else:  # RFC 3162 prefix /128, as ims_qos sends it
            packed = socket.inet_pton(socket.AF_INET6, ip)
            framed = avp("Framed-IPv6-Prefix", b"\x00\x80" + packed)
        request = wire_request(
            CMD_AA,
            APP_RX,
            avp("Session-Id", session_id),
            _aar_head(self.link.realm),
            b"" if icid is None else avp("AF-Charging-Identifier", icid.encode()),
            *(component_avp(comp) for comp in components),
            group(
                "Subscription-Id",
                avp("Subscription-Id-Type", 2),  # SIP URI
                avp("Subscription-Id-Data", aor),
            ),
            framed,
            _ACTIONS,
        )
        try:
            answer = await self.link.request(request, self.timeout)
        except (DiameterError, TimeoutError, ConnectionError, OSError) as exc:
            log.warning("event=rx_aar_failed session=%s error=%r", session_id, exc)
            return None
        return result_code(answer)

    async def on_registration(self, aor: str, source: Target, registered: bool) -> None:
        """TS 29.214 §4.4.5a: AF signalling flows between the UE's SIP address and ours for
        as long as the AOR is registered (failures are logged; the REGISTER stands)."""
        if not self.register_aar or self.signalling is None:
            return
        lock = self._registration_locks.setdefault(aor, asyncio.Lock())
        async with lock:  # a quick re-/de-REGISTER waits for the AAR in flight
            session_id = self.registrations.get(aor)
            if not registered:
                if session_id is not None:
                    del self.registrations[aor]
                    await self._str(session_id)
                self._registration_locks.pop(aor, None)
                return
            if session_id is not None:
                return
            session_id = self._session_id()
            component = signalling_component(source.host, source.port, *self.signalling)
            code = await self._send_aar(session_id, aor, source.host, [component], None)
            if code is not None and 2000 <= code < 3000:
                self.registrations[aor] = session_id
            else:
                log.info("event=rx_register_refused aor=%s code=%s", aor, code)

    async def on_end(self, call: Call, cause: str) -> None:
        sides: dict[str, str] = call.data.get("rx", {})
        session_ids = list(sides.values())
        sides.clear()
        if len(session_ids) == 2:  # both in flight at once, without a gather
            first = asyncio.ensure_future(self._str(session_ids[0]))
            await self._str(session_ids[1])
            await first
        else:
            for session_id in session_ids:
                await self._str(session_id)

    async def _str(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        request = wire_request(
            CMD_SESSION_TERMINATION,
            APP_RX,
            avp("Session-Id", session_id),
            _RX_APP,
            _realm(self.link.realm),
            _LOGOUT,
        )
        try:
            await self.link.request(request, self.timeout)
        except (DiameterError, TimeoutError, ConnectionError, OSError) as exc:
            log.warning("event=rx_str_failed session=%s error=%r", session_id, exc)

    async def on_asr(self, request: Message, peer: Peer) -> Message:
        """TS 29.214 §4.4.4: the PCRF aborts the AF session (bearer or IP-CAN lost)."""
        session_id = request.get("Session-Id")
        entry = self.sessions.get(session_id)
        if entry is None:
            aor = next((a for a, sid in self.registrations.items() if sid == session_id), None)
            if aor is None:
                return request.answer(5002, ("Auth-Application-Id", APP_RX))
            del self.registrations[aor]  # the signalling path is gone; the PCRF ends it
            return request.answer(2001, ("Auth-Application-Id", APP_RX))
        call, _ = entry
        self.release(call, 'SIP;cause=503;text="bearer lost (Rx ASR)"', "Rx abort")
        return request.answer(2001, ("Auth-Application-Id", APP_RX))

    async def on_rar(self, request: Message, peer: Peer) -> Message:
        """TS 29.214 §4.4.6: an event report; loss or release of the bearer ends the call."""
        session_id = request.get("Session-Id")
        entry = self.sessions.get(session_id)
        if entry is None:
            return request.answer(5002, ("Auth-Application-Id", APP_RX))
        actions = {a.value for a in request["Specific-Action"]}
        if actions & {LOSS_OF_BEARER, RELEASE_OF_BEARER}:
            self.release(entry[0], 'SIP;cause=503;text="bearer lost (Rx RAR)"', "Rx bearer lost")
        return request.answer(2001, ("Auth-Application-Id", APP_RX))
