"""SIP dialogs (RFC 3261 §12): identification, route set, in-dialog requests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ims.sip.headers import Headers
from ims.sip.message import Request, Response
from ims.sip.uri import NameAddr, SipUri, parse_name_addr


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local: NameAddr
    remote: NameAddr
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: route set is the Record-Route of the response, reversed."""
        contact = response.headers.get("Contact")
        target = parse_name_addr(contact).uri if contact else request.uri
        return cls(
            request.call_id,
            request.from_.tag or "",
            response.to.tag or "",
            request.from_,
            response.to,
            target,
            list(reversed(response.headers.get_all("Record-Route"))),
            request.cseq[0],
            None,
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """§12.1.1: route set is the Record-Route of the request, in order."""
        contact = request.headers.get("Contact")
        target = parse_name_addr(contact).uri if contact else request.from_.uri
        local = request.to
        local.params["tag"] = local_tag
        return cls(
            request.call_id,
            local_tag,
            request.from_.tag or "",
            local,
            request.from_,
            target,
            request.headers.get_all("Record-Route"),
            0,
            request.cseq[0],
        )

    def next_hop(self) -> SipUri:
        """§12.2.1.1 with loose routing: the first route, else the remote target."""
        if self.route_set:
            return parse_name_addr(self.route_set[0]).uri
        return self.remote_target

    def create_request(
        self,
        method: str,
        via: str,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
    ) -> Request:
        """An in-dialog request; ACK reuses the INVITE's CSeq number (pass ``cseq``)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        headers = Headers()
        headers.add("Via", via)
        headers.add("Max-Forwards", "70")
        for route in self.route_set:
            headers.add("Route", route)
        headers.add("From", str(self.local))
        headers.add("To", str(self.remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        if body:
            headers.add("Content-Type", content_type or "application/sdp")
        return Request(method, self.remote_target, headers, body)

    def accepts(self, request: Request) -> bool:
        """§12.2.2: a request with a lower CSeq than the last one is out of order (500)."""
        number = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and number < self.remote_seq:
            return False
        self.remote_seq = number
        return True
