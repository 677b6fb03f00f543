"""Cutting a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3)."""

from __future__ import annotations

from ims.sip.errors import SipError
from ims.sip.headers import canonical
from ims.sip.message import MAX_BODY_BYTES, MAX_HEADER_BYTES


class StreamFramer:
    """Feed received bytes, get back complete messages (bytes). CRLF keep-alives between
    messages (RFC 5626 §3.5.1) are skipped. A framing error is fatal for the connection: the
    caller answers 400 if it can and closes, since the stream position is lost."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames: list[bytes] = []
        while True:
            while self._buffer[:2] == b"\r\n":
                del self._buffer[:2]
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise SipError("header section too large", status=513)
                return frames
            length = _content_length(bytes(self._buffer[:end]))
            total = end + 4 + length
            if len(self._buffer) < total:
                return frames
            frames.append(bytes(self._buffer[:total]))
            del self._buffer[:total]

    @property
    def pending(self) -> int:
        return len(self._buffer)


def _content_length(head: bytes) -> int:
    for raw in head.split(b"\r\n")[1:]:
        name, sep, value = raw.partition(b":")
        if not sep:
            continue
        try:
            key = canonical(name.decode("ascii").strip())
        except UnicodeDecodeError:
            continue
        if key == "Content-Length":
            text = value.strip()
            if not text.isdigit() or len(text) > 9:
                raise SipError(f"malformed Content-Length {text[:20]!r}")
            length = int(text)
            if length > MAX_BODY_BYTES:
                raise SipError("body too large", status=413)
            return length
    raise SipError("Content-Length is mandatory over stream transports")
