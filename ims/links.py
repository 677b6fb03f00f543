"""A Diameter client connection the IMS core keeps to one peer (PCRF, OCS): connected lazily,
re-established after loss, shared when two roles point at the same peer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from diam.message import Message
from diam.node import Node
from diam.peer import Peer, PeerState

log = logging.getLogger("openpcc.ims")


class PeerLink:
    def __init__(
        self, node: Node, host: str, port: int, realm: str, connect_timeout: float = 3.0
    ) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.realm = realm
        self.connect_timeout = connect_timeout
        self.peer: Peer | None = None
        self._lock = asyncio.Lock()
        # Called with ("request", msg) and ("answer", msg) for every exchange (ladders, tests).
        self.observers: list[Callable[[str, Message], None]] = []

    @property
    def is_open(self) -> bool:
        return self.peer is not None and self.peer.state is PeerState.OPEN

    async def ensure(self) -> Peer:
        """The open connection, (re)connecting first when needed."""
        if self.is_open:
            assert self.peer is not None
            return self.peer
        async with self._lock:
            if not self.is_open:
                self.peer = await self.node.connect(
                    self.host, self.port, timeout=self.connect_timeout
                )
                log.info(
                    "event=diameter_connected peer=%s:%s host=%s",
                    self.host,
                    self.port,
                    self.peer.origin_host,
                )
        assert self.peer is not None
        return self.peer

    async def request(self, message: Message, timeout: float) -> Message:
        peer = await self.ensure()
        if message.first("Destination-Realm") is None:
            message.add(("Destination-Realm", self.realm))
        for observe in self.observers:
            observe("request", message)
        answer = await self.node.request(message, peer=peer, timeout=timeout)
        for observe in self.observers:
            observe("answer", answer)
        return answer
