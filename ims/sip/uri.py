"""SIP/SIPS/TEL URIs (RFC 3261 §19.1, RFC 3966) and name-addr values (RFC 3261 §20.10)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from functools import lru_cache

from ims.sip.errors import SipError

_HOSTNAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]*"
    r"[A-Za-z0-9])?)*\.?$"
)
_USER_CHARS = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$")
_PARAM_CHARS = re.compile(r"^[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+$")
_TEL_NUMBER = re.compile(r"^\+?[0-9A-Fa-f*#\-.()]+$")
MEMO_MAX_CHARS = 512  # longer header values are parsed every time (bounds the memo's memory)


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """``;a=b;c`` → {"a": "b", "c": None}; names lowercased (compared case-insensitively)."""
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        item = item.strip()
        if not item:
            raise SipError(f"empty parameter in {what}")
        name, sep, value = item.partition("=")
        name = name.strip()
        if not _PARAM_CHARS.match(name):
            raise SipError(f"invalid parameter name {name!r} in {what}")
        value = value.strip()
        if sep and not value:
            raise SipError(f"parameter {name!r} without value in {what}")
        if sep and not (_PARAM_CHARS.match(value) or _is_quoted(value)):
            raise SipError(f"invalid value for parameter {name!r} in {what}")
        params[name.lower()] = value if sep else None
    return params


def _is_quoted(value: str) -> bool:
    return len(value) >= 2 and value[0] == '"' and value[-1] == '"'


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def parse_hostport(text: str, what: str) -> tuple[str, int | None]:
    """``host[:port]`` with IPv6 references in brackets; returns (host, port or None)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipError(f"unterminated IPv6 reference in {what}")
        host, rest = text[: end + 1], text[end + 1 :]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise SipError(f"invalid IPv6 address {host!r} in {what}") from exc
    else:
        host, _, port_text = text.partition(":")
        rest = f":{port_text}" if _ else ""
        if not host or not _HOSTNAME.match(host):
            raise SipError(f"invalid host {host!r} in {what}")
    if not rest:
        return host, None
    if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
        raise SipError(f"invalid port in {what}")
    port = int(rest[1:])
    if not 0 < port < 65536:
        raise SipError(f"port {port} out of range in {what}")
    return host, port


@dataclass(slots=True)
class SipUri:
    """A sip:/sips: URI, or a tel: URI (``user`` holds the number, ``host`` is empty)."""

    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    password: str | None = None

    @property
    def aor(self) -> str:
        """Address of record: scheme:user@host without port or parameters (RFC 3261 §10.3)."""
        if self.scheme == "tel":
            return f"tel:{self.user}"
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{user}{self.host.lower()}"

    def copy(self) -> SipUri:
        """An independent copy (its params dict is not shared)."""
        return SipUri(
            self.scheme,
            self.user,
            self.host,
            self.port,
            dict(self.params),
            self.headers,
            self.password,
        )

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        user = ""
        if self.user is not None:
            user = self.user + (f":{self.password}" if self.password is not None else "") + "@"
        port = f":{self.port}" if self.port is not None else ""
        hdrs = f"?{self.headers}" if self.headers else ""
        return f"{self.scheme}:{user}{self.host}{port}{format_params(self.params)}{hdrs}"


def parse_uri(text: str) -> SipUri:
    """Parse a sip:, sips: or tel: URI; anything else raises SipError (416 is the proxy's call).
    Request-URIs and contacts recur, so parses are memoized by text; each caller gets a copy."""
    return _peek_uri(text).copy()


def _peek_uri(text: str) -> SipUri:
    """``parse_uri``'s value shared with the memo: never change it."""
    return (_parse_uri if len(text) <= MEMO_MAX_CHARS else _parse_uri.__wrapped__)(text)


