"""REGISTER processing (RFC 3261 §10.3) on top of the location service."""

from __future__ import annotations

from collections.abc import Callable

from ims.location import LocationService, normalize_aor
from ims.sip.errors import SipError
from ims.sip.message import Request, Response, make_response, new_tag
from ims.sip.transaction import Target
from ims.sip.uri import parse_name_addr


class Registrar:
    """Answers REGISTER requests for ``domain``.

    ``authorize(aor)`` says whether a public identity may register (unknown → 403); expiry is
    clamped to [min_expires, max_expires] (too brief → 423 with Min-Expires, §10.3 step 7).
    """

    def __init__(
        self,
        location: LocationService,
        domain: str,
        local_hosts: frozenset[str],
        authorize: Callable[[str], bool] | None = None,
        min_expires: int = 60,
        max_expires: int = 7200,
        default_expires: int = 3600,
    ) -> None:
        self.location = location
        self.domain = domain
        self.local_hosts = local_hosts
        self.authorize = authorize
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires

    def aor_of(self, request: Request) -> str:
        return normalize_aor(request.to.uri, self.domain, self.local_hosts)

    def handle(self, request: Request, source: Target) -> Response:
        try:
            return self._handle(request, source)
        except SipError as exc:
            response = make_response(request, exc.status, to_tag=new_tag())
            response.headers.add("Warning", f'399 OpenPCC "{exc.reason}"')
            return response

    def _handle(self, request: Request, source: Target) -> Response:
        to_uri = request.to.uri
        if to_uri.scheme != "tel" and to_uri.host.lower() not in (
            {self.domain.lower()} | self.local_hosts
        ):
            return make_response(request, 404, "Domain Not Served", to_tag=new_tag())
        aor = self.aor_of(request)
        if self.authorize is not None and not self.authorize(aor):
            return make_response(request, 403, to_tag=new_tag())
        contacts = [
            parse_name_addr(c, allow_wildcard=True) for c in request.headers.get_all("Contact")
        ]
        expires_header = request.headers.get("Expires")
        if expires_header is not None and not expires_header.isdigit():
            raise SipError(f"malformed Expires {expires_header[:20]!r}")
        call_id = request.call_id
        cseq = request.cseq[0]
        if any(c.wildcard for c in contacts):  # §10.3 step 6: "*" only alone with Expires 0
            if len(contacts) != 1 or expires_header != "0":
                raise SipError("Contact '*' needs Expires: 0 and no other contact")
            self.location.remove_all(aor)
            return self._ok(request, aor)
        updates = []
        for contact in contacts:
            raw = contact.params.get("expires", expires_header)
            if raw is not None and not raw.isdigit():
                raise SipError(f"malformed expires parameter {raw[:20]!r}")
            expires = int(raw) if raw is not None else self.default_expires
            if 0 < expires < self.min_expires:
                response = make_response(request, 423, to_tag=new_tag())
                response.headers.add("Min-Expires", str(self.min_expires))
                return response
            existing = self.location.find(aor, contact.uri)
            if existing and existing.call_id == call_id and cseq <= existing.cseq:
                # §10.3 step 7: an out-of-order or retransmitted REGISTER
                return make_response(request, 500, "Out of Order CSeq", to_tag=new_tag())
            q_text = contact.params.get("q") or "1"
            try:
                q = min(1.0, max(0.0, float(q_text)))
            except ValueError as exc:
                raise SipError(f"malformed q parameter {q_text[:10]!r}") from exc
            updates.append((contact.uri, min(expires, self.max_expires), q))
        for uri, expires, q in updates:
            self.location.update(aor, uri, expires, call_id, cseq, source, q)
        return self._ok(request, aor)

    def _ok(self, request: Request, aor: str) -> Response:
        response = make_response(request, 200, to_tag=new_tag())
        now = self.location.clock()
        for binding in self.location.bindings(aor):
            response.headers.add("Contact", f"<{binding.contact}>;expires={binding.remaining(now)}")
        response.headers.add("P-Associated-URI", f"<{aor}>")  # RFC 7315 §4.1
        return response
