"""Who we are (LocalIdentity) and whom we talk to (PeerPolicy) on a Diameter listener."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from diam.constants import APP_CREDIT_CONTROL, APP_GX, APP_RX, VENDOR_3GPP

# Application names accepted in settings, each with how it is advertised in CEA. Ro/Gy is the
# IETF Credit-Control application (RFC 4006), used by 3GPP with vendor 10415: advertise it both as
# a plain Auth-Application-Id and inside Vendor-Specific-Application-Id, because Kamailio's cdp only
# routes to a peer whose CEA carries VSAI{10415, app} (see notes/ims-peers.md).
APPLICATIONS: dict[str, tuple[tuple[int, int], ...]] = {
    "gx": ((APP_GX, VENDOR_3GPP),),
    "rx": ((APP_RX, VENDOR_3GPP),),
    "ro": ((APP_CREDIT_CONTROL, VENDOR_3GPP), (APP_CREDIT_CONTROL, 0)),
    "gy": ((APP_CREDIT_CONTROL, VENDOR_3GPP), (APP_CREDIT_CONTROL, 0)),
}


def applications_from_names(names: Iterable[str]) -> frozenset[tuple[int, int]]:
    """Settings names ("gx", "rx", "ro"/"gy") -> advertised (application id, vendor id) pairs."""
    apps: set[tuple[int, int]] = set()
    for name in names:
        key = name.strip().lower()
        if not key:
            continue
        if key not in APPLICATIONS:
            raise ValueError(
                f"unknown Diameter application {name!r}; known: {sorted(APPLICATIONS)}"
            )
        apps.update(APPLICATIONS[key])
    return frozenset(apps)


def firmware_revision(version: str) -> int:
    """Firmware-Revision (Unsigned32) from a dotted version: "1.2.3" -> 10203."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    return parts[0] * 10000 + parts[1] * 100 + parts[2]


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """Our side of a capabilities exchange (RFC 6733 §5.3.1).

    An empty ``host_ip_addresses`` advertises the local address of each connection's socket,
    which is right for a wildcard listener. ``applications`` holds (application id, vendor id)
    pairs: vendor 0 is advertised as Auth-Application-Id, any other vendor as
    Vendor-Specific-Application-Id{Vendor-Id, Auth-Application-Id} plus Supported-Vendor-Id.
    """

    origin_host: str
    origin_realm: str
    host_ip_addresses: tuple[str, ...] = ()
    vendor_id: int = 0
    product_name: str = "OpenPCC"
    firmware_revision: int = 0
    applications: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    # The application ids we serve, whatever the vendor they are advertised with (checked for
    # every request, so computed once).
    application_ids: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.origin_host or not self.origin_realm:
            raise ValueError("Origin-Host and Origin-Realm must not be empty")
        for address in self.host_ip_addresses:
            ipaddress.ip_address(address)
        object.__setattr__(self, "application_ids", frozenset(app for app, _ in self.applications))

    @property
    def supported_vendor_ids(self) -> tuple[int, ...]:
        return tuple(sorted({vendor for _, vendor in self.applications if vendor}))


@dataclass(frozen=True, slots=True)
class PeerRule:
    """One allowlist entry; ``None`` matches anything. Names compare case-insensitively."""

    origin_host: str | None
    origin_realm: str | None

    @classmethod
    def parse(cls, text: str) -> PeerRule:
        """``host``, ``host@realm`` or ``*@realm`` (any host of that realm)."""
        text = text.strip().lower()
        host, sep, realm = text.partition("@")
        if not text or (sep and not realm) or not host:
            raise ValueError(f"bad peer rule {text!r}: use host, host@realm or *@realm")
        return cls(None if host == "*" else host, realm or None)

    def matches(self, origin_host: str, origin_realm: str) -> bool:
        return (self.origin_host is None or self.origin_host == origin_host.lower()) and (
            self.origin_realm is None or self.origin_realm == origin_realm.lower()
        )


@dataclass(frozen=True, slots=True)
class PeerDecision:
    allowed: bool
    reason: str
    warn: bool = False


@dataclass(frozen=True, slots=True)
class PeerPolicy:
    """Which peers get past CER (DESIGN invariant 6).

    With no rules (the embedded default) only loopback peers are accepted, each with a warning
    log, so a fresh ``make run`` works locally yet is closed to the network.
    """

    rules: tuple[PeerRule, ...] = ()
    allow_loopback_when_empty: bool = True

    @classmethod
    def parse(cls, text: str, *, allow_loopback_when_empty: bool = True) -> PeerPolicy:
        """Comma-separated rules, e.g. ``pcscf.ims.example.net,*@epc.example.net``."""
        rules = tuple(PeerRule.parse(p) for p in text.split(",") if p.strip())
        return cls(rules, allow_loopback_when_empty)

    def check(self, origin_host: str, origin_realm: str, remote_ip: str | None) -> PeerDecision:
        if self.rules:
            if any(rule.matches(origin_host, origin_realm) for rule in self.rules):
                return PeerDecision(True, "allowlisted")
            return PeerDecision(False, "not in the peer allowlist")
        if self.allow_loopback_when_empty and _is_loopback(remote_ip):
            return PeerDecision(True, "empty allowlist: loopback peer accepted", warn=True)
        return PeerDecision(False, "empty allowlist accepts loopback peers only")


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
