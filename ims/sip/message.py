"""SIP requests and responses (RFC 3261 §7): parse, inspect, serialize.

``parse_message`` accepts one complete message (a UDP datagram or a frame cut by
``ims.sip.framing``) and raises only ``SipError``. Unknown headers and their order survive a
parse/serialize round trip; Content-Length is recomputed on output.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
from dataclasses import dataclass, field
from functools import lru_cache

from ims.sip.errors import SipError
from ims.sip.headers import Headers, canonical, is_token, parse_header_lines
from ims.sip.uri import (
    MEMO_MAX_CHARS,
    NameAddr,
    SipUri,
    check_name_addr,
    format_params,
    parse_hostport,
    parse_name_addr,
    parse_params,
    parse_uri,
    peek_name_addr,
)

BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7
MAX_HEADER_BYTES = 65536
MAX_BODY_BYTES = 1 << 20
_STATUS_LINE = re.compile(r"^SIP/2\.0 ([1-6][0-9][0-9]) (.*)$")
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
_COPIED = frozenset(_REQUIRED)

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}


class _BranchSource:
    """Branches unique across space and time (RFC 3261 §8.1.1.7): a random 64-bit prefix per
    process (drawn again in a forked child) and a counter, instead of a getrandom per request."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = BRANCH_MAGIC + secrets.token_hex(8)
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):x}"


new_branch = _BranchSource()
os.register_at_fork(after_in_child=new_branch.reseed)


def new_tag() -> str:
    return secrets.token_hex(6)


@dataclass(slots=True)
class Via:
    """One Via value (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host.lower()}:{self.port or 5060}"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    """One Via value. A transaction's messages repeat it (validation, matching, relaying), so
    parses of short values are memoized by text; each caller gets its own copy to change."""
    via = peek_via(text)
    return Via(via.transport, via.host, via.port, dict(via.params))


def peek_via(text: str) -> Via:
    """One Via value as ``parse_via`` gives it, but shared with the memo: read it, never change
    it (transaction matching reads branch and sent-by of every message)."""
    return (_parse_via if len(text) <= MEMO_MAX_CHARS else _parse_via.__wrapped__)(text)


@lru_cache(maxsize=1024)
def _parse_via(text: str) -> Via:
    proto, _, rest = text.strip().partition(" ")
    parts = [p.strip() for p in proto.split("/")]
    if len(parts) != 3 or parts[0].upper() != "SIP" or parts[1] != "2.0" or not is_token(parts[2]):
        raise SipError(f"malformed Via protocol {proto!r}")
    sent_by, _, params = rest.strip().partition(";")
    host, port = parse_hostport(sent_by.strip(), "Via")
    return Via(parts[2].upper(), host, port, parse_params(params, "Via"))


@lru_cache(maxsize=256)  # a handful of values ("1 INVITE", "2 BYE" ...) recur in every call
def parse_cseq(text: str) -> tuple[int, str]:
    number, _, method = text.strip().partition(" ")
    method = method.strip()
    if not number.isdigit() or len(number) > 10 or not is_token(method):
        raise SipError(f"malformed CSeq {text[:40]!r}")
    value = int(number)
    if value >= 2**31:  # RFC 3261 §8.1.1.5
        raise SipError("CSeq number out of range")
    return value, method


class Message:
    """Common part of requests and responses."""

    __slots__ = ("body", "headers")

    def __init__(self, headers: Headers, body: bytes = b"") -> None:
        self.headers = headers
        self.body = body

    # --- typed views on the mandatory headers -------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self.headers.get("To") or "")

    @property
    def from_tag(self) -> str | None:
        return peek_name_addr(self.headers.get("From") or "").params.get("tag")

    @property
    def to_tag(self) -> str | None:
        return peek_name_addr(self.headers.get("To") or "").params.get("tag")

    @property
    def vias(self) -> list[Via]:
        return [parse_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        return parse_via(self.headers.get("Via") or "")

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def start_line(self) -> str:
        raise NotImplementedError

    def encode(self) -> bytes:
        """Serialize with a recomputed Content-Length (kept at its original position)."""
        self.headers.set("Content-Length", str(len(self.body)))
        lines = self.headers.lines()
        lines.insert(0, self.start_line())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


class Request(Message):
    __slots__ = ("method", "uri")

    def __init__(self, method: str, uri: SipUri, headers: Headers, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} call-id={self.call_id}>"


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str, headers: Headers, body: bytes = b"") -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = reason

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.call_id}>"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """Build a response copying Via, From, To, Call-ID, CSeq (RFC 3261 §8.2.6.2); the To tag is
    added when given and absent (never for 100 Trying)."""
    headers = Headers()
    for name_seen, value in request.headers:
        name = canonical(name_seen)
        if name in _COPIED or (name == "Record-Route" and 100 < status < 300):
            headers.add(name, value)
    if to_tag and status > 100:
        to = parse_name_addr(headers.get("To") or "")
        if to.tag is None:
            to.params["tag"] = to_tag
            headers.set("To", str(to))
    if body:
        headers.add("Content-Type", content_type or "application/sdp")
    return Response(status, reason or REASONS.get(status, "Unknown"), headers, body)


def parse_message(data: bytes, datagram: bool = True) -> Request | Response:
    """Parse one SIP message. ``datagram``: a missing Content-Length means "the rest of the
    datagram" (RFC 3261 §18.3); over a stream the framer has already cut the body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise SipError("no empty line after the header section")
    if len(head) > MAX_HEADER_BYTES:
        raise SipError("header section too large", status=513)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipError(f"header section is not UTF-8 (byte {exc.start})") from exc
    lines = text.split("\r\n")
    while lines and not lines[0]:  # RFC 3261 §7.5: ignore leading CRLFs
        lines.pop(0)
    if not lines:
        raise SipError("empty message")
    start = lines[0]
    is_request = not start.startswith("SIP/")
    headers = parse_header_lines(lines[1:], is_request)
    try:
        msg = _build(start, headers, body, datagram)
        _validate(msg)
    except SipError as exc:
        exc.headers, exc.is_request = headers, is_request
        raise
    return msg


