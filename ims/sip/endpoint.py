"""The SIP endpoint: a transport, the transaction layer and dispatch to one transaction user.

The transaction user (a UA, the registrar/proxy core) implements ``on_request`` and
``on_stray_response``. Server transactions are created before the TU sees a request; ACKs for 2xx
(no transaction, §17.1.1.3) and responses without a client transaction (2xx retransmissions,
§16.7) reach the TU directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ims.sip.message import Message, Request, Response, Via, new_branch, peek_via
from ims.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Target,
    Timers,
    TransactionLayer,
    shared_target,
)
from ims.sip.transport import SipTransport
from ims.sip.uri import SipUri

log = logging.getLogger(__name__)


class TransactionUser(Protocol):
    def on_request(
        self, request: Request, tx: ServerTransaction | None, source: Target
    ) -> None: ...

    def on_stray_response(self, response: Response, source: Target) -> None: ...


def target_for_uri(uri: SipUri, default_transport: str = "UDP") -> Target:
    """Next-hop address for a SIP URI (RFC 3263 without DNS: numeric hosts and explicit ports)."""
    transport = (uri.params.get("transport") or default_transport).upper()
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    return shared_target("TCP" if transport == "TCP" else "UDP", host, uri.port or 5060)


def response_target(via: Via) -> Target:
    """Where a response goes per its Via (RFC 3261 §18.2.2, RFC 3581 rport)."""
    host = via.params.get("received") or via.host
    host = host[1:-1] if host.startswith("[") else host
    rport = via.params.get("rport")
    port = int(rport) if rport and rport.isdigit() else (via.port or 5060)
    return shared_target("TCP" if via.transport == "TCP" else "UDP", host, port)


class Endpoint:
    """SIP transport + transactions, bound to ``host:port`` for UDP and TCP."""

    def __init__(self, tu: TransactionUser, timers: Timers | None = None) -> None:
        self.tu = tu
        self.timers = timers or Timers()
        self.transport = SipTransport(self._on_message, self._on_transport_error)
        self.transactions: TransactionLayer | None = None
        self.observers: list[Callable[[str, Message, Target], None]] = []

    @property
    def host(self) -> str:
        return self.transport.host

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def layer(self) -> TransactionLayer:
        assert self.transactions is not None, "endpoint not started"
        return self.transactions

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.transactions = TransactionLayer(self._send, self.timers)
        await self.transport.start(host, port)

    async def close(self) -> None:
        if self.transactions:
            self.transactions.close()
        await self.transport.close()

    def uri(self, user: str | None = None, transport: str = "UDP") -> SipUri:
        params: dict[str, str | None] = {}
        if transport == "TCP":
            params["transport"] = "tcp"
        return SipUri("sip", user, self.host, self.port, params)

    def via(self, transport: str, branch: str | None = None) -> str:
        """A Via value for this endpoint (rport requested, RFC 3581)."""
        return f"SIP/2.0/{transport} {self.host}:{self.port};branch={branch or new_branch()};rport"

    def request(
        self,
        request: Request,
        target: Target,
        on_response: Callable[[ClientTransaction, Response], None] | None = None,
    ) -> ClientTransaction:
        """Send a request in a new client transaction (its top Via must be ours)."""
        return self.layer.client(request, target, on_response)

    def send(self, message: Message, target: Target) -> None:
        """Send outside any transaction (ACK for 2xx, stateless forwarding)."""
        self._send(message, target)

    def _send(self, message: Message, target: Target) -> None:
        for observe in self.observers:
            observe("out", message, target)
        self.transport.send(message, target)

    def _on_transport_error(self, target: Target) -> None:
        for tx in list(self.layer.clients.values()):
            if tx.target == target:
                tx.transport_error()

    def _on_message(self, message: Request | Response, source: Target) -> None:
        for observe in self.observers:
            observe("in", message, source)
        if isinstance(message, Response):
            tx = self.layer.match_client(message)
            if tx is None or not tx.receive(message):
                self.tu.on_stray_response(message, source)
            return
        _mark_received(message, source)
        server = self.layer.match_server(message)
        if server is not None:
            server.receive_request(message)
            return
        if message.method == "ACK":
            self.tu.on_request(message, None, source)
            return
        self.tu.on_request(message, self.layer.server(message, source), source)


def _mark_received(request: Request, source: Target) -> None:
    """Add received/rport to the top Via (RFC 3261 §18.2.1, RFC 3581 §4)."""
    raw = request.headers.get("Via")
    if raw is None:
        return
    seen = peek_via(raw)
    if seen.host.strip("[]") == source.host and not (
        "rport" in seen.params and seen.params["rport"] is None
    ):
        return  # nothing to add: no copy
    via = request.top_via
    changed = False
    if via.host.strip("[]") != source.host:
        via.params["received"] = source.host
        changed = True
    if "rport" in via.params and via.params["rport"] is None:
        via.params["rport"] = str(source.port)
        changed = True
    if changed:
        request.headers.pop_first("Via")
        request.headers.prepend("Via", str(via))
