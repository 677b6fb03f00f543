"""A readable ladder of the SIP and Diameter messages of a call (for ``openpcc demo``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from diam.message import Message as DiameterMessage
from ims.pcef import IpCanSession, PcefSimulator
from ims.service import ImsService
from ims.sip.message import Message as SipMessage
from ims.sip.message import Request
from ims.sip.transaction import Target

_COMMANDS = {
    (16777236, 265): "AA",
    (16777236, 275): "ST",
    (16777236, 274): "AS",
    (16777236, 258): "RA",
    (4, 272): "CC",
    (4, 258): "RA",
    (4, 274): "AS",
    (16777238, 272): "CC",
    (16777238, 258): "RA",
}
_APPS = {16777236: "Rx", 4: "Ro", 16777238: "Gx"}
_CC_TYPES = {1: "-I", 2: "-U", 3: "-T", 4: "-E"}


def diameter_label(message: DiameterMessage) -> str:
    """``Rx AAR``, ``Ro CCR-I``, ``Ro CCA-I 2001`` ..."""
    app = _APPS.get(message.application_id, str(message.application_id))
    base = _COMMANDS.get((message.application_id, message.command_code), str(message.command_code))
    kind = _CC_TYPES.get(message.get("CC-Request-Type") or 0, "") if base == "CC" else ""
    if message.is_request:
        return f"{app} {base}R{kind}"
    code = message.get("Result-Code")
    if code is None:
        er = message.first("Experimental-Result")
        code = er.get("Experimental-Result-Code") if er is not None else None
    return f"{app} {base}A{kind} {code}"


@dataclass
class Ladder:
    """Collects events from the IMS core, its Diameter links and the PCEF simulator."""

    names: dict[str, str]  # UE IP → name
    start: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)

    def _add(self, left: str, arrow: str, right: str, text: str) -> None:
        at = time.monotonic() - self.start
        self.lines.append(f"{at:8.3f}s  {left:>6} {arrow} {right:<6}  {text}")

    def attach(self, service: ImsService, pcef: PcefSimulator) -> None:
        service.core.endpoint.observers.append(self._sip)
        for link in service.links:
            link.observers.append(lambda kind, msg: self._diameter("CSCF", kind, msg))
        pcef.link.observers.append(lambda kind, msg: self._diameter("PGW", kind, msg))
        pcef.observers.append(self._pcef)

    def _sip(self, direction: str, message: SipMessage, peer: Target) -> None:
        ue = self.names.get(peer.host, peer.host)
        if isinstance(message, Request):
            text = f"{message.method} {message.uri}"
        else:
            text = f"{message.status} {message.reason} ({message.cseq[1]})"  # type: ignore[attr-defined]
        if direction == "in":
            self._add(ue, "──SIP──▶", "CSCF", text)
        else:
            self._add("CSCF", "──SIP──▶", ue, text)

    def _diameter(self, client: str, kind: str, message: DiameterMessage) -> None:
        server = "OCS" if message.application_id == 4 else "PCRF"
        if kind == "request":
            self._add(client, "══DIA══▶", server, diameter_label(message))
        else:
            self._add(server, "══DIA══▶", client, diameter_label(message))

    def _pcef(self, session: IpCanSession, text: str) -> None:
        self._add("PGW", "   ··   ", self.names.get(session.ue_ip, session.ue_ip), text)

    def render(self) -> str:
        return "\n".join(self.lines)