@lru_cache(maxsize=1024)
def _parse_uri(text: str) -> SipUri:
    text = text.strip()
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep or not rest:
        raise SipError(f"invalid URI {text[:80]!r}")
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not _TEL_NUMBER.match(number):
            raise SipError(f"invalid tel number {number!r}")
        return SipUri("tel", number, "", None, parse_params(params, "tel URI"))
    if scheme not in ("sip", "sips"):
        raise SipError(f"unsupported URI scheme {scheme!r}", status=416)
    rest, _, headers = rest.partition("?")
    user: str | None = None
    password: str | None = None
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, colon, pw = userinfo.partition(":")
        password = pw if colon else None
        bad_password = password is not None and not _USER_CHARS.match(password or "x")
        if not user or not _USER_CHARS.match(user) or bad_password:
            raise SipError(f"invalid user part in {text[:80]!r}")
    hostport, _, params = rest.partition(";")
    host, port = parse_hostport(hostport, "URI")
    return SipUri(scheme, user, host, port, parse_params(params, "URI"), headers or None, password)


@dataclass(slots=True)
class NameAddr:
    """``"Display" <uri>;params`` (From, To, Contact, Route, P-Asserted-Identity ...)."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    wildcard: bool = False

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def copy(self) -> NameAddr:
        """An independent copy (URI and params not shared)."""
        return NameAddr(self.uri.copy(), self.display, dict(self.params), self.wildcard)

    def __str__(self) -> str:
        if self.wildcard:
            return "*"
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"


def parse_name_addr(text: str, allow_wildcard: bool = False) -> NameAddr:
    """Parse name-addr or addr-spec with header parameters. In the addr-spec form every ``;param``
    belongs to the header, not the URI (RFC 3261 §20.10).

    A call's messages repeat their From/To/Contact values, so parses of short values are memoized
    by text; each caller gets its own copy to change."""
    parse = _parse_name_addr if len(text) <= MEMO_MAX_CHARS else _parse_name_addr.__wrapped__
    return parse(text, allow_wildcard).copy()


def peek_name_addr(text: str) -> NameAddr:
    """``parse_name_addr``'s value shared with the memo: read it, never change it (tags of
    From/To, the URI of a Route)."""
    return (_parse_name_addr if len(text) <= MEMO_MAX_CHARS else _parse_name_addr.__wrapped__)(
        text, False
    )


def check_name_addr(text: str) -> None:
    """Raise SipError unless ``text`` parses as ``parse_name_addr`` would (memoized, no copy)."""
    (_parse_name_addr if len(text) <= MEMO_MAX_CHARS else _parse_name_addr.__wrapped__)(text, False)


@lru_cache(maxsize=1024)
def _parse_name_addr(text: str, allow_wildcard: bool) -> NameAddr:
    text = text.strip()
    if allow_wildcard and text == "*":
        return NameAddr(SipUri("sip", None, "*"), wildcard=True)
    display: str | None = None
    rest = text
    if rest.startswith('"'):
        i, escape = 1, False
        while i < len(rest):
            ch = rest[i]
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                break
            i += 1
        else:
            raise SipError("unterminated display name")
        display, rest = rest[: i + 1], rest[i + 1 :].lstrip()
        if not rest.startswith("<"):
            raise SipError("quoted display name without <uri>")
    lt = rest.find("<")
    if lt >= 0:
        if display is None and rest[:lt].strip():
            display = rest[:lt].strip()
        gt = rest.find(">", lt)
        if gt < 0:
            raise SipError(f"missing '>' in {text[:80]!r}")
        uri = _peek_uri(rest[lt + 1 : gt])
        tail = rest[gt + 1 :].strip()
    else:
        uri_text, semi, tail = rest.partition(";")
        if " " in uri_text.strip() or "," in uri_text:
            raise SipError(f"invalid addr-spec {text[:80]!r}")
        uri = _peek_uri(uri_text)
        tail = semi + tail
    if tail and not tail.startswith(";"):
        raise SipError(f"garbage after URI in {text[:80]!r}")
    return NameAddr(uri, display, parse_params(tail[1:], "header parameters"))
