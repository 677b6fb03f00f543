"""Location service (RFC 3261 §10): address-of-record → contact bindings with expiry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ims.sip.transaction import Target
from ims.sip.uri import SipUri


@dataclass(slots=True)
class Binding:
    aor: str
    contact: SipUri
    expires_at: float
    call_id: str
    cseq: int
    source: Target
    registered_at: float
    q: float = 1.0

    def remaining(self, now: float) -> int:
        return max(0, round(self.expires_at - now))


def normalize_aor(uri: SipUri, domain: str, local_hosts: frozenset[str]) -> str:
    """The key of a user: our own host names and addresses count as ``domain``; tel: URIs and
    sip: URIs with a telephone-number user part (``user=phone``) map to the same key."""
    if uri.scheme == "tel":
        return f"sip:{uri.user}@{domain}"
    host = uri.host.lower()
    if host in local_hosts:
        host = domain
    return f"sip:{uri.user}@{host}" if uri.user else f"sip:{host}"


class LocationService:
    """In-memory bindings. ``clock`` is monotonic seconds (tests may replace it)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._bindings: dict[str, dict[str, Binding]] = {}

    def bindings(self, aor: str) -> list[Binding]:
        """Live bindings of ``aor``, most recently registered first (expired ones are dropped)."""
        now = self.clock()
        current = self._bindings.get(aor, {})
        for key in [k for k, b in current.items() if b.expires_at <= now]:
            del current[key]
        if not current:
            self._bindings.pop(aor, None)
        return sorted(current.values(), key=lambda b: (-b.q, -b.registered_at))

    def update(
        self,
        aor: str,
        contact: SipUri,
        expires: int,
        call_id: str,
        cseq: int,
        source: Target,
        q: float = 1.0,
    ) -> None:
        """Add, refresh (same contact) or remove (expires 0) one binding."""
        key = _contact_key(contact)
        table = self._bindings.setdefault(aor, {})
        if expires == 0:
            table.pop(key, None)
        else:
            now = self.clock()
            table[key] = Binding(aor, contact, now + expires, call_id, cseq, source, now, q)
        if not table:
            self._bindings.pop(aor, None)

    def find(self, aor: str, contact: SipUri) -> Binding | None:
        return next(
            (b for b in self.bindings(aor) if _contact_key(b.contact) == _contact_key(contact)),
            None,
        )

    def remove_all(self, aor: str) -> None:
        self._bindings.pop(aor, None)

    def aors(self) -> list[str]:
        return [aor for aor in list(self._bindings) if self.bindings(aor)]


def _contact_key(uri: SipUri) -> str:
    """RFC 3261 §10.3 step 6: contacts compare by URI equality (here: scheme, user, host, port,
    transport)."""
    transport = (uri.params.get("transport") or "udp").lower()
    return f"{uri.scheme}:{uri.user}@{uri.host.lower()}:{uri.port or 5060};{transport}"
