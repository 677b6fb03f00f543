"""Base protocol content (RFC 6733 §5): CER/CEA building and evaluation, DWR, DPR."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from diam.constants import (
    APP_BASE,
    APP_RELAY,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER,
    ResultCode,
)
from diam.identity import LocalIdentity, PeerPolicy
from diam.message import Avp, Message

# Disconnect-Cause (RFC 6733 §5.4.3)
DISCONNECT_REBOOTING = 0
DISCONNECT_BUSY = 1
DISCONNECT_DO_NOT_WANT_TO_TALK_TO_YOU = 2


def capability_avps(
    identity: LocalIdentity, origin_state_id: int, local_ips: Iterable[str]
) -> list[Avp]:
    """Origin-*, Host-IP-Address, Vendor-Id, Product-Name, Origin-State-Id, Supported-Vendor-Id,
    Auth-Application-Id / Vendor-Specific-Application-Id for each served application,
    Firmware-Revision. RFC 6733 §4.5: Product-Name and Firmware-Revision MUST NOT set the M bit."""
    avps = [
        Avp.new("Origin-Host", identity.origin_host),
        Avp.new("Origin-Realm", identity.origin_realm),
    ]
    avps += [Avp.new("Host-IP-Address", ip) for ip in (identity.host_ip_addresses or local_ips)]
    avps += [
        Avp.new("Vendor-Id", identity.vendor_id),
        Avp.new("Product-Name", identity.product_name, mandatory=False),
        Avp.new("Origin-State-Id", origin_state_id),
    ]
    avps += [Avp.new("Supported-Vendor-Id", v) for v in identity.supported_vendor_ids]
    for app, vendor in sorted(identity.applications):
        if vendor:
            avps.append(
                Avp.new(
                    "Vendor-Specific-Application-Id",
                    [("Vendor-Id", vendor), ("Auth-Application-Id", app)],
                )
            )
        else:
            avps.append(Avp.new("Auth-Application-Id", app))
    avps.append(Avp.new("Firmware-Revision", identity.firmware_revision, mandatory=False))
    return avps


def build_cer(identity: LocalIdentity, origin_state_id: int, local_ips: Iterable[str]) -> Message:
    return Message.request(
        CMD_CAPABILITIES_EXCHANGE,
        APP_BASE,
        capability_avps(identity, origin_state_id, local_ips),
        proxiable=False,
    )


def build_cea(
    cer: Message,
    result_code: int,
    identity: LocalIdentity,
    origin_state_id: int,
    local_ips: Iterable[str],
    error_message: str | None = None,
) -> Message:
    """CEA with our capabilities; RFC 6733 §5.3.2 requires them in error CEAs as well."""
    answer = cer.answer(result_code)
    answer.add(*capability_avps(identity, origin_state_id, local_ips))
    if error_message:
        answer.add(Avp.new("Error-Message", error_message))
    return answer


def advertised_applications(msg: Message) -> frozenset[int]:
    """Every application id a CER/CEA advertises: Auth-/Acct-Application-Id at top level and
    inside each Vendor-Specific-Application-Id."""
    apps: set[int] = set()
    for avp in msg.avps:
        name = avp.name
        if name in ("Auth-Application-Id", "Acct-Application-Id"):
            apps.add(avp.value)
        elif name == "Vendor-Specific-Application-Id":
            for child in avp.value:
                if child.name in ("Auth-Application-Id", "Acct-Application-Id"):
                    apps.add(child.value)
    return frozenset(apps)


def common_applications(peer_apps: frozenset[int], served: frozenset[int]) -> frozenset[int]:
    """Applications both sides support; a relay peer (0xffffffff) supports all of ours."""
    if APP_RELAY in peer_apps:
        return served
    return peer_apps & served


@dataclass(frozen=True, slots=True)
class CerVerdict:
    """What to answer to a CER: 2001 with the common applications, or the rejection and why."""

    result_code: int
    reason: str
    origin_host: str | None
    origin_realm: str | None
    applications: frozenset[int] = frozenset()
    warn: bool = False


def evaluate_cer(
    cer: Message, identity: LocalIdentity, policy: PeerPolicy, remote_ip: str | None
) -> CerVerdict:
    """RFC 6733 §5.3: unknown peer -> 3010, no common application -> 5010 (one is enough)."""
    host, realm = cer.get("Origin-Host"), cer.get("Origin-Realm")
    if not host or not realm:
        return CerVerdict(ResultCode.MISSING_AVP, "Origin-Host/Origin-Realm missing", host, realm)
    decision = policy.check(host, realm, remote_ip)
    if not decision.allowed:
        return CerVerdict(ResultCode.UNKNOWN_PEER, decision.reason, host, realm)
    peer_apps = advertised_applications(cer)
    common = common_applications(peer_apps, identity.application_ids)
    if not common:
        reason = f"no common application (peer {sorted(peer_apps)})"
        return CerVerdict(ResultCode.NO_COMMON_APPLICATION, reason, host, realm)
    return CerVerdict(ResultCode.SUCCESS, decision.reason, host, realm, common, decision.warn)


def build_dwr(origin_state_id: int) -> Message:
    return Message.request(
        CMD_DEVICE_WATCHDOG,
        APP_BASE,
        [("Origin-State-Id", origin_state_id)],
        proxiable=False,
    )


def build_dwa(dwr: Message, origin_state_id: int) -> Message:
    return dwr.answer(ResultCode.SUCCESS, ("Origin-State-Id", origin_state_id))


def build_dpr(cause: int) -> Message:
    return Message.request(
        CMD_DISCONNECT_PEER, APP_BASE, [("Disconnect-Cause", cause)], proxiable=False
    )