def _build(start: str, headers: Headers, body: bytes, datagram: bool) -> Request | Response:
    length_text = headers.get("Content-Length")
    if length_text is not None:
        if not length_text.isdigit() or len(length_text) > 9:
            raise SipError(f"malformed Content-Length {length_text[:20]!r}")
        length = int(length_text)
        if length > len(body):
            raise SipError(f"Content-Length {length} exceeds the {len(body)} body bytes received")
        body = body[:length]  # datagram: octets beyond Content-Length are discarded (§18.3)
    elif not datagram:
        raise SipError("Content-Length is mandatory over stream transports")
    if len(body) > MAX_BODY_BYTES:
        raise SipError("body too large", status=413)
    if start.startswith("SIP/"):
        status_match = _STATUS_LINE.match(start)
        if not status_match:
            raise SipError(f"malformed status line {start[:60]!r}")
        return Response(int(status_match.group(1)), status_match.group(2), headers, body)
    parts = start.split(" ")
    if len(parts) != 3 or not is_token(parts[0]):
        raise SipError(f"malformed request line {start[:60]!r}")
    if parts[2] != "SIP/2.0":
        raise SipError(f"unsupported SIP version {parts[2][:20]!r}", status=505)
    return Request(parts[0], parse_uri(parts[1]), headers, body)


def _validate(msg: Request | Response) -> None:
    """Mandatory headers present and well formed (RFC 3261 §8.1.1)."""
    for name in _REQUIRED:
        if name not in msg.headers:
            raise SipError(f"missing mandatory header {name}")
    call_id = msg.call_id
    if not call_id or " " in call_id:
        raise SipError("malformed Call-ID")
    _, method = msg.cseq
    if isinstance(msg, Request) and method != msg.method:
        raise SipError(f"CSeq method {method} does not match request method {msg.method}")
    for via in msg.headers.get_all("Via"):
        peek_via(via)
    check_name_addr(msg.headers.get("From") or "")
    check_name_addr(msg.headers.get("To") or "")
    if isinstance(msg, Request):
        mf = msg.headers.get("Max-Forwards")
        if mf is not None and (not mf.isdigit() or int(mf) > 255):
            raise SipError(f"malformed Max-Forwards {mf[:20]!r}")
