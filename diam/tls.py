"""Diameter over TLS (RFC 6733 §13): contexts from settings, the accepting handshake, and the
binding of a certificate to the Diameter identity.

Model: TLS from connection start on a dedicated port (RFC 6733 §2.1, 5658 registered for
Diameter over TLS), as RFC 6733 recommends for new deployments. The RFC 3588 in-band upgrade
(Inband-Security-Id TLS(1) in CER/CEA, then a handshake on the open connection; its use is NOT
RECOMMENDED by RFC 6733 §6.10) is not supported: a CER offering it on a plain listener is
answered as any CER, by a CEA without Inband-Security-Id, so the peer decides whether to go on
without TLS or to disconnect.

Identity binding: when the peer presents a certificate, the Origin-Host of its CER (listener) or
CEA (connector) must equal one of the certificate's subjectAltName DNS names or, when it has
none, its subject commonName (RFC 6125 §6.4.4; names compare case-insensitively, no wildcards).
A mismatch is answered with 3010 DIAMETER_UNKNOWN_PEER and the connection is closed; the peer
allowlist applies as on plain connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from diam.logfmt import log

if TYPE_CHECKING:
    from diam.node import Node

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS for one node's listener and connectors.

    ``cert`` is a PEM file with our certificate first and its chain after; ``key`` its private key
    (empty: in ``cert``); ``ca`` the PEM bundle that peers' certificates must chain to (empty:
    the system's CAs). ``require_client_cert`` makes the listener refuse, at the handshake, a
    client without a valid certificate (mutual TLS); without it a presented certificate is still
    verified and bound. ``ciphers`` is an OpenSSL cipher string for TLS 1.2 (empty: OpenSSL's
    defaults; TLS 1.3 suites are not configurable through it).
    """

    cert: str
    key: str = ""
    ca: str = ""
    require_client_cert: bool = True
    min_version: str = "1.2"
    ciphers: str = ""
    verify_origin_host: bool = True

    def __post_init__(self) -> None:
        if not self.cert:
            raise ValueError("Diameter TLS needs a certificate (PEM chain)")
        if self.min_version not in _VERSIONS:
            raise ValueError(f"TLS minimum version must be one of {sorted(_VERSIONS)}")

    def server_context(self) -> ssl.SSLContext:
        """For a listener: our chain, client certificates required (or optional) and verified."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._configure(ctx, ssl.Purpose.CLIENT_AUTH)
        ctx.verify_mode = ssl.CERT_REQUIRED if self.require_client_cert else ssl.CERT_OPTIONAL
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """For a connector: the server's certificate is verified against ``ca``. Host names are
        not checked against the address dialled (peers are often dialled by IP); the certificate
        is bound to the CEA's Origin-Host instead (see the module docstring)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        self._configure(ctx, ssl.Purpose.SERVER_AUTH)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def _configure(self, ctx: ssl.SSLContext, purpose: ssl.Purpose) -> None:
        """Raises ValueError naming the setting that cannot be used (a bad path, PEM or cipher)."""
        ctx.minimum_version = _VERSIONS[self.min_version]
        try:
            ctx.load_cert_chain(self.cert, self.key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"Diameter TLS certificate {self.cert} (key {self.key}): {exc}"
            ) from None
        try:
            if self.ca:
                ctx.load_verify_locations(cafile=self.ca)
            else:
                ctx.load_default_certs(purpose)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"Diameter TLS CA bundle {self.ca}: {exc}") from None
        if self.ciphers:
            try:
                ctx.set_ciphers(self.ciphers)
            except ssl.SSLError as exc:
                raise ValueError(f"Diameter TLS ciphers {self.ciphers!r}: {exc}") from None


def certificate_names(cert: dict[str, Any] | None) -> tuple[str, ...]:
    """The DNS names a verified peer certificate (``SSLSocket.getpeercert()``) stands for:
    its subjectAltName DNS entries or, when there are none, its subject commonName."""
    if not cert:
        return ()
    dns = tuple(value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS")
    if dns:
        return dns
    return tuple(
        value for rdn in cert.get("subject", ()) for key, value in rdn if key == "commonName"
    )


def identity_mismatch(transport: asyncio.BaseTransport | None, origin_host: str) -> str | None:
    """Why ``origin_host`` may not use this connection's peer certificate, or None when it may
    (also when the connection is not TLS or the peer sent no certificate)."""
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    names = certificate_names(cert)
    if origin_host.lower() in (name.lower() for name in names):
        return None
    return f"Origin-Host {origin_host} not in the TLS certificate names {list(names)}"


class TlsServer(asyncio.AbstractServer):
    """A TLS listener: accepts TCP connections and runs each server handshake in its own task
    (``connect_accepted_socket``), so that a failed handshake is logged with its reason and the
    peer address, counted, and does not disturb the others. A Peer gets the connection only once
    the handshake has succeeded."""

    def __init__(
        self, node: Node, sock: socket.socket, context: ssl.SSLContext, timeout: float
    ) -> None:
        self._node = node
        self._sock = sock
        self._context = context
        self._timeout = timeout
        self._handshakes: set[asyncio.Task[None]] = set()
        self._accepting = asyncio.get_running_loop().create_task(self._accept())
        self.sockets = (sock,)

    @classmethod
    async def start(
        cls, node: Node, host: str, port: int, context: ssl.SSLContext, timeout: float
    ) -> TlsServer:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=100)
        sock.setblocking(False)
        return cls(node, sock, context, timeout)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, remote = await loop.sock_accept(self._sock)
            except OSError as exc:  # e.g. EMFILE: keep listening, as asyncio's servers do
                log(logging.ERROR, "accept_failed", error=exc)
                await asyncio.sleep(1.0)
                continue
            task = loop.create_task(self._handshake(conn, remote))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, conn: socket.socket, remote: Any) -> None:
        from diam.peer import Peer

        node = self._node
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: Peer(node, initiator=False),
                conn,
                ssl=self._context,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            conn.close()
            node.metrics.peer_event("tls_handshake_failed")
            log(
                logging.WARNING,
                "tls_handshake_failed",
                origin_host=node.identity.origin_host,
                remote=f"{remote[0]}:{remote[1]}",
                error=exc,
            )

    # --- asyncio.AbstractServer ------------------------------------------------------------

    def close(self) -> None:
        self._accepting.cancel()
        for task in list(self._handshakes):
            task.cancel()
        self._sock.close()

    async def wait_closed(self) -> None:
        await asyncio.gather(self._accepting, *self._handshakes, return_exceptions=True)

    def is_serving(self) -> bool:
        return not self._accepting.done()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._accepting.get_loop()
