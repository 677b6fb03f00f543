"""Rx (TS 29.214), PCRF side: AAR initial/modification and STR from the AF (P-CSCF); RAR and ASR
to the AF when the bearer or the IP-CAN session changes.

* AAR: bind to the Gx session by UE address (+ APN when given; TS 29.213 binding), derive one PCC
  rule per media component (policy.qos), push them by Gx RAR and answer the AAA only once the RAA
  says they are installed. No Gx session → 5065 IP-CAN_SESSION_NOT_AVAILABLE; PCEF refused the
  rules → 5063 REQUESTED_SERVICE_NOT_AUTHORIZED; PCEF unreachable or silent → 5012; the PCEF no
  longer knows the Gx session (5002) → 5065.
* STR: remove the session's rules by Gx RAR, then STA (the AF session ends whatever the RAA says).
* Gx events: failed rules → RAR with the subscribed Specific-Action (and ASR once every rule of the
  AF session is gone); IP-CAN type change → RAR IP-CAN_CHANGE; Gx CCR-T → ASR for every bound
  AF session, because Kamailio never answers an Rx RAR but does answer ASA and then sends STR
  (shared notes ims-peers.md). Requests to the AF run in the background: they never hold a Gx
  answer back.
* The AAA carries no Authorization-Lifetime: 0 would expire a Kamailio session at once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from diam.constants import APP_RX, CMD_AA, CMD_ABORT_SESSION, CMD_RE_AUTH, CMD_SESSION_TERMINATION
from diam.constants import ResultCode as RC
from diam.errors import AnswerError, DiameterError
from diam.message import Avp, Message
from diam.node import Node
from diam.peer import Peer
from policy.gx import AUTHORIZE_ONLY, GxApp
from policy.qos import QosConfig, ServiceInformationError, derive_rules, merge_components
from policy.scheduler import Scheduler
from policy.store import GxState, RxState, SessionStore
from policy.wire import (
    ChargingId,
    EventTrigger,
    SpecificAction,
    experimental_result,
    media_components,
    shared,
    ue_addresses,
)

log = logging.getLogger("openpcc.policy")

UPDATE_REQUEST = 1  # Rx-Request-Type, TS 29.214 §5.3.31
# Specific-Action the AF subscribes → Event-Trigger the PCEF must then report.
AF_TRIGGERS = {
    SpecificAction.INDICATION_OF_SUCCESSFUL_RESOURCES_ALLOCATION:
        EventTrigger.SUCCESSFUL_RESOURCE_ALLOCATION,
    SpecificAction.CHARGING_CORRELATION_EXCHANGE: EventTrigger.CHARGING_CORRELATION_EXCHANGE,
}  # fmt: skip
BEARER_RELEASED = 0  # Abort-Cause, TS 29.214 §5.3.1
RECENTLY_ABORTED = 65_536
_RX_APPLICATION = shared(Avp.new("Auth-Application-Id", APP_RX))


class RxApp:
    def __init__(
        self,
        node: Node,
        store: SessionStore,
        gx: GxApp,
        scheduler: Scheduler,
        qos: QosConfig,
        af_timeout: float,
    ) -> None:
        self.node = node
        self.store = store
        self.gx = gx
        self.scheduler = scheduler
        self.qos = qos
        self.af_timeout = af_timeout
        # AF sessions we aborted (ASR sent): their STR is answered 2001 although nothing is left.
        self._aborted: OrderedDict[str, None] = OrderedDict()
        gx.af = self

    def register(self) -> None:
        self.node.add_route(APP_RX, CMD_AA, self.on_aar)
        self.node.add_route(APP_RX, CMD_SESSION_TERMINATION, self.on_str)

    # --- AAR ---------------------------------------------------------------------------------

    async def on_aar(self, request: Message, peer: Peer) -> Message:
        session_id = request.get("Session-Id")
        ipv4, ipv6 = ue_addresses(request)
        apn = request.get("Called-Station-Id")
        rx = self.store.cached_rx(session_id)
        if rx is None and not self.store.serves(ipv4, ipv6, apn):
            # Possibly an AF session another OpenPCC process created: ask the database.
            rx = await self.store.rx(session_id)
        if rx is None and request.get("Rx-Request-Type") == UPDATE_REQUEST:
            raise AnswerError(RC.UNKNOWN_SESSION_ID, error_message="no such Rx session")
        if rx is None:
            gx = await self.store.find_gx(ipv4, ipv6, apn)
            if gx is None:
                log.info(
                    "event=rx_no_gx_session session_id=%s ipv4=%s ipv6=%s", session_id, ipv4, ipv6
                )
                return self._aaa(request, RC.IP_CAN_SESSION_NOT_AVAILABLE)
            rx = RxState(session_id, gx.session_id, request.get("Origin-Host"),
                         request.get("Origin-Realm"))  # fmt: skip
        else:
            gx = await self._gx_of(rx)
            if gx is None:
                return self._aaa(request, RC.IP_CAN_SESSION_NOT_AVAILABLE)
        components = merge_components(rx.components, media_components(request))
        icid = request.get("AF-Charging-Identifier", rx.icid)
        try:
            rules = derive_rules(session_id, components.values(), self.qos, icid)
        except ServiceInformationError as exc:
            log.info(
                "event=rx_aar_refused session_id=%s result_code=%d reason=%r",
                session_id,
                exc.result_code,
                exc,
            )
            return self._aaa(request, exc.result_code)
        names = tuple(r.name for r in rules)
        # A modification re-installs only the rules that changed (TS 29.212: installing
        # an existing rule name modifies it) and removes the components that went away.
        previous = rx.derived
        if previous is None:
            previous = tuple(derive_rules(session_id, rx.components.values(), self.qos, rx.icid))
        unchanged = set(previous)
        install = [r for r in rules if r not in unchanged]
        remove = [n for n in rx.rules if n not in names]
        actions = frozenset(a.value for a in request["Specific-Action"]) or rx.specific_actions
        async with gx.lock:
            # What the AF wants to hear about, the PCEF must report (TS 29.212 §5.3.7); a RAR's
            # Event-Triggers replace the whole set.
            triggers = gx.event_triggers | {AF_TRIGGERS[a] for a in actions if a in AF_TRIGGERS}
            extra = [] if triggers == gx.event_triggers else _triggers(triggers)
            if install or remove or extra:  # a re-INVITE with the same SDP changes nothing
                result = await self.gx.push(gx, install=install, remove=remove, extra=extra)
                if not result.ok:
                    return self._aaa(request, _failure(result.code))
            if gx.served_by == self.store.origin_host and self.store.gx(gx.session_id) is not gx:
                # The IP-CAN session ended (CCR-T) while the RAR was out.
                return self._aaa(request, RC.IP_CAN_SESSION_NOT_AVAILABLE)
            if extra:
                gx.event_triggers = frozenset(triggers)
                await self.store.save_gx(gx)
            rx.components = components
            rx.rules = names
            rx.derived = tuple(rules)
            rx.specific_actions = actions
            rx.icid = icid
            await self.store.save_rx(gx, rx)
        log.info("event=rx_session_authorised session_id=%s gx_session_id=%s rules=%s",
                 session_id, gx.session_id, ",".join(names))  # fmt: skip
        return self._aaa(request, RC.SUCCESS)

    def _aaa(self, request: Message, code: int) -> Message:
        if code in (RC.SUCCESS, RC.UNABLE_TO_COMPLY, RC.UNKNOWN_SESSION_ID):
            answer = request.answer(code)
        else:
            answer = request.answer(None, experimental_result(code))
        answer.avps.append(_RX_APPLICATION)
        return answer

    async def _gx_of(self, rx: RxState) -> GxState | None:
        gx = self.store.gx(rx.gx_session_id)
        if gx is None:
            gx = await self.store.find_gx_by_id(rx.gx_session_id)
        return gx

    # --- STR ---------------------------------------------------------------------------------

    async def on_str(self, request: Message, peer: Peer) -> Message:
        session_id = request.get("Session-Id")
        rx = await self.store.rx(session_id)
        if rx is None:
            if session_id in self._aborted:
                del self._aborted[session_id]
                return request.answer(RC.SUCCESS)
            raise AnswerError(RC.UNKNOWN_SESSION_ID, error_message="no such Rx session")
        gx = await self._gx_of(rx)
        if gx is not None:
            async with gx.lock:
                if rx.rules:
                    result = await self.gx.push(gx, remove=rx.rules)
                    if result.code is None and self.store.gx(gx.session_id) is gx:
                        # No RAA: remove them at the next RAR or CCA of this IP-CAN session.
                        log.warning("event=rx_removal_unconfirmed session_id=%s", session_id)
                        gx.stale_rules = gx.stale_rules | set(rx.rules)
                        await self.store.save_gx(gx)
                await self.store.delete_rx(gx, rx)
        else:
            await self.store.delete_rx(None, rx)
        log.info(
            "event=rx_session_terminated session_id=%s rules=%s", session_id, ",".join(rx.rules)
        )
        return request.answer(RC.SUCCESS)

    # --- Gx → AF (AfNotifier) ----------------------------------------------------------------

    def rules_failed(self, gx: GxState, names: frozenset[str]) -> None:
        for rx in self.store.rx_of(gx):
            lost = [n for n in rx.rules if n in names]
            if not lost:
                continue
            components = [_component_of(n) for n in lost]
            action = (
                SpecificAction.INDICATION_OF_FAILED_RESOURCES_ALLOCATION
                if SpecificAction.INDICATION_OF_FAILED_RESOURCES_ALLOCATION in rx.specific_actions
                else SpecificAction.INDICATION_OF_LOSS_OF_BEARER
            )
            if action in rx.specific_actions:
                self.scheduler.spawn(self._rar(rx, action, components))
            if len(lost) == len(rx.rules):
                self.scheduler.spawn(self._abort(gx, rx))

    def rules_active(self, gx: GxState, names: frozenset[str]) -> None:
        """The PCEF reported the rules installed (bearer up): tell subscribed AFs."""
        action = SpecificAction.INDICATION_OF_SUCCESSFUL_RESOURCES_ALLOCATION
        for rx in self.store.rx_of(gx):
            active = [n for n in rx.rules if n in names]
            if active and action in rx.specific_actions:
                self.scheduler.spawn(self._rar(rx, action, [_component_of(n) for n in active]))

    def charging_correlation(
        self, gx: GxState, ids: list[ChargingId], address: object | None
    ) -> None:
        """Hand the PCEF's charging identifiers to the subscribed AFs (TS 29.214
        Access-Network-Charging-Identifier, with the Flows each one covers)."""
        action = SpecificAction.CHARGING_CORRELATION_EXCHANGE
        for rx in self.store.rx_of(gx):
            if action not in rx.specific_actions:
                continue
            extra: list[Any] = []
            for cid in ids:
                covered = [n for n in rx.rules if n in cid.rules]
                if not (covered or cid.session_scope or not cid.rules):
                    continue
                flows = [Avp.new("Flows", [("Media-Component-Number", _component_of(n))])
                         for n in covered]  # fmt: skip
                extra.append(Avp.new("Access-Network-Charging-Identifier", [
                    ("Access-Network-Charging-Identifier-Value", cid.value), *flows,
                ]))  # fmt: skip
            if extra:
                if address is not None:
                    extra.append(("Access-Network-Charging-Address", address))
                self.scheduler.spawn(self._rar(rx, action, [], extra))

    def ip_can_changed(self, gx: GxState) -> None:
        for rx in self.store.rx_of(gx):
            if SpecificAction.IP_CAN_CHANGE in rx.specific_actions:
                extra = [("IP-CAN-Type", gx.ip_can_type)] if gx.ip_can_type is not None else []
                if gx.rat_type is not None:
                    extra.append(("RAT-Type", gx.rat_type))
                self.scheduler.spawn(self._rar(rx, SpecificAction.IP_CAN_CHANGE, [], extra))

    def ip_can_ended(self, gx: GxState, bound: list[RxState]) -> None:
        for rx in bound:
            self._remember_aborted(rx.session_id)
            self.scheduler.spawn(self._send_asr(rx))

    async def _rar(
        self,
        rx: RxState,
        action: SpecificAction,
        components: list[int],
        extra: list[Any] | None = None,
    ) -> None:
        request = self._to_af(CMD_RE_AUTH, rx, ("Re-Auth-Request-Type", AUTHORIZE_ONLY))
        request.add(("Specific-Action", action))
        request.add(*(Avp.new("Flows", [("Media-Component-Number", n)]) for n in components))
        request.add(*(extra or []))
        log.info("event=rx_rar session_id=%s action=%s", rx.session_id, action.name)
        await self._send(request, rx)

    async def _abort(self, gx: GxState, rx: RxState) -> None:
        """All flows of the AF session are gone: end it (ASR; the AF answers and sends STR)."""
        self._remember_aborted(rx.session_id)
        async with gx.lock:
            await self.store.delete_rx(gx, rx)
        await self._send_asr(rx)

    async def _send_asr(self, rx: RxState) -> None:
        request = self._to_af(CMD_ABORT_SESSION, rx, ("Abort-Cause", BEARER_RELEASED))
        log.info("event=rx_asr session_id=%s", rx.session_id)
        await self._send(request, rx)

    def _to_af(self, command: int, rx: RxState, *avps: tuple[str, Any]) -> Message:
        return Message.request(
            command,
            APP_RX,
            [
                ("Session-Id", rx.session_id),
                ("Destination-Realm", rx.af_realm),
                ("Destination-Host", rx.af_host),
                ("Auth-Application-Id", APP_RX),
                *avps,
            ],
        )

    async def _send(self, request: Message, rx: RxState) -> None:
        try:
            await self.node.request(request, timeout=self.af_timeout)
        except (DiameterError, TimeoutError, ConnectionError) as exc:
            # Kamailio never answers an Rx RAR: a timeout here is expected, not an error.
            log.debug("event=rx_af_unanswered session_id=%s error=%r", rx.session_id, exc)

    def _remember_aborted(self, session_id: str) -> None:
        self._aborted[session_id] = None
        while len(self._aborted) > RECENTLY_ABORTED:
            self._aborted.popitem(last=False)


def _failure(code: int | None) -> int:
    if code is None:
        return RC.UNABLE_TO_COMPLY
    if code == RC.UNKNOWN_SESSION_ID:
        return RC.IP_CAN_SESSION_NOT_AVAILABLE
    return RC.REQUESTED_SERVICE_NOT_AUTHORIZED


def _triggers(triggers: frozenset[int]) -> list[Avp]:
    return [Avp.new("Event-Trigger", t) for t in sorted(triggers)]


def _component_of(rule_name: str) -> int:
    return int(rule_name.rsplit("-", 1)[1])
