"""SIP header section: ordered, case-insensitive, compact forms, comma-separated lists.

Headers keep their order and their spelling as received; names compare case-insensitively and
compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 4028 ...) are expanded to the full name.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from ims.sip.errors import SipError

# RFC 3261 §7.3.3 and the IANA SIP parameters registry ("compact form" column).
COMPACT: dict[str, str] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = (
    *COMPACT.values(),
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "Reason",
    "RSeq",
    "RAck",
    "Path",
    "Service-Route",
    "Session-Expires",
    "Min-SE",
    "Event",
    "Allow-Events",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "P-Charging-Vector",
    "P-Charging-Function-Addresses",
    "P-Access-Network-Info",
    "P-Visited-Network-ID",
    "P-Associated-URI",
    "P-Called-Party-ID",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Refer-To",
    "Referred-By",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1): one header line may carry
# several values. Authorization-style headers and Date contain commas inside one value.
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via",
        "Route",
        "Record-Route",
        "Contact",
        "Allow",
        "Supported",
        "Require",
        "Proxy-Require",
        "Unsupported",
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Content-Encoding",
        "Content-Language",
        "Path",
        "Service-Route",
        "P-Associated-URI",
        "P-Asserted-Identity",
        "Allow-Events",
        "Security-Client",
        "Security-Server",
        "Security-Verify",
        "Reason",
        "Alert-Info",
        "Call-Info",
        "Error-Info",
        "In-Reply-To",
        "Warning",
    )
)

_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


@lru_cache(maxsize=4096)
def canonical(name: str) -> str:
    """Full, conventionally spelled name for ``name`` (compact forms expanded); unknown names
    keep their spelling."""
    low = name.lower()
    if len(low) == 1 and low in COMPACT:
        return COMPACT[low]
    return _CANONICAL.get(low, name)


@lru_cache(maxsize=4096)
def _key(name: str) -> str:
    """The case-insensitive identity of a header name (compact and full forms equal)."""
    return canonical(name).lower()


def is_token(text: str) -> bool:
    """RFC 3261 §25.1 token."""
    return bool(text) and _TOKEN_CHARS.issuperset(text)


def split_list(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas inside quotes, <...> and
    parentheses (comments); empty elements are dropped."""
    if "," not in value and '"' not in value:  # one value (the common case)
        value = value.strip()
        return [value] if value else []
    if '"' not in value and "<" not in value:  # no quoting: split at C speed
        return [p for p in (p.strip() for p in value.split(",")) if p]
    parts: list[str] = []
    start = 0
    in_quotes = False
    angle = 0
    escape = False
    for i, ch in enumerate(value):
        if escape:
            escape = False
        elif in_quotes:
            if ch == "\\":
                escape = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            angle += 1
        elif ch == ">" and angle:
            angle -= 1
        elif ch == "," and not angle:
            parts.append(value[start:i])
            start = i + 1
    if in_quotes:
        raise SipError(f"unterminated quoted string in {value!r}")
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


class Headers:
    """Ordered header fields, each a name as received and a value, kept in parallel lists with
    each field's case-insensitive key: lookups compare strings at C speed, and a message's
    fields cost no tuple each (fewer objects for the collector while transactions linger)."""

    __slots__ = ("_keys", "_names", "_values")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._names: list[str] = []
        self._values: list[str] = []
        self._keys: list[str] = []
        for name, value in items or ():
            self.add(name, value)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return zip(self._names, self._values, strict=True)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return _key(name) in self._keys

    def copy(self) -> Headers:
        clone = Headers.__new__(Headers)
        clone._names = self._names.copy()
        clone._values = self._values.copy()
        clone._keys = self._keys.copy()
        return clone

    def lines(self) -> list[str]:
        """``Name: value`` per field, in order (serialization)."""
        return [f"{n}: {v}" for n, v in zip(self._names, self._values, strict=True)]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``: for list headers the first list element."""
        key = _key(name)
        keys = self._keys
        if key not in LIST_HEADERS:
            try:
                return self._values[keys.index(key)]
            except ValueError:
                return default
        for i, k in enumerate(keys):
            if k == key:
                values = split_list(self._values[i])
                if values:
                    return values[0]
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; list headers are split at their commas."""
        key = _key(name)
        values = self._values
        if key in LIST_HEADERS:
            out: list[str] = []
            for i, k in enumerate(self._keys):
                if k == key:
                    out.extend(split_list(values[i]))
            return out
        return [values[i] for i, k in enumerate(self._keys) if k == key]

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        self._names.append(name)
        self._values.append(value)
        self._keys.append(_key(name))

    def prepend(self, name: str, value: str) -> None:
        """Insert a header line before the first header of that name (or at the top)."""
        key = _key(name)
        try:
            i = self._keys.index(key)
        except ValueError:
            i = 0
        self._names.insert(i, name)
        self._values.insert(i, value)
        self._keys.insert(i, key)

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` with one line, keeping the first one's position and
        spelling."""
        key = _key(name)
        keys = self._keys
        try:
            i = keys.index(key)
        except ValueError:
            self.add(canonical(name), value)
            return
        self._values[i] = value
        if key in keys[i + 1 :]:
            self._keep([j for j in range(len(keys)) if j <= i or keys[j] != key])

    def remove(self, name: str) -> None:
        key = _key(name)
        if key in self._keys:
            self._keep([j for j, k in enumerate(self._keys) if k != key])

    def _keep(self, kept: list[int]) -> None:
        names, values, keys = self._names, self._values, self._keys
        self._names = [names[j] for j in kept]
        self._values = [values[j] for j in kept]
        self._keys = [keys[j] for j in kept]

    def pop_first(self, name: str) -> str | None:
        """Remove and return the first value of a list header (e.g. the top Via or Route)."""
        key = _key(name)
        try:
            i = self._keys.index(key)
        except ValueError:
            return None
        v = self._values[i]
        values = split_list(v) if key in LIST_HEADERS else [v]
        if len(values) > 1:
            self._values[i] = ", ".join(values[1:])
        else:
            del self._names[i]
            del self._values[i]
            del self._keys[i]
        return values[0] if values else None


def parse_header_lines(lines: list[str], is_request: bool | None) -> Headers:
    """Parse header lines (split at CRLF), unfolding continuation lines (RFC 3261 §7.3.1)."""
    headers = Headers()
    names, values, keys = headers._names, headers._values, headers._keys
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not names:
                raise SipError(
                    "continuation line before any header", headers=headers, is_request=is_request
                )
            values[-1] = f"{values[-1]} {line.strip()}".strip()
            continue
        name, sep, value = line.partition(":")
        known = _line_name(name.rstrip(" \t")) if sep else None
        if known is None:
            raise SipError(
                f"malformed header line {line[:60]!r}", headers=headers, is_request=is_request
            )
        names.append(known[0])
        values.append(value.strip())
        keys.append(known[1])
    return headers


@lru_cache(maxsize=4096)
def _line_name(name: str) -> tuple[str, str] | None:
    """(name as stored, key) for a received header name; None when it is not a token."""
    if not is_token(name):
        return None
    stored = canonical(name) if len(name) == 1 else name
    return stored, _key(stored)
