"""Diameter over a TCP stream: framing (RFC 6733 §3), batched writes, backpressure.

Only the 4-byte version/length word is read here. A declared length below the 20-byte header or
above :data:`MAX_MESSAGE_LENGTH` means framing is lost (the next message boundary cannot be found),
so the connection is aborted; everything else is the codec's business.
"""

from __future__ import annotations

import asyncio
from typing import cast

from diam.message import HEADER_LENGTH, MAX_MESSAGE_LENGTH


class FramingError(Exception):
    """The stream declared an impossible message length; the connection must be closed."""


class FrameBuffer:
    """Accumulates received bytes and yields complete frames; holds at most one partial frame.

    A partial frame grows in a bytearray and is only rejoined once its declared length is
    there, so a 1 MiB message arriving in small segments costs linear, not quadratic, copying.
    """

    __slots__ = ("_needed", "_pending")

    def __init__(self) -> None:
        self._pending = bytearray()
        self._needed = 0  # declared length of the partial frame, once its length word is in

    @property
    def buffered(self) -> int:
        return len(self._pending)

    def feed(self, data: bytes) -> list[bytes]:
        """Return every complete frame now available (possibly none).

        Raises :class:`FramingError` as soon as a header declares a length of 0, below the header
        size or above 1 MiB, without waiting for the body.
        """
        pending = self._pending
        if pending:
            pending += data
            if len(pending) < self._needed:
                return []
            data = bytes(pending)
            pending.clear()
        frames: list[bytes] = []
        size = len(data)
        offset = 0
        length = 0
        while size - offset >= 4:
            length = int.from_bytes(data[offset + 1 : offset + 4], "big")
            if length < HEADER_LENGTH or length > MAX_MESSAGE_LENGTH:
                self._needed = 0
                raise FramingError(f"declared message length {length}")
            end = offset + length
            if end > size:
                break
            frames.append(data[offset:end] if offset or end != size else data)
            offset = end
            length = 0
        if offset < size:
            pending += data[offset:]
        self._needed = length  # 0 while fewer than 4 octets of the next frame are in
        return frames


class FramedProtocol(asyncio.Protocol):
    """An asyncio Protocol delivering whole frames to :meth:`frame_received`.

    Writes are ordered by construction (one transport, one thread) and never interleave. Those
    made in one event-loop iteration go out as one ``write`` (see :meth:`_write`). When
    the remote end stops reading and our buffer passes ``write_buffer_high`` we stop reading it
    too (``congested``), so a peer cannot make us queue without bound.
    """

    def __init__(self, write_buffer_high: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._write_buffer_high = write_buffer_high
        self._frames = FrameBuffer()
        self._out: list[bytes] = []  # written since the last flush, in order
        self._receiving = False  # inside data_received: it flushes when done
        self._lost = False  # connection_lost has run
        self._writable: asyncio.Future[None] | None = None
        self._last_rx = self._loop.time()
        self.remote_address: tuple[str, int] | None = None
        self.local_address: tuple[str, int] | None = None

    # --- for subclasses ----------------------------------------------------------------------

    def frame_received(self, frame: bytes) -> None:
        raise NotImplementedError

    def abort(self, reason: str) -> None:
        """Close at once, without DPR (subclasses log ``reason``)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    @property
    def reading_stopped(self) -> bool:
        """True once the connection is closing: remaining frames are ignored."""
        return self._transport is None or self._transport.is_closing()

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=self._write_buffer_high)
        peername = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        self.remote_address = (peername[0], peername[1]) if peername else None
        self.local_address = (sockname[0], sockname[1]) if sockname else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._out.clear()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)  # waiters re-check the connection state

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        self._last_rx = self._loop.time()
        try:
            frames = self._frames.feed(data)
        except FramingError as err:
            self.abort(f"framing lost: {err}")
            return
        self._receiving = True
        try:
            for frame in frames:
                if self.reading_stopped:
                    break
                self.frame_received(frame)
        finally:
            self._receiving = False
            self._flush()

    # --- writing -----------------------------------------------------------------------------

    @property
    def congested(self) -> bool:
        """True while the remote end does not read our output (we do not read its input)."""
        return self._writable is not None and not self._writable.done()

    async def wait_writable(self) -> None:
        """Return once the send buffer has drained below its high-water mark (or on close)."""
        writable = self._writable
        if writable is not None and not writable.done():
            await asyncio.shield(writable)

    def _write(self, data: bytes) -> None:
        """Queue ``data``; it is written with everything else queued in this event-loop
        iteration: at the end of ``data_received``, else by a callback scheduled here. Answers
        released together (handlers woken by one group commit) cost one write, not one each."""
        out = self._out
        out.append(data)
        if len(out) == 1 and not self._receiving:
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write what is queued (also before a close)."""
        out = self._out
        if not out:
            return
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _close_transport(self) -> None:
        """Close after the queued and buffered output is sent."""
        self._flush()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
