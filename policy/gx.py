"""Gx (TS 29.212), PCRF side: CCR-I/U/T from the PCEF, and PCRF-initiated RAR with the RAA checked.

Every change of policy after the CCA-I (time-of-day boundary, fair-use allowance spent, credit
exhausted or topped up) goes out through one path, :meth:`GxApp.reevaluate`: decide again, compare
with what the PCEF enforces (persisted with the session) and push only the delta by RAR. A CCA-U
acknowledges usage reports and re-arms monitoring; the QoS switch they cause is pushed by RAR to
every IP-CAN session of the subscriber (the allowance is per subscriber, not per session).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from diam.constants import (
    APP_GX,
    CMD_CREDIT_CONTROL,
    CMD_RE_AUTH,
    VENDOR_3GPP,
    CcRequestType,
    ResultCode,
)
from diam.errors import AnswerError, DiameterError
from diam.message import Avp, Message
from diam.node import Node
from diam.peer import Peer
from policy.catalog import PolicyCatalog
from policy.decision import (
    Ambr,
    ChargingState,
    ChargingStateSource,
    Decision,
    SubscriberRef,
    bearer_changed,
    decide,
    next_boundary,
    rule_changes,
)
from policy.qos import Arp, PccRule
from policy.scheduler import Clock, Scheduler
from policy.store import GxState, RxState, SessionStore
from policy.wire import (
    PCC_RULE_ACTIVE,
    ChargingId,
    EventTrigger,
    SubscriptionIdType,
    apn_ambr,
    charging_ids,
    default_bearer_qos,
    experimental_result,
    monitoring_avps,
    monitoring_off,
    result_of,
    rule_install,
    rule_remove,
    rule_reports,
    shared,
    subscription_ids,
    ue_addresses,
    usage_reports,
)

log = logging.getLogger("openpcc.policy")

AUTHORIZE_ONLY = 0  # Re-Auth-Request-Type, RFC 6733 §8.12
UE_ONLY, UE_NW = 0, 1  # Bearer-Control-Mode, TS 29.212 §5.3.23
NETWORK_REQUEST_SUPPORTED = 1  # Network-Request-Support, TS 29.212 §5.3.24
ENABLE, DISABLE = 1, 0  # Online / Offline, TS 29.212 §5.3.9-10
# Supported-Features (TS 29.212 §5.4.1): Feature-List-ID 1, Rel8 | Rel9 | Rel10.
GX_FEATURES = 0b111


# The parts of a CCA-I that depend only on the APN policy's decision are encoded once and then
# appended as wire bytes (wire.shared): never modified, so one object serves every answer.
_GX_APPLICATION = shared(Avp.new("Auth-Application-Id", APP_GX))
_REQUEST_TYPE = {k: shared(Avp.new("CC-Request-Type", k)) for k in CcRequestType}
_BEARER_CONTROL = {m: shared(Avp.new("Bearer-Control-Mode", m)) for m in (0, 1, 2)}
_AUTHORIZE_ONLY = shared(Avp.new("Re-Auth-Request-Type", AUTHORIZE_ONLY))


@functools.lru_cache(maxsize=256)
def _request_number(number: int) -> Avp:
    """CC-Request-Number (numbers of a session's first requests recur in every session)."""
    return shared(Avp.new("CC-Request-Number", number))


@functools.lru_cache(maxsize=1024)
def _destination(realm: str, host: str) -> tuple[Avp, Avp]:
    """Destination-Realm and -Host of a PCEF (few distinct ones), for its RARs."""
    return shared(Avp.new("Destination-Realm", realm)), shared(Avp.new("Destination-Host", host))


@functools.lru_cache(maxsize=64)
def _features(feature_list: int) -> Avp:
    """Supported-Features we answer with (TS 29.212 §5.4.1)."""
    avp = Avp.new(
        "Supported-Features",
        [("Vendor-Id", VENDOR_3GPP), ("Feature-List-ID", 1), ("Feature-List", feature_list)],
    )
    return shared(avp)


@functools.lru_cache(maxsize=4096)
def _bearer_avps(triggers: frozenset[int], qci: int, arp: Arp, ambr: Ambr) -> tuple[Avp, ...]:
    """Event-Trigger subscriptions, Default-EPS-Bearer-QoS and APN-AMBR."""
    avps = [Avp.new("Event-Trigger", t) for t in sorted(triggers)]
    avps += [default_bearer_qos(qci, arp), apn_ambr(ambr)]
    return tuple(shared(a) for a in avps)


@functools.lru_cache(maxsize=4096)
def _rule_avps(
    rules: frozenset[str], bases: frozenset[str], online: bool, offline: bool
) -> tuple[Avp, ...]:
    """Charging-Rule-Install of the predefined rules and rule bases, Online, Offline."""
    install = rule_install((), rules, bases)
    avps = [] if install is None else [install]
    avps += [
        Avp.new("Online", ENABLE if online else DISABLE),
        Avp.new("Offline", ENABLE if offline else DISABLE),
    ]
    return tuple(shared(a) for a in avps)


class AfNotifier(Protocol):
    """What Gx tells the Rx side (implemented by policy.rx.RxApp)."""

    def rules_failed(self, gx: GxState, names: frozenset[str]) -> None: ...

    def rules_active(self, gx: GxState, names: frozenset[str]) -> None: ...

    def charging_correlation(
        self, gx: GxState, ids: list[ChargingId], address: object | None
    ) -> None: ...

    def ip_can_changed(self, gx: GxState) -> None: ...

    def ip_can_ended(self, gx: GxState, bound: list[RxState]) -> None: ...


@dataclass(frozen=True, slots=True)
class PushResult:
    """Outcome of a Gx RAR: ``code`` is the RAA's (Experimental-)Result-Code, None when no RAA
    came (timeout, no connection to the PCEF); ``failed`` names rules the PCEF reported failed."""

    code: int | None
    failed: frozenset[str] = field(default_factory=frozenset)

    @property
    def ok(self) -> bool:
        return self.code is not None and 2000 <= self.code < 3000 and not self.failed


class GxApp:
    def __init__(
        self,
        node: Node,
        store: SessionStore,
        catalog: PolicyCatalog,
        charging: ChargingStateSource,
        scheduler: Scheduler,
        clock: Clock,
        rar_timeout: float,
    ) -> None:
        self.node = node
        self.store = store
        self.catalog = catalog
        self.charging = charging
        self.scheduler = scheduler
        self.clock = clock
        self.rar_timeout = rar_timeout
        self.af: AfNotifier | None = None
        # Highest Origin-State-Id seen per PCEF Origin-Host: a higher one means it restarted.
        self._pcef_epoch: dict[str, int] = {}

    def register(self) -> None:
        self.node.add_route(
            APP_GX,
            CMD_CREDIT_CONTROL,
            self.on_ccr,
            required=("Session-Id", "Origin-Host", "Origin-Realm", "CC-Request-Type"),
        )

    def resume(self) -> None:
        """After a restart: decide again for every loaded session (a time-of-day boundary may
        have passed while the PCRF was down), which also re-arms their timers."""
        for state in self.store.all_gx():
            self._note_epoch(state.pcef_host, state.origin_state_id)
            self.scheduler.spawn(self.reevaluate(state, "restart"))

    # --- CCR ---------------------------------------------------------------------------------

    async def on_ccr(self, request: Message, peer: Peer) -> Message:
        kind = request.get("CC-Request-Type")
        if kind == CcRequestType.INITIAL_REQUEST:
            answer = await self._initial(request)
        elif kind == CcRequestType.UPDATE_REQUEST:
            answer = await self._update(request)
        elif kind == CcRequestType.TERMINATION_REQUEST:
            answer = await self._terminate(request)
        else:
            raise AnswerError(ResultCode.INVALID_AVP_VALUE, request.first("CC-Request-Type"))
        answer.avps += (_GX_APPLICATION, _REQUEST_TYPE[kind])
        answer.avps.append(_request_number(request.get("CC-Request-Number", 0)))
        return answer

    async def _initial(self, request: Message) -> Message:
        session_id = request.get("Session-Id")
        state = self.store.gx(session_id)
        if state is not None and state.decision is not None:
            # A retransmitted CCR-I: answer from the stored outcome, never establish twice.
            return self._cca_initial(request, state, state.decision)
        origin_state = request.get("Origin-State-Id")
        await self._pcef_restarted(request.get("Origin-Host"), origin_state)
        ids = subscription_ids(request)
        imsi = ids.get(SubscriptionIdType.END_USER_IMSI)
        msisdn = ids.get(SubscriptionIdType.END_USER_E164)
        subscriber = await self.catalog.subscriber(imsi, msisdn)
        if subscriber is None:
            log.info(
                "event=gx_user_unknown session_id=%s imsi=%s msisdn=%s", session_id, imsi, msisdn
            )
            return request.answer(ResultCode.USER_UNKNOWN)
        apn = request.get("Called-Station-Id") or ""
        policy = self.catalog.apn_policy(subscriber.profile, apn)
        if policy is None:
            log.info("event=gx_no_apn_policy session_id=%s apn=%s", session_id, apn)
            return request.answer(None, experimental_result(ResultCode.ERROR_INITIAL_PARAMETERS))
        ipv4, ipv6 = ue_addresses(request)
        now = self.clock()
        ref = SubscriberRef(subscriber.imsi or imsi, subscriber.msisdn or msisdn)
        decision = decide(
            policy,
            await self.catalog.used(policy, subscriber.id, now),
            await self.charging.charging_state(ref),
            now,
        )
        triggers = {EventTrigger.RAT_CHANGE, EventTrigger.IP_CAN_CHANGE}
        if decision.monitoring or policy.allowances:
            triggers.add(EventTrigger.USAGE_REPORT)
        if policy.time_variants:
            # Besides the PCRF's own timer, the PCEF re-asks at each boundary (TS 29.212
            # Revalidation-Time), so a push lost while the PCEF was unreachable is recovered.
            triggers.add(EventTrigger.REVALIDATION_TIMEOUT)
        state = GxState(
            session_id=session_id,
            subscriber_id=subscriber.id,
            profile=subscriber.profile,
            imsi=ref.imsi,
            msisdn=ref.msisdn,
            apn=apn,
            ue_ipv4=ipv4,
            ue_ipv6_prefix=ipv6,
            pcef_host=request.get("Origin-Host"),
            pcef_realm=request.get("Origin-Realm"),
            served_by=self.store.origin_host,
            decision=decision,
            event_triggers=frozenset(triggers),
            rat_type=request.get("RAT-Type"),
            ip_can_type=request.get("IP-CAN-Type"),
            origin_state_id=origin_state,
        )
        await self.store.save_gx(state)
        self._schedule(state, decision)
        log.info(
            "event=gx_session_up session_id=%s imsi=%s apn=%s ipv4=%s reasons=%s",
            session_id, ref.imsi, apn, ipv4, ",".join(decision.reasons) or "-",
        )  # fmt: skip
        return self._cca_initial(request, state, decision)

    def _cca_initial(self, request: Message, state: GxState, decision: Decision) -> Message:
        answer = request.answer(ResultCode.SUCCESS)
        features = request.first("Supported-Features")
        if features is not None and features.get("Feature-List-ID") == 1:
            answer.avps.append(_features(features.get("Feature-List", 0) & GX_FEATURES))
        if request.first("Network-Request-Support") is not None:
            nw = request.get("Network-Request-Support") == NETWORK_REQUEST_SUPPORTED
            answer.avps.append(_BEARER_CONTROL[UE_NW if nw else UE_ONLY])
        d = decision
        answer.avps += _bearer_avps(state.event_triggers, d.qci, d.arp, d.ambr)
        if d.next_change is not None:
            answer.add(("Revalidation-Time", d.next_change))
        answer.avps += _rule_avps(d.predefined_rules, d.rule_bases, d.online, d.offline)
        if d.monitoring:
            answer.add(*monitoring_avps(d.monitoring))
        return answer

    async def _update(self, request: Message) -> Message:
        state = self._session(request)
        triggers = {a.value for a in request["Event-Trigger"]}
        used = usage_reports(request)
        now = self.clock()
        if used:
            await self.catalog.add_usage(state.subscriber_id, used, now)
        answer = request.answer(ResultCode.SUCCESS)
        if used:
            answer.add(*await self._rearm(state, used, now))
        if state.stale_rules:
            # Removals a lost RAR never delivered ride on this answer (a CCA may carry
            # Charging-Rule-Remove like a RAR).
            answer.add(rule_remove(state.stale_rules))
            state.stale_rules = frozenset()
            await self.store.save_gx(state)
        reports = rule_reports(request)
        failed = frozenset(n for r in reports if r.status != PCC_RULE_ACTIVE for n in r.names)
        active = frozenset(n for r in reports if r.status == PCC_RULE_ACTIVE for n in r.names)
        if failed and self.af is not None:
            self.af.rules_failed(state, failed)
        if active and EventTrigger.SUCCESSFUL_RESOURCE_ALLOCATION in triggers and self.af:
            self.af.rules_active(state, active)
        ids = charging_ids(request)
        if ids and EventTrigger.CHARGING_CORRELATION_EXCHANGE in triggers and self.af:
            self.af.charging_correlation(state, ids, request.get("Access-Network-Charging-Address"))
        if triggers & {EventTrigger.RAT_CHANGE, EventTrigger.IP_CAN_CHANGE}:
            state.rat_type = request.get("RAT-Type", state.rat_type)
            state.ip_can_type = request.get("IP-CAN-Type", state.ip_can_type)
            await self.store.save_gx(state)
            if self.af is not None:
                self.af.ip_can_changed(state)
        if used:
            for other in self.store.gx_of_subscriber(state.subscriber_id):
                self.scheduler.spawn(self.reevaluate(other, "usage report"))
        if EventTrigger.REVALIDATION_TIMEOUT in triggers:
            policy = self.catalog.apn_policy(state.profile, state.apn)
            upcoming = next_boundary(policy.time_variants, now) if policy else None
            if upcoming is not None:
                answer.add(("Revalidation-Time", upcoming))
            self.scheduler.spawn(self.reevaluate(state, "revalidation"))
        return answer

    async def _rearm(self, state: GxState, used: dict[str, int], now: datetime) -> list[Avp]:
        """New thresholds (what is left of the allowance) for the reported keys, or monitoring
        off for the keys whose allowance is spent (TS 29.212 usage monitoring control)."""
        policy = self.catalog.apn_policy(state.profile, state.apn)
        if policy is None:
            return []
        totals = await self.catalog.used(policy, state.subscriber_id, now)
        left = {
            g.monitoring_key: g for g in decide(policy, totals, ChargingState(), now).monitoring
        }
        keys = {a.monitoring_key for a in policy.allowances} & used.keys()
        grants = [left[k] for k in sorted(keys) if k in left]
        return monitoring_avps(grants) + monitoring_off(k for k in keys if k not in left)

    async def _terminate(self, request: Message) -> Message:
        state = self._session(request)
        used = usage_reports(request)
        if used:
            await self.catalog.add_usage(state.subscriber_id, used, self.clock())
        await self._release(state)
        return request.answer(ResultCode.SUCCESS)

    async def _release(self, state: GxState) -> None:
        self.scheduler.cancel(state.session_id)
        bound = await self.store.delete_gx(state)
        log.info("event=gx_session_down session_id=%s rx_bound=%d", state.session_id, len(bound))
        if bound and self.af is not None:
            self.af.ip_can_ended(state, bound)

    async def _pcef_restarted(self, host: str, origin_state: int | None) -> None:
        """A PCEF that restarted lost its IP-CAN sessions (RFC 6733 §8.16): release the ones
        it opened before, so their AF sessions end and no AAR binds to them any more."""
        known = self._pcef_epoch.get(host.lower())
        self._note_epoch(host, origin_state)
        if origin_state is None or known is None or origin_state <= known:
            return
        for state in self.store.all_gx():
            older = state.origin_state_id is not None and state.origin_state_id < origin_state
            if older and state.pcef_host.lower() == host.lower():
                log.info("event=gx_pcef_restarted pcef=%s session_id=%s", host, state.session_id)
                await self._release(state)

    def _note_epoch(self, host: str, origin_state: int | None) -> None:
        if origin_state is not None:
            key = host.lower()
            self._pcef_epoch[key] = max(origin_state, self._pcef_epoch.get(key, origin_state))

    def _session(self, request: Message) -> GxState:
        state = self.store.gx(request.get("Session-Id"))
        if state is None:
            raise AnswerError(ResultCode.UNKNOWN_SESSION_ID, error_message="no such Gx session")
        return state

    # --- PCRF-initiated changes --------------------------------------------------------------

    async def push(
        self,
        state: GxState,
        *,
        install: Iterable[PccRule] = (),
        remove: Iterable[str] = (),
        extra: Iterable[Avp] = (),
    ) -> PushResult:
        """Send a RAR with the given rule changes and wait for the RAA."""
        request = Message.request(
            CMD_RE_AUTH,
            APP_GX,
            [
                Avp.new("Session-Id", state.session_id),
                _GX_APPLICATION,
                *_destination(state.pcef_realm, state.pcef_host),
                _AUTHORIZE_ONLY,
            ],
        )
        install = list(install)
        installing = {r.name for r in install}
        stale = state.stale_rules - installing
        install_avp = rule_install(install)
        if install_avp is not None:
            request.add(install_avp)
        remove_avp = rule_remove(set(remove) | stale)
        if remove_avp is not None:
            request.add(remove_avp)
        request.add(*extra)
        try:
            answer = await self.node.request(request, timeout=self.rar_timeout)
        except (DiameterError, TimeoutError, ConnectionError) as exc:
            log.warning("event=gx_rar_unanswered session_id=%s error=%r", state.session_id, exc)
            return PushResult(None)
        failed = frozenset(
            name
            for report in rule_reports(answer)
            if report.status != PCC_RULE_ACTIVE
            for name in report.names
        )
        code = result_of(answer)
        if stale and code == ResultCode.SUCCESS:
            state.stale_rules = state.stale_rules - stale
            await self.store.save_gx(state)
        if code == ResultCode.UNKNOWN_SESSION_ID:
            # 5002 (RFC 6733 §7.1.5): the PCEF no longer has the IP-CAN session (e.g. it
            # restarted). Treat it as terminated: forget it, end the AF sessions bound to it.
            await self._release(state)
        if code != ResultCode.SUCCESS or failed:
            log.warning(
                "event=gx_raa_refused session_id=%s result_code=%s failed=%s",
                state.session_id, code, ",".join(sorted(failed)) or "-",
            )  # fmt: skip
        return PushResult(code, failed)

    async def reevaluate(self, state: GxState, reason: str) -> None:
        """Decide again and push the difference to the PCEF (nothing when nothing changed)."""
        async with state.lock:
            if self.store.gx(state.session_id) is not state:
                return  # terminated meanwhile
            policy = self.catalog.apn_policy(state.profile, state.apn)
            if policy is None:
                return
            now = self.clock()
            new = decide(
                policy,
                await self.catalog.used(policy, state.subscriber_id, now),
                await self.charging.charging_state(SubscriberRef(state.imsi, state.msisdn)),
                now,
            )
            self._schedule(state, new)
            old = state.decision
            install, remove, bases_in, bases_out = rule_changes(old, new)
            extra: list[Avp] = []
            if bearer_changed(old, new):
                extra += [default_bearer_qos(new.qci, new.arp), apn_ambr(new.ambr)]
            changed = bool(extra or install or remove or bases_in or bases_out)
            if changed:
                if new.next_change is not None:
                    extra.append(Avp.new("Revalidation-Time", new.next_change))
                inst = rule_install((), install, bases_in)
                rem = rule_remove(remove, bases_out)
                extra += [a for a in (inst, rem) if a is not None]
                result = await self.push(state, extra=extra)
                if not result.ok:
                    return  # keep the old state: the next trigger or boundary retries
                log.info(
                    "event=gx_policy_pushed session_id=%s reason=%s state=%s",
                    state.session_id, reason, ",".join(new.reasons) or "normal",
                )  # fmt: skip
            if changed or new.monitoring != (old.monitoring if old else ()):
                state.decision = new
                await self.store.save_gx(state)

    def _schedule(self, state: GxState, decision: Decision) -> None:
        self.scheduler.at(
            state.session_id,
            decision.next_change,
            lambda: self.reevaluate(state, "time of day"),
        )

    async def subscriber_changed(self, imsi: str | None, msisdn: str | None) -> None:
        """Charging state (or provisioning) changed: re-decide the subscriber's sessions."""
        subscriber = await self.catalog.subscriber(imsi, msisdn)
        if subscriber is None:
            return
        for state in self.store.gx_of_subscriber(subscriber.id):
            state.profile = subscriber.profile
            await self.reevaluate(state, "subscriber state")
