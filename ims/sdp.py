"""SDP (RFC 4566): parse and serialize session descriptions; offer/answer helpers (RFC 3264).

The model keeps every line it does not interpret, so a parsed description serializes back to
the same lines in the RFC 4566 §5 order. ``SdpError`` is the only error raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from socket import AF_INET, AF_INET6, inet_pton

# RFC 3551 static payload types used in IMS.
STATIC_CODECS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    18: ("G729", 8000),
}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class SdpError(ValueError):
    """Malformed SDP (the proxy answers 400 or 488)."""


@dataclass(slots=True)
class Connection:
    """c= (RFC 4566 §5.7); multicast TTL/count suffixes are kept in ``address``."""

    addrtype: str
    address: str

    @property
    def ip(self) -> str:
        return self.address.split("/")[0]

    def __str__(self) -> str:
        return f"IN {self.addrtype} {self.address}"


@dataclass(slots=True)
class Codec:
    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        channels = f"/{self.channels}" if self.channels else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{channels}"


@dataclass(slots=True)
class Media:
    """One m= section."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: dict[str, int] = field(default_factory=dict)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i=, k= lines

    @property
    def rejected(self) -> bool:
        """RFC 3264 §6: port 0 in an answer (or offer) means the stream is rejected/removed."""
        return self.port == 0

    def attribute(self, name: str) -> str | None:
        return next((v for k, v in self.attributes if k == name), None)

    def has_attribute(self, name: str) -> bool:
        return any(k == name for k, _ in self.attributes)

    @property
    def direction(self) -> str | None:
        return next((k for k, _ in self.attributes if k in DIRECTIONS), None)

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return int(value) if value and value.isdigit() else None

    @property
    def codecs(self) -> list[Codec]:
        """Codecs in the m= line's preference order, from rtpmap/fmtp or the static table."""
        rtpmap: dict[str, str] = {}
        fmtp: dict[str, str] = {}
        for key, value in self.attributes:
            if value is None:
                continue
            if key == "rtpmap":
                pt, _, enc = value.partition(" ")
                rtpmap[pt] = enc.strip()
            elif key == "fmtp":
                pt, _, params = value.partition(" ")
                fmtp[pt] = params.strip()
        out: list[Codec] = []
        for fmt in self.formats:
            if not fmt.isdigit():
                continue
            pt = int(fmt)
            if fmt in rtpmap:
                parts = rtpmap[fmt].split("/")
                if len(parts) < 2 or not parts[1].isdigit():
                    raise SdpError(f"malformed rtpmap for payload type {fmt}")
                channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
                out.append(Codec(pt, parts[0], int(parts[1]), channels, fmtp.get(fmt)))
            elif pt in STATIC_CODECS:
                name, rate = STATIC_CODECS[pt]
                out.append(Codec(pt, name, rate, None, fmtp.get(fmt)))
        return out

    def lines(self) -> list[str]:
        count = f"/{self.port_count}" if self.port_count else ""
        out = [f"m={self.media} {self.port}{count} {self.proto} {' '.join(self.formats)}"]
        out += [f"i={v}" for k, v in self.other if k == "i"]
        if self.connection:
            out.append(f"c={self.connection}")
        out += [f"b={k}:{v}" for k, v in self.bandwidths.items()]
        out += [f"k={v}" for k, v in self.other if k == "k"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass(slots=True)
class SessionDescription:
    origin: str
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: dict[str, int] = field(default_factory=dict)
    times: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i u e p r z k lines

    def connection_for(self, media: Media) -> Connection | None:
        """The media-level c= or, failing that, the session-level one (RFC 4566 §5.7)."""
        return media.connection or self.connection

    def encode(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        for kind in "iuep":
            lines += [f"{kind}={v}" for k, v in self.other if k == kind]
        if self.connection:
            lines.append(f"c={self.connection}")
        lines += [f"b={k}:{v}" for k, v in self.bandwidths.items()]
        for t in self.times:
            lines.append(f"t={t}")
        for kind in "rzk":
            lines += [f"{kind}={v}" for k, v in self.other if k == kind]
        lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for media in self.media:
            lines += media.lines()
        return ("\r\n".join(lines) + "\r\n").encode()


def _connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"malformed c= line {value[:60]!r}")
    ip = parts[2].split("/")[0]
    family, other = (AF_INET, AF_INET6) if parts[1] == "IP4" else (AF_INET6, AF_INET)
    try:
        inet_pton(family, ip)
    except OSError:
        try:
            inet_pton(other, ip)
        except OSError:
            raise SdpError(f"c= address {ip!r} is not an IP address") from None
        raise SdpError(f"c= address {ip!r} does not match {parts[1]}") from None
    return Connection(parts[1], parts[2])


def _bandwidth(value: str, into: dict[str, int]) -> None:
    kind, sep, amount = value.partition(":")
    if not sep or not kind or not amount.strip().isdigit():
        raise SdpError(f"malformed b= line {value[:60]!r}")
    into[
        kind.strip().upper()
        if kind.strip().upper() in ("AS", "CT", "RS", "RR", "TIAS")
        else kind.strip()
    ] = int(amount)


def _media(value: str) -> Media:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"malformed m= line {value[:60]!r}")
    port_text, _, count = parts[1].partition("/")
    if not port_text.isdigit() or int(port_text) > 65535 or (count and not count.isdigit()):
        raise SdpError(f"malformed m= port {parts[1]!r}")
    return Media(parts[0], int(port_text), parts[2], parts[3:], int(count) if count else None)


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body (CRLF or LF line ends)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError("SDP is not UTF-8") from exc
    lines = [line for line in data.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    origin, name = None, "-"
    session_lines: list[tuple[str, str]] = []
    current: Media | None = None
    media: list[Media] = []
    for line in lines[1:]:
        kind, sep, value = line.partition("=")
        if not sep or len(kind) != 1 or not kind.isalpha():
            raise SdpError(f"malformed SDP line {line[:60]!r}")
        value = value.rstrip()
        if kind == "m":
            current = _media(value)
            media.append(current)
        elif current is None:
            if kind == "o":
                if len(value.split()) != 6:
                    raise SdpError("malformed o= line")
                origin = value
            elif kind == "s":
                name = value
            else:
                session_lines.append((kind, value))
        else:
            _media_line(current, kind, value)
    if origin is None:
        raise SdpError("SDP without o= line")
    sdp = SessionDescription(origin, name, times=[])
    for kind, value in session_lines:
        if kind == "c":
            sdp.connection = _connection(value)
        elif kind == "b":
            _bandwidth(value, sdp.bandwidths)
        elif kind == "t":
            sdp.times.append(value)
        elif kind == "a":
            key, sep, val = value.partition(":")
            sdp.attributes.append((key, val if sep else None))
        else:
            sdp.other.append((kind, value))
    if not sdp.times:
        raise SdpError("SDP without t= line")
    sdp.media = media
    for m in media:
        if sdp.connection_for(m) is None and not m.rejected:
            raise SdpError(f"no c= line for the {m.media} stream")
        _check_rtpmaps(m)
    return sdp


def _check_rtpmaps(media: Media) -> None:
    """The rtpmap of every listed payload type has an encoding name and a numeric clock rate
    (what ``Media.codecs`` relies on), without building the codec list."""
    listed = media.formats
    for key, value in media.attributes:
        if key == "rtpmap" and value is not None:
            pt, _, enc = value.partition(" ")
            if pt in listed:
                parts = enc.strip().split("/")
                if len(parts) < 2 or not parts[1].isdigit():
                    raise SdpError(f"malformed rtpmap for payload type {pt}")


def _media_line(media: Media, kind: str, value: str) -> None:
    if kind == "c":
        media.connection = _connection(value)
    elif kind == "b":
        _bandwidth(value, media.bandwidths)
    elif kind == "a":
        key, sep, val = value.partition(":")
        media.attributes.append((key, val if sep else None))
    elif kind in "ik":
        media.other.append((kind, value))
    else:
        raise SdpError(f"{kind}= line not allowed in a media section")


def make_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    supported: tuple[str, ...] = ("AMR-WB", "AMR", "EVS", "PCMU", "PCMA"),
    session_id: int = 1,
) -> SessionDescription:
    """An RFC 3264 answer: per audio stream the first offered codec we support (plus
    telephone-event), b=AS copied; other streams are rejected with port 0 (§6)."""
    addrtype = "IP6" if ":" in address else "IP4"
    answer = SessionDescription(
        f"- {session_id} 1 IN {addrtype} {address}", "-", Connection(addrtype, address)
    )
    wanted = [name.upper() for name in supported]
    for index, m in enumerate(offer.media):
        codecs = [c for c in m.codecs if c.name.upper() in wanted]
        if m.media != "audio" or m.rejected or not codecs:
            answer.media.append(Media(m.media, 0, m.proto, m.formats[:1]))
            continue
        chosen = codecs[0]
        events = [c for c in m.codecs if c.name.lower() == "telephone-event"]
        picked = [chosen, *events[:1]]
        out = Media("audio", port + 2 * index, m.proto, [str(c.payload_type) for c in picked])
        out.bandwidths = {k: v for k, v in m.bandwidths.items() if k in ("AS", "RS", "RR")}
        for codec in picked:
            out.attributes.append(("rtpmap", codec.rtpmap))
            if codec.fmtp:
                out.attributes.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
        if m.ptime:
            out.attributes.append(("ptime", str(m.ptime)))
        reverse = {"sendonly": "recvonly", "recvonly": "sendonly"}
        out.attributes.append((reverse.get(m.direction or "", m.direction or "sendrecv"), None))
        answer.media.append(out)
    return answer
