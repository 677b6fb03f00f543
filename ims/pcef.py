"""PCEF (PGW) simulator on Gx (TS 29.212): one IP-CAN session per UE, dedicated bearers from the
PCRF's rules, simulated rule failures, usage reports, detach.

attach → CCR-I (IMSI, MSISDN, APN, UE IP, IP-CAN-Type 3GPP-EPS, RAT EUTRAN); RAR → install or
remove rules, one dedicated bearer per installed dynamic rule whose QCI is a GBR QCI (TS 23.203
Table 6.1.7), RAA 2001 — or, when a failure is simulated, RAA with Experimental-Result
DIAMETER_PCC_RULE_EVENT (5142) and a Charging-Rule-Report per refused rule (TS 29.212 §4.5.12);
RAR with Session-Release-Cause → RAA then CCR-T; lose_bearer → CCR-U reporting the rule
inactive; report_usage → CCR-U with Usage-Monitoring-Information; detach → CCR-T.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from diam.constants import APP_GX, CMD_CREDIT_CONTROL, CMD_RE_AUTH, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.message import Avp, Message
from diam.node import Node
from diam.peer import Peer
from ims.links import PeerLink
from ims.pcscf import result_code

log = logging.getLogger("openpcc.ims")

GBR_QCIS = frozenset({1, 2, 3, 4, 65, 66, 67, 71, 72, 73, 74, 75, 76})
INITIAL, UPDATE, TERMINATION = 1, 2, 3
PCC_RULE_EVENT = 5142  # TS 29.212 §5.5.3
INACTIVE = 1  # PCC-Rule-Status
RESOURCE_ALLOCATION_FAILURE = 10  # Rule-Failure-Code, TS 29.212 §5.3.38
USAGE_REPORT = 33  # Event-Trigger, TS 29.212 §5.3.7
_DIRECTIONS = {1: "downlink", 2: "uplink", 3: "bidirectional"}  # Flow-Direction §5.3.65


@dataclass(frozen=True, slots=True)
class Bearer:
    rule: str
    qci: int
    gbr_ul: int | None
    gbr_dl: int | None
    mbr_ul: int | None
    mbr_dl: int | None
    flows: tuple[tuple[str, str], ...]  # (direction, IPFilterRule)

    @property
    def is_gbr(self) -> bool:
        return self.qci in GBR_QCIS


@dataclass(slots=True, eq=False)
class IpCanSession:
    session_id: str
    imsi: str
    msisdn: str
    ue_ip: str
    apn: str
    default_qci: int | None = None
    number: int = 0
    rules: set[str] = field(default_factory=set)  # every active rule name
    bearers: dict[str, Bearer] = field(default_factory=dict)  # dedicated (GBR) bearers
    open: bool = True


class PcefSimulator:
    """A PGW's Gx side; ``observers`` are called with (session, text) for each Gx event (ladders,
    tests)."""

    def __init__(
        self,
        origin_host: str,
        realm: str,
        pcrf_host: str,
        pcrf_port: int,
        pcrf_realm: str,
        *,
        timeout: float = 3.0,
    ) -> None:
        identity = LocalIdentity(
            origin_host, realm, applications=frozenset({(APP_GX, VENDOR_3GPP)})
        )
        self.node = Node(identity, PeerPolicy())
        self.node.add_route(APP_GX, CMD_RE_AUTH, self.on_rar)
        self.link = PeerLink(self.node, pcrf_host, pcrf_port, pcrf_realm)
        self.timeout = timeout
        self.sessions: dict[str, IpCanSession] = {}
        self.fail_installs = 0  # refuse the next N RARs that install rules
        self.observers: list[Callable[[IpCanSession, str], None]] = []
        self._counter = 0
        self._changed = asyncio.Event()

    def _event(self, session: IpCanSession, text: str, *args: object) -> None:
        """Tell the observers (``text % args``, formatted only when someone listens)."""
        if self.observers:
            line = text % args if args else text
            for observe in self.observers:
                observe(session, line)
        self._changed.set()

    async def close(self) -> None:
        await self.node.close()

    def by_ip(self, ip: str) -> IpCanSession | None:
        return next((s for s in self.sessions.values() if s.ue_ip == ip and s.open), None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Until ``predicate()`` holds after some Gx event (tests and the demo)."""

        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(loop(), timeout)

    # --- Gx requests --------------------------------------------------------------------------
    async def _ccr(self, session: IpCanSession, kind: int, *avps: Any) -> Message:
        request = Message.request(
            CMD_CREDIT_CONTROL,
            APP_GX,
            [
                ("Session-Id", session.session_id),
                ("Auth-Application-Id", APP_GX),
                ("Destination-Realm", self.link.realm),
                ("CC-Request-Type", kind),
                ("CC-Request-Number", session.number),
                *avps,
            ],
        )
        session.number += 1
        return await self.link.request(request, self.timeout)

    async def attach(self, imsi: str, msisdn: str, ue_ip: str, apn: str = "ims") -> IpCanSession:
        """Gx CCR-I for a new IP-CAN session; raises RuntimeError when the PCRF refuses it."""
        self._counter += 1
        session = IpCanSession(
            f"{self.node.identity.origin_host};gx;{int(time.time())};{self._counter}",
            imsi,
            msisdn,
            ue_ip,
            apn,
        )
        address = ipaddress.ip_address(ue_ip)
        framed = (
            ("Framed-IP-Address", address.packed)
            if address.version == 4
            else ("Framed-IPv6-Prefix", bytes([0, 64]) + address.packed)
        )
        self.sessions[session.session_id] = session
        answer = await self._ccr(
            session,
            INITIAL,
            ("Subscription-Id", [("Subscription-Id-Type", 0), ("Subscription-Id-Data", msisdn)]),
            ("Subscription-Id", [("Subscription-Id-Type", 1), ("Subscription-Id-Data", imsi)]),
            (
                "Supported-Features",
                [("Vendor-Id", VENDOR_3GPP), ("Feature-List-ID", 1), ("Feature-List", 3)],
            ),
            ("Network-Request-Support", 1),
            framed,
            ("IP-CAN-Type", 5),
            ("RAT-Type", 1004),
            ("Called-Station-Id", apn),
        )
        code = result_code(answer)
        if code != 2001:
            del self.sessions[session.session_id]
            raise RuntimeError(f"Gx CCR-I refused with {code}")
        qos = answer.first("Default-EPS-Bearer-QoS")
        session.default_qci = qos.get("QoS-Class-Identifier") if qos is not None else None
        for install in answer["Charging-Rule-Install"]:
            self._install(session, install)
        self._event(session, "attached ue=%s apn=%s qci=%s", ue_ip, apn, session.default_qci)
        return session

    async def detach(self, session: IpCanSession) -> Message:
        session.open = False
        answer = await self._ccr(session, TERMINATION, ("Termination-Cause", 1))
        session.bearers.clear()
        session.rules.clear()
        self._event(session, "detached")
        return answer

    async def report_usage(
        self, session: IpCanSession, monitoring_key: str, octets: int
    ) -> Message:
        return await self._ccr(
            session,
            UPDATE,
            ("Event-Trigger", USAGE_REPORT),
            (
                "Usage-Monitoring-Information",
                [
                    ("Monitoring-Key", monitoring_key.encode()),
                    ("Used-Service-Unit", [("CC-Total-Octets", octets)]),
                ],
            ),
        )

    async def lose_bearer(self, session: IpCanSession, rule: str) -> Message:
        """The radio dropped a dedicated bearer: report its rule inactive (TS 29.212 §4.5.12)."""
        session.bearers.pop(rule, None)
        session.rules.discard(rule)
        self._event(session, "bearer lost rule=%s", rule)
        return await self._ccr(session, UPDATE, _report(rule, RESOURCE_ALLOCATION_FAILURE))

    # --- RAR ----------------------------------------------------------------------------------
    async def on_rar(self, request: Message, peer: Peer) -> Message:
        session = self.sessions.get(request.get("Session-Id"))
        if session is None or not session.open:
            return request.answer(5002)
        installs = request["Charging-Rule-Install"]
        if installs and self.fail_installs > 0:
            self.fail_installs -= 1
            names = [
                _name(d.get("Charging-Rule-Name"))
                for i in installs
                for d in i["Charging-Rule-Definition"]
            ]
            self._event(session, "rules refused %s", ",".join(names))
            answer = request.answer(
                None,
                (
                    "Experimental-Result",
                    [("Vendor-Id", VENDOR_3GPP), ("Experimental-Result-Code", PCC_RULE_EVENT)],
                ),
            )
            answer.add(*(_report(n, RESOURCE_ALLOCATION_FAILURE) for n in names))
            return answer
        for remove in request["Charging-Rule-Remove"]:
            for name in remove["Charging-Rule-Name"]:
                rule = _name(name.value)
                session.rules.discard(rule)
                if session.bearers.pop(rule, None) is not None:
                    self._event(session, "bearer removed rule=%s", rule)
                else:
                    self._event(session, "rule removed rule=%s", rule)
        for install in installs:
            self._install(session, install)
        if request.first("Session-Release-Cause") is not None:
            asyncio.get_running_loop().call_soon(
                lambda: asyncio.ensure_future(self.detach(session))
            )
        return request.answer(2001)

    def _install(self, session: IpCanSession, install: Avp) -> None:
        for name in install["Charging-Rule-Name"]:
            session.rules.add(_name(name.value))
        for definition in install["Charging-Rule-Definition"]:
            rule = _name(definition.get("Charging-Rule-Name"))
            session.rules.add(rule)
            qos = definition.first("QoS-Information")
            if qos is None:
                continue
            bearer = Bearer(
                rule,
                qos.get("QoS-Class-Identifier"),
                qos.get("Guaranteed-Bitrate-UL"),
                qos.get("Guaranteed-Bitrate-DL"),
                qos.get("Max-Requested-Bandwidth-UL"),
                qos.get("Max-Requested-Bandwidth-DL"),
                tuple(
                    (_DIRECTIONS.get(f.get("Flow-Direction"), "both"), f.get("Flow-Description"))
                    for f in definition["Flow-Information"]
                ),
            )
            if bearer.is_gbr:
                session.bearers[rule] = bearer
                self._event(
                    session,
                    "bearer created rule=%s qci=%s gbr=%s/%s",
                    rule,
                    bearer.qci,
                    bearer.gbr_ul,
                    bearer.gbr_dl,
                )
            else:  # non-GBR: carried on the default bearer (or a non-GBR dedicated one)
                self._event(session, "rule installed rule=%s qci=%s", rule, bearer.qci)


def _name(value: bytes | str | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _report(rule: str, failure: int) -> tuple[str, Any]:
    return (
        "Charging-Rule-Report",
        [
            ("Charging-Rule-Name", rule.encode()),
            ("PCC-Rule-Status", INACTIVE),
            ("Rule-Failure-Code", failure),
        ],
    )
