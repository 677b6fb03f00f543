"""S-CSCF charging trigger: Ro session-based charging (TS 32.299, TS 32.260), shaped like
Kamailio's ims_charging.

CCR-I before the INVITE is forwarded (CC-Request-Number 0, MSCC{RSU, Service-Identifier 1000,
Rating-Group 100}, IMS-Information with calling/called party, ICID, SIP method, Role-Of-Node and
Node-Functionality); charging starts at the 2xx; a CCR-U goes out ``buffer`` seconds before
min(granted CC-Time, Validity-Time) runs out, reporting the seconds used since the last report;
CCR-T at the end with the rest. A refused CCR-I rejects the call (4012 → 402, as the notes
record for Kamailio's script: 5030/5031 → 403, 4010 → 402, 5006 → 486, else 402). A refused
CCR-U, an empty grant or the end of a final grant (FUI TERMINATE) releases the call (BYE both
ways). An Ro RAR forces an immediate CCR-U; an Ro ASR releases the call.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from diam.constants import (
    APP_CREDIT_CONTROL,
    CMD_ABORT_SESSION,
    CMD_CREDIT_CONTROL,
    CMD_RE_AUTH,
)
from diam.errors import DiameterError
from diam.message import Message
from diam.node import Node
from diam.octets import avp, group
from diam.octets import request as wire_request
from diam.peer import Peer
from ims.call import Call, CallHooks, CallState, Rejection
from ims.links import PeerLink
from ims.pcscf import result_code

log = logging.getLogger("openpcc.ims")

INITIAL, UPDATE, TERMINATION = 1, 2, 3
ORIGINATING_ROLE, S_CSCF = 0, 0  # TS 32.299 §7.2.172 Role-Of-Node, §7.2.135 Node-Functionality
# RFC 6733 §8.15 Termination-Cause for the call's end (the OCS turns it into the CDR's cause)
LOGOUT, SERVICE_NOT_PROVIDED, ADMINISTRATIVE, LINK_BROKEN, AUTH_EXPIRED = 1, 2, 4, 5, 6
TERMINATION_CAUSES = {
    "BYE from caller": LOGOUT,
    "BYE from callee": LOGOUT,
    "credit exhausted": AUTH_EXPIRED,
    "out of credit": AUTH_EXPIRED,  # the grant ran out
    "Rx abort": LINK_BROKEN,
    "Rx bearer lost": LINK_BROKEN,  # the bearer is gone
    "Ro abort": ADMINISTRATIVE,
    "network release": ADMINISTRATIVE,
}
FUI_TERMINATE = 0
SIP_STATUS = {5030: 403, 5031: 403, 4010: 402, 4012: 402, 5006: 486}


# The CCR's constant parts (TS 32.299 §6.4.2, Kamailio ims_charging's shape), encoded once.
_E164, _SIP_URI = avp("Subscription-Id-Type", 0), avp("Subscription-Id-Type", 2)
_VOICE = avp("Service-Identifier", 1000) + avp("Rating-Group", 100)
_ROLE_AND_FUNCTION = avp("Role-Of-Node", ORIGINATING_ROLE) + avp("Node-Functionality", S_CSCF)
_SIP_METHOD = {
    kind: group("Event-Type", avp("SIP-Method", method))
    for kind, method in ((INITIAL, "INVITE"), (UPDATE, "ACK"), (TERMINATION, "BYE"))
}
_REQUEST_TYPE = {kind: avp("CC-Request-Type", kind) for kind in (INITIAL, UPDATE, TERMINATION)}


def _service_unit(name: str, seconds: int) -> bytes:
    return group(name, avp("CC-Time", seconds))


@lru_cache(maxsize=16)
def _ccr_head(realm: str, service_context: str) -> bytes:
    return (
        avp("Auth-Application-Id", APP_CREDIT_CONTROL)
        + avp("Destination-Realm", realm)
        + avp("Service-Context-Id", service_context)
    )


def _call_parts(call: Call, session_id: str) -> tuple[bytes, bytes, bytes]:
    """Session-Id, Subscription-Id and the IMS-Information children after SIP-Method: the same
    in every CCR of the call."""
    identity = call.caller.identity.lstrip("+")
    if identity.isdigit():  # E.164, '+' stripped as ims_charging sends it
        subscription = group("Subscription-Id", _E164, avp("Subscription-Id-Data", identity))
    else:
        subscription = group(
            "Subscription-Id", _SIP_URI, avp("Subscription-Id-Data", call.caller.aor)
        )
    ims = [
        _ROLE_AND_FUNCTION,
        avp("User-Session-Id", call.call_id),
        avp("Calling-Party-Address", tel_or_sip(call.caller.aor)),
        avp("Called-Party-Address", tel_or_sip(call.callee.aor)),
        avp("IMS-Charging-Identifier", call.icid),
    ]
    if call.access_network_info:
        ims.append(avp("Access-Network-Information", call.access_network_info))
    return avp("Session-Id", session_id), subscription, b"".join(ims)


@dataclass(slots=True, eq=False)
class RoSession:
    session_id: str
    number: int = 0
    granted: int = 0  # seconds granted by the last CCA
    validity: int | None = None
    final: bool = False  # FUI TERMINATE: no more CCR-U
    reported_at: float | None = None  # monotonic time usage was last counted from
    used_total: int = 0
    timer: asyncio.TimerHandle | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ended: bool = False
    call_parts: tuple[bytes, bytes, bytes] | None = None  # see _call_parts


def tel_or_sip(aor: str) -> str:
    """``tel:+4915...`` for a numeric user part (rating by E.164 prefix), else the SIP AOR."""
    user = aor.split(":", 1)[1].split("@", 1)[0]
    digits = user.lstrip("+")
    return f"tel:+{digits}" if digits.isdigit() else aor


class ScscfRo(CallHooks):
    def __init__(
        self,
        node: Node,
        link: PeerLink,
        release: Callable[[Call, str, str], None],
        *,
        service_context: str = "32260@3gpp.org",
        requested_seconds: int = 60,
        buffer: float = 5.0,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self.link = link
        self.release = release
        self.service_context = service_context
        self.requested_seconds = requested_seconds
        self.buffer = buffer
        self.timeout = timeout
        self.clock = clock
        self.sessions: dict[str, tuple[Call, RoSession]] = {}
        self._counter = 0
        self._tasks: set[asyncio.Future[None]] = set()
        node.add_route(APP_CREDIT_CONTROL, CMD_RE_AUTH, self.on_rar)
        node.add_route(APP_CREDIT_CONTROL, CMD_ABORT_SESSION, self.on_asr)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- requests -----------------------------------------------------------------------------
    def _ccr(
        self,
        call: Call,
        ro: RoSession,
        kind: int,
        used: int | None,
        extra: bytes = b"",
    ) -> Message:
        mscc: list[bytes] = []
        if kind != TERMINATION:
            mscc.append(_service_unit("Requested-Service-Unit", self.requested_seconds))
        if used is not None:
            mscc.append(_service_unit("Used-Service-Unit", used))
        mscc.append(_VOICE)
        if ro.call_parts is None:  # the session's constant AVPs, encoded at its first CCR
            ro.call_parts = _call_parts(call, ro.session_id)
        session, subscription, ims = ro.call_parts
        return wire_request(
            CMD_CREDIT_CONTROL,
            APP_CREDIT_CONTROL,
            session,
            _ccr_head(self.link.realm, self.service_context),
            _REQUEST_TYPE[kind],
            avp("CC-Request-Number", ro.number),
            subscription,
            group("Multiple-Services-Credit-Control", *mscc),
            group("Service-Information", group("IMS-Information", _SIP_METHOD[kind], ims)),
            extra,
        )

    async def _send(
        self,
        call: Call,
        ro: RoSession,
        kind: int,
        used: int | None,
        extra: bytes = b"",
    ) -> Message | None:
        request = self._ccr(call, ro, kind, used, extra)
        ro.number += 1
        try:
            return await self.link.request(request, self.timeout)
        except (DiameterError, TimeoutError, ConnectionError, OSError) as exc:
            log.warning("event=ro_ccr_failed call=%s type=%d error=%r", call.call_id, kind, exc)
            return None

    def _apply_grant(self, ro: RoSession, answer: Message) -> int | None:
        """Take the grant from the CCA; returns the failing result code, or None on success.
        A second MSCC overwrites the first, as ims_charging does."""
        code = result_code(answer)
        if code is None or not 2000 <= code < 3000:
            return code or 5012
        granted: int | None = None
        for mscc in answer["Multiple-Services-Credit-Control"]:
            mscc_code = mscc.get("Result-Code")
            if mscc_code is not None and not 2000 <= mscc_code < 3000:
                return int(mscc_code)
            gsu = mscc.first("Granted-Service-Unit")
            granted = gsu.get("CC-Time") if gsu is not None else None
            ro.validity = mscc.get("Validity-Time")
            fui = mscc.first("Final-Unit-Indication")
            ro.final = fui is not None and fui.get("Final-Unit-Action") == FUI_TERMINATE
        if not granted:
            return 4012  # success without time: nothing to talk with
        ro.granted = int(granted)
        return None

    # --- hooks --------------------------------------------------------------------------------
    async def on_invite(self, call: Call) -> Rejection | None:
        self._counter += 1
        ro = RoSession(f"{self.node.identity.origin_host};ro;{id(self) & 0xFFFF:x};{self._counter}")
        answer = await self._send(call, ro, INITIAL, None)
        if answer is None:
            return Rejection(500, 'SIP;cause=500;text="OCS unreachable"', "OCS unreachable")
        failure = self._apply_grant(ro, answer)
        if failure is not None:
            status = SIP_STATUS.get(failure, 402)
            log.info("event=ro_refused call=%s code=%s sip=%d", call.call_id, failure, status)
            call.data["ro_refused"] = failure
            return Rejection(
                status, f'SIP;cause={status};text="credit control {failure}"', f"Ro CCA {failure}"
            )
        if call.state == CallState.ENDED:  # released while the CCR-I was out: give it back
            await self._send(
                call, ro, TERMINATION, 0, avp("Termination-Cause", SERVICE_NOT_PROVIDED)
            )
            return None
        call.data["ro"] = ro
        self.sessions[ro.session_id] = (call, ro)
        return None

    async def on_confirmed(self, call: Call) -> None:
        ro: RoSession | None = call.data.get("ro")
        if ro is None:
            return
        ro.reported_at = self.clock()
        self._schedule(call, ro)

    def _schedule(self, call: Call, ro: RoSession) -> None:
        if ro.timer:
            ro.timer.cancel()
        window = min(ro.granted, ro.validity) if ro.validity else ro.granted
        loop = asyncio.get_running_loop()
        if ro.final:  # FUI TERMINATE: the call ends when the last grant does
            ro.timer = loop.call_later(window, self._final_units_used, call, ro)
        else:
            delay = max(0.0, window - min(self.buffer, window / 2))
            ro.timer = loop.call_later(delay, lambda: self._spawn(self._update(call, ro)))

    def _final_units_used(self, call: Call, ro: RoSession) -> None:
        log.info("event=ro_final_units_used call=%s", call.call_id)
        self.release(call, 'SIP;cause=402;text="credit exhausted"', "credit exhausted")

    def _take_usage(self, ro: RoSession) -> int:
        """Whole seconds since the last report (half up, RFC 4006 CC-Time is an integer)."""
        if ro.reported_at is None:
            return 0
        now = self.clock()
        used = math.floor(now - ro.reported_at + 0.5)
        ro.reported_at += used  # keep the sub-second remainder for the next report
        ro.used_total += used
        return used

    async def _update(self, call: Call, ro: RoSession) -> None:
        async with ro.lock:
            if ro.ended:
                return
            answer = await self._send(call, ro, UPDATE, self._take_usage(ro))
            failure = 5012 if answer is None else self._apply_grant(ro, answer)
            if failure is not None:
                log.info("event=ro_update_refused call=%s code=%s", call.call_id, failure)
                call.data["ro_refused"] = failure
                self.release(
                    call, f'SIP;cause=402;text="credit control {failure}"', "out of credit"
                )
                return
            self._schedule(call, ro)

    async def on_end(self, call: Call, cause: str) -> None:
        ro: RoSession | None = call.data.get("ro")
        if ro is None:
            return
        async with ro.lock:
            ro.ended = True
            if ro.timer:
                ro.timer.cancel()
            self.sessions.pop(ro.session_id, None)
            # never answered (cancelled, rejected downstream): the service was not provided
            termination = TERMINATION_CAUSES.get(cause, SERVICE_NOT_PROVIDED)
            await self._send(
                call, ro, TERMINATION, self._take_usage(ro), avp("Termination-Cause", termination)
            )

    # --- OCS-initiated ------------------------------------------------------------------------
    async def on_rar(self, request: Message, peer: Peer) -> Message:
        """RFC 4006 §5.5: re-authorize now (the top-up path); answered 2002 like ims_charging."""
        entry = self.sessions.get(request.get("Session-Id"))
        if entry is None:
            return request.answer(5002, ("Auth-Application-Id", APP_CREDIT_CONTROL))
        call, ro = entry
        if ro.reported_at is not None:
            self._spawn(self._update(call, ro))
        return request.answer(2002, ("Auth-Application-Id", APP_CREDIT_CONTROL))

    async def on_asr(self, request: Message, peer: Peer) -> Message:
        entry = self.sessions.get(request.get("Session-Id"))
        if entry is None:
            return request.answer(5002, ("Auth-Application-Id", APP_CREDIT_CONTROL))
        self.release(entry[0], 'SIP;cause=503;text="aborted by the OCS"', "Ro abort")
        return request.answer(2001, ("Auth-Application-Id", APP_CREDIT_CONTROL))
