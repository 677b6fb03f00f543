"""uvicorn's httptools protocol with one send per response.

uvicorn writes a response's status line and headers when the app sends ``http.response.start``
and the body on ``http.response.body``: two ``send()`` system calls and, with ``TCP_NODELAY``
(set by api/server.py so nothing waits for Nagle), two TCP segments and two wake-ups of the
client per small JSON answer. Here the protocol's transport holds the writes made during one
event-loop iteration and hands them to the socket together at the end of it; a large stream
(over :data:`FLUSH_AT` bytes) is written at once, so memory stays bounded and flow control works.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Buffered bytes that are written without waiting for the end of the loop iteration.
FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """A transport whose writes of one loop iteration leave as one ``write`` (same order)."""

    __slots__ = ("_buffer", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._size = 0

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()  # a response written just before closing still leaves
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._size = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._size + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
