"""Stream framing: split a TCP byte stream into Diameter messages (RFC 6733 §3).

Only the 4-byte version/length word is read here. A declared length below the 20-byte header or
above :data:`MAX_MESSAGE_LENGTH` means framing is lost (the next message boundary cannot be found),
so the caller must close the connection; everything else is the codec's business.
"""

from __future__ import annotations

from diam.message import HEADER_LENGTH, MAX_MESSAGE_LENGTH


class FramingError(Exception):
    """The stream declared an impossible message length; the connection must be closed."""


class FrameBuffer:
    """Accumulates received bytes and yields complete frames; holds at most one partial frame."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """Return every complete frame now available (possibly none).

        Raises :class:`FramingError` as soon as a header declares a length of 0, below the header
        size or above 1 MiB, without waiting for the body.
        """
        if self._pending:
            data = self._pending + data
        frames: list[bytes] = []
        size = len(data)
        offset = 0
        while size - offset >= 4:
            length = int.from_bytes(data[offset + 1 : offset + 4], "big")
            if length < HEADER_LENGTH or length > MAX_MESSAGE_LENGTH:
                self._pending = b""
                raise FramingError(f"declared message length {length}")
            end = offset + length
            if end > size:
                break
            frames.append(data[offset:end] if offset or end != size else data)
            offset = end
        self._pending = data[offset:] if offset < size else b""
        return frames
