"""The Diameter node: one local identity, its listeners, its peer connections, outbound requests.

Several identities in one process (e.g. the PCRF on 3868 and the OCS on 3869) are several
``Node`` objects; they may share one :class:`~diam.router.Router` and one
:class:`~diam.metrics.Metrics`. A node only serves the applications of its identity (3007 for the
others), so one shared router holds every domain's handlers.

Connection policy (no RFC 6733 §5.6.4 election): one connection per peer. When a second
connection from an Origin-Host completes CER while an older one is open, the newer wins: a peer
that reconnects has usually lost the old connection (restart, NAT or firewall timeout), and the old
one would otherwise linger until its watchdog fails. The older transport is closed without DPR,
because DPR addresses the peer (not a connection) and would ask it to drop the new one too; its
pending requests fail with :class:`~diam.errors.PeerClosed`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable

from diam.base import DISCONNECT_REBOOTING, CerVerdict, evaluate_cer
from diam.constants import ResultCode
from diam.errors import CapabilitiesExchangeFailed, PeerUnavailable
from diam.identity import LocalIdentity, PeerPolicy
from diam.logfmt import log
from diam.message import Avp, Message
from diam.metrics import Metrics
from diam.peer import Peer, PeerState
from diam.router import SESSION_REQUIRED, Handler, Router
from diam.tls import TlsConfig, TlsServer, identity_mismatch


class EndToEndIds:
    """End-to-End Identifiers per RFC 6733 §3: the high 12 bits are the low 12 bits of the start
    time, the low 20 bits a counter starting at a random value."""

    __slots__ = ("_high", "_low")

    def __init__(self, now: float | None = None) -> None:
        self._high = (int(time.time() if now is None else now) & 0xFFF) << 20
        self._low = random.getrandbits(20)

    def next(self) -> int:
        self._low = (self._low + 1) & 0xFFFFF
        return self._high | self._low


class Node:
    """A Diameter node for one :class:`LocalIdentity` (see the module docstring)."""

    def __init__(
        self,
        identity: LocalIdentity,
        policy: PeerPolicy | None = None,
        router: Router | None = None,
        *,
        metrics: Metrics | None = None,
        watchdog: float = 30.0,
        max_in_flight: int = 1024,
        cer_timeout: float = 10.0,
        request_timeout: float = 5.0,
        write_buffer_high: int = 4 << 20,
        dpr_grace: float = 2.0,
        tls: TlsConfig | None = None,
    ) -> None:
        if watchdog <= 0 or max_in_flight < 1:
            raise ValueError("watchdog must be > 0 and max_in_flight >= 1")
        self.identity = identity
        self.policy = policy if policy is not None else PeerPolicy()
        self.router = router if router is not None else Router()
        self.metrics = metrics if metrics is not None else Metrics()
        self.watchdog = watchdog
        self.max_in_flight = max_in_flight
        self.cer_timeout = cer_timeout
        self.request_timeout = request_timeout
        # Bytes queued for a peer (beyond the kernel's buffer) before we stop reading from it.
        self.write_buffer_high = write_buffer_high
        # On DPR, how long handlers still running may take before the DPA (and the close).
        self.dpr_grace = dpr_grace
        # Diameter over TLS from connection start (RFC 6733 §2.1, §13) on listener and connectors.
        self.tls = tls
        self._server_ssl = tls.server_context() if tls is not None else None
        self._client_ssl = tls.client_context() if tls is not None else None
        # RFC 6733 §8.16: a value that grows at each restart; seconds since the epoch do.
        self.origin_state_id = int(time.time()) & 0xFFFFFFFF
        # Shared by every message this node stamps; never mutated after this point.
        self.origin_avps = (
            Avp.new("Origin-Host", identity.origin_host),
            Avp.new("Origin-Realm", identity.origin_realm),
        )
        self._end_to_end = EndToEndIds()
        self._connections: set[Peer] = set()
        self._by_host: dict[str, Peer] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._connectors: set[asyncio.Task[None]] = set()

    # --- routes ------------------------------------------------------------------------------

    def add_route(
        self,
        app_id: int,
        command_code: int,
        handler: Handler,
        *,
        required: Iterable[str] = SESSION_REQUIRED,
    ) -> None:
        """Route requests of ``app_id``/``command_code`` to ``handler`` (see diam.router)."""
        self.router.add_route(app_id, command_code, handler, required=required)

    def route(
        self, app_id: int, command_code: int, *, required: Iterable[str] = SESSION_REQUIRED
    ) -> Callable[[Handler], Handler]:
        """``@node.route(APP_GX, CMD_CREDIT_CONTROL)`` decorator."""
        return self.router.route(app_id, command_code, required=required)

    # --- connections -------------------------------------------------------------------------

    async def listen(self, host: str = "0.0.0.0", port: int = 3868) -> tuple[str, int]:
        """Accept peers on ``host:port`` (port 0 = ephemeral); returns the bound address."""
        loop = asyncio.get_running_loop()
        server: asyncio.AbstractServer
        if self._server_ssl is None:
            server = await loop.create_server(
                lambda: Peer(self, initiator=False), host, port, reuse_address=True
            )
        else:
            server = await TlsServer.start(self, host, port, self._server_ssl, self.cer_timeout)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        log(
            logging.INFO,
            "listening",
            origin_host=self.identity.origin_host,
            origin_realm=self.identity.origin_realm,
            address=f"{bound[0]}:{bound[1]}",
            tls=self.tls is not None,
            applications=",".join(str(a) for a in sorted(self.identity.application_ids)),
        )
        return bound[0], bound[1]

    async def connect(self, host: str, port: int = 3868, *, timeout: float = 10.0) -> Peer:
        """Connect, exchange CER/CEA and return the peer once Open.

        Raises :class:`CapabilitiesExchangeFailed` (CEA not 2001, no common application, or no
        CEA within ``timeout``) and ``OSError`` when the TCP connection fails.
        """
        loop = asyncio.get_running_loop()
        _, peer = await asyncio.wait_for(
            loop.create_connection(
                lambda: Peer(self, initiator=True),
                host,
                port,
                ssl=self._client_ssl,
                ssl_handshake_timeout=timeout if self._client_ssl else None,
            ),
            timeout,
        )
        try:
            return await asyncio.wait_for(asyncio.shield(peer.opened), timeout)
        except TimeoutError:
            peer.abort("no CEA within timeout")
            raise CapabilitiesExchangeFailed(
                f"no CEA from {host}:{port} within {timeout} s"
            ) from None

    def keep_connected(self, host: str, port: int = 3868, *, tc: float = 30.0) -> None:
        """Keep a connection to ``host:port`` up: connect now, and again Tc seconds after each
        failure or loss (RFC 6733 §2.1, Tc default 30 s) until :meth:`close`."""
        task = asyncio.get_running_loop().create_task(self._maintain(host, port, tc))
        self._connectors.add(task)
        task.add_done_callback(self._connectors.discard)

    async def _maintain(self, host: str, port: int, tc: float) -> None:
        remote_host: str | None = None  # learnt from the first CEA
        while True:
            existing = self.peer(remote_host) if remote_host else None
            if existing is not None:
                # The peer connected to us meanwhile: one connection per pair is enough.
                await existing.wait_closed()
            else:
                try:
                    peer = await self.connect(host, port, timeout=min(tc, 10.0))
                except (OSError, CapabilitiesExchangeFailed, TimeoutError) as exc:
                    log(logging.WARNING, "connect_failed", address=f"{host}:{port}", error=exc)
                else:
                    remote_host = peer.origin_host
                    await peer.wait_closed()
            await asyncio.sleep(tc)

    @property
    def peers(self) -> list[Peer]:
        """Peers in the Open state."""
        return [p for p in self._connections if p.state is PeerState.OPEN]

    @property
    def connections(self) -> list[Peer]:
        """Every connection, whatever its state."""
        return list(self._connections)

    def peer(self, origin_host: str) -> Peer | None:
        """The Open peer with this Origin-Host (case-insensitive)."""
        peer = self._by_host.get(origin_host.lower())
        return peer if peer is not None and peer.state is PeerState.OPEN else None

    # --- outbound requests -------------------------------------------------------------------

    async def request(
        self,
        msg: Message,
        *,
        peer: Peer | None = None,
        destination_host: str | None = None,
        destination_realm: str | None = None,
        timeout: float | None = None,
    ) -> Message:
        """Send a request and return its answer.

        The connection is ``peer`` when given; else the Open peer whose Origin-Host is
        ``destination_host`` (or the message's Destination-Host); else the least busy Open peer of
        ``destination_realm`` (or the message's Destination-Realm) that shares the request's
        application. Destination-Host/Realm given as arguments are added to the message when it
        lacks them; Origin-Host/Realm, hop-by-hop and end-to-end ids are filled in.
        Raises :class:`PeerUnavailable`, :class:`~diam.errors.DiameterTimeout` (a
        ``TimeoutError``) or :class:`~diam.errors.PeerClosed`.
        """
        if not msg.is_request:
            raise ValueError("Node.request sends requests; answers are returned by handlers")
        if destination_host is not None and msg.first("Destination-Host") is None:
            msg.add(Avp.new("Destination-Host", destination_host))
        if destination_realm is not None and msg.first("Destination-Realm") is None:
            msg.add(Avp.new("Destination-Realm", destination_realm))
        if peer is None:
            peer = self._select_peer(msg)
        if not msg.end_to_end:
            msg.end_to_end = self._end_to_end.next()
        return await peer.request(msg, self.request_timeout if timeout is None else timeout)

    def _select_peer(self, msg: Message) -> Peer:
        host = msg.get("Destination-Host")
        if host:
            peer = self.peer(host)
            if peer is None:
                raise PeerUnavailable(f"no open peer {host}")
            return peer
        realm = msg.get("Destination-Realm")
        if not realm:
            raise PeerUnavailable("no peer, Destination-Host or Destination-Realm given")
        realm = realm.lower()
        app = msg.application_id
        candidates = [
            p
            for p in self._connections
            if p.state is PeerState.OPEN
            and (p.origin_realm or "").lower() == realm
            and app in p.applications
        ]
        if not candidates:
            raise PeerUnavailable(f"no open peer in realm {realm} for application {app}")
        return min(candidates, key=lambda p: p.pending_count)

    # --- lifecycle ---------------------------------------------------------------------------

    async def close(self, timeout: float = 2.0) -> None:
        """Stop listening, send DPR to every Open peer, wait for the DPAs (up to ``timeout``)
        and close every connection."""
        for task in list(self._connectors):
            task.cancel()
        for server in self._servers:
            server.close()
        await asyncio.gather(
            *(p.disconnect(DISCONNECT_REBOOTING, timeout) for p in list(self._connections)),
            return_exceptions=True,
        )
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    # --- for Peer ----------------------------------------------------------------------------

    def watchdog_interval(self) -> float:
        """Tw jittered per RFC 3539 §3.4.1 (Twinit ± 2 s; ± Twinit/10 for short test values)."""
        jitter = min(2.0, self.watchdog / 10)
        return self.watchdog + random.uniform(-jitter, jitter)

    def tls_mismatch(self, transport: asyncio.BaseTransport | None, origin_host: str) -> str | None:
        """Why ``origin_host`` may not use the connection's TLS certificate (diam.tls), or None."""
        if self.tls is None or not self.tls.verify_origin_host:
            return None
        return identity_mismatch(transport, origin_host)

    def evaluate_cer(
        self, cer: Message, remote_ip: str | None, transport: asyncio.BaseTransport | None
    ) -> CerVerdict:
        """RFC 6733 §5.3 CER checks (diam.base), the TLS certificate bound to Origin-Host first."""
        host, realm = cer.get("Origin-Host"), cer.get("Origin-Realm")
        mismatch = self.tls_mismatch(transport, host) if host else None
        if mismatch is not None:
            return CerVerdict(ResultCode.UNKNOWN_PEER, mismatch, host, realm)
        return evaluate_cer(cer, self.identity, self.policy, remote_ip)

    def next_end_to_end(self) -> int:
        return self._end_to_end.next()

    def _peer_connected(self, peer: Peer) -> None:
        self._connections.add(peer)

    def _peer_opened(self, peer: Peer) -> None:
        key = (peer.origin_host or "").lower()
        older = self._by_host.get(key)
        self._by_host[key] = peer
        if older is not None and older is not peer and older.state is not PeerState.CLOSED:
            older.abort("replaced by a newer connection from the same Origin-Host")

    def _peer_closed(self, peer: Peer) -> None:
        self._connections.discard(peer)
        key = (peer.origin_host or "").lower()
        if self._by_host.get(key) is peer:
            del self._by_host[key]
