"""SIP over UDP and TCP (RFC 3261 §18) on asyncio.

One ``SipTransport`` listens on a host/port for both transports. Parsed messages go to
``on_message(message, source)``; malformed requests are answered 400 with a Warning header
(never a crash) when enough of the header section survived to address a response, otherwise
dropped (§18.3). A framing error on TCP closes that connection after the 400.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from ims.sip.errors import SipError
from ims.sip.framing import StreamFramer
from ims.sip.headers import Headers, canonical
from ims.sip.message import REASONS, Message, Request, Response, make_response, parse_message
from ims.sip.transaction import Target, shared_target

log = logging.getLogger(__name__)

OnMessage = Callable[[Request | Response, Target], None]
OnError = Callable[[Target], None]
AGENT = "OpenPCC"
#: Receive and send buffers of the UDP socket (the kernel caps them at net.core.rmem_max /
#: wmem_max). At the default ~208 KiB a pause of the process (a commit's fsync, a collector
#: pass) of a few hundred ms at 200 calls/s overflowed it: the datagrams lost were answers, a
#: BYE's 200 among them, and a UA that does not re-answer the retransmitted BYE (SIPp's UAS
#: does not, once its call ended) left the transaction to time out (bench.ims: 1 call in
#: 6,000-12,000, with the host's UDP RcvbufErrors counting the drops).
UDP_BUFFER_BYTES = 4 * 1024 * 1024


def _udp_socket(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket with UDP_BUFFER_BYTES buffers."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)
        granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux doubles it
        if granted < UDP_BUFFER_BYTES:
            log.warning(
                "event=sip_udp_buffer_capped requested=%d granted=%d "
                "hint='raise net.core.rmem_max/wmem_max'",
                UDP_BUFFER_BYTES,
                granted,
            )
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def error_response(error: SipError) -> Response | None:
    """A 4xx/5xx for a request that failed to parse, built from its surviving headers, or None
    when it was a response or lacks what a response needs (Via, From, To, Call-ID, CSeq)."""
    if error.is_request is False or error.headers is None:
        return None
    copied = Headers()
    for name, value in error.headers:
        full = canonical(name)
        if full in ("Via", "From", "To", "Call-ID", "CSeq"):
            copied.add(full, value)
    if not all(name in copied for name in ("Via", "From", "To", "Call-ID", "CSeq")):
        return None
    reason = error.reason.replace('"', "'").replace("\\", "/")[:200]
    copied.add("Warning", f'399 {AGENT} "{reason}"')  # RFC 3261 §20.43
    return Response(error.status, REASONS.get(error.status, "Bad Request"), copied)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        source = shared_target("UDP", addr[0], addr[1])
        if data.strip(b"\r\n") == b"":  # keep-alive (RFC 5626 §4.4.1)
            return
        self.owner._received(data, source, datagram=True)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, owner: SipTransport, outbound_key: tuple[str, int] | None = None) -> None:
        self.owner = owner
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.key = outbound_key

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if self.key is None:
            self.key = (peer[0], peer[1])
        self.owner._connections[self.key] = self

    def data_received(self, data: bytes) -> None:
        assert self.key is not None
        source = shared_target("TCP", *self.key)
        try:
            frames = self.framer.feed(data)
        except SipError as exc:
            self.owner._reject(exc, source)
            if self.transport:
                self.transport.close()
            return
        for frame in frames:
            self.owner._received(frame, source, datagram=False)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.key and self.owner._connections.get(self.key) is self:
            del self.owner._connections[self.key]

    def write(self, data: bytes) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.write(data)


class SipTransport:
    """UDP and TCP listeners on one address, plus outbound TCP connections."""

    def __init__(self, on_message: OnMessage, on_error: OnError | None = None) -> None:
        self.on_message = on_message
        self.on_error = on_error
        self.host = "127.0.0.1"
        self.port = 0
        self._udp: _Udp | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[tuple[str, int], _Tcp] = {}
        self._pending: dict[tuple[str, int], asyncio.Task[None]] = {}
        self.stats = {"received": 0, "sent": 0, "malformed": 0}

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, udp: bool = True, tcp: bool = True
    ) -> None:
        """Listen; with port 0 the UDP socket picks a free port and TCP binds the same one
        (another free pair is tried when that TCP port is taken)."""
        for _ in range(20 if port == 0 else 1):
            try:
                await self._bind(host, port, udp, tcp)
                return
            except OSError:
                if port != 0:
                    raise
                if self._udp and self._udp.transport:
                    self._udp.transport.close()
                self._udp = None
        raise OSError(f"no free UDP+TCP port pair on {host}")

    async def _bind(self, host: str, port: int, udp: bool, tcp: bool) -> None:
        loop = asyncio.get_running_loop()
        self.host = host
        if udp:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Udp(self), sock=_udp_socket(host, port)
            )
            self._udp = protocol
            port = transport.get_extra_info("sockname")[1]
        if tcp:
            self._server = await loop.create_server(
                lambda: _Tcp(self), host, port, reuse_address=True
            )
            port = self._server.sockets[0].getsockname()[1]
        self.port = port

    async def close(self) -> None:
        for task in self._pending.values():
            task.cancel()
        if self._udp and self._udp.transport:
            self._udp.transport.close()
        for conn in list(self._connections.values()):
            if conn.transport:
                conn.transport.close()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    def send(self, message: Message, target: Target) -> None:
        """Send without waiting; TCP opens a connection when none exists (failures are reported
        through ``on_error``)."""
        data = message.encode()
        self.stats["sent"] += 1
        if target.transport == "UDP":
            if self._udp and self._udp.transport:
                self._udp.transport.sendto(data, (target.host, target.port))
            return
        key = (target.host, target.port)
        conn = self._connections.get(key)
        if conn is not None:
            conn.write(data)
            return
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._connect(key, target))
            self._pending[key] = pending
        pending.add_done_callback(lambda _t: self._after_connect(key, data, target))

    async def _connect(self, key: tuple[str, int], target: Target) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: _Tcp(self, key), target.host, target.port)

    def _after_connect(self, key: tuple[str, int], data: bytes, target: Target) -> None:
        task = self._pending.pop(key, None)
        conn = self._connections.get(key)
        if conn is not None:
            conn.write(data)
            return
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.info("TCP connect to %s:%s failed: %s", target.host, target.port, task.exception())
        if self.on_error:
            self.on_error(target)

    def _received(self, data: bytes, source: Target, datagram: bool) -> None:
        self.stats["received"] += 1
        try:
            message = parse_message(data, datagram=datagram)
        except SipError as exc:
            self._reject(exc, source)
            return
        try:
            self.on_message(message, source)
        except Exception:  # a TU bug must not take the listener down
            log.exception("handling %r from %s failed", message, source)
            if isinstance(message, Request) and message.method != "ACK":
                self.send(make_response(message, 500), source)

    def _reject(self, error: SipError, source: Target) -> None:
        self.stats["malformed"] += 1
        log.info("malformed SIP from %s:%s: %s", source.host, source.port, error.reason)
        response = error_response(error)
        if response is not None:
            self.send(response, source)
