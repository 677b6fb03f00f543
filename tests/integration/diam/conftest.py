"""Helpers for the Diameter node tests: a raw-socket remote peer and a node factory.

Every test drives real loopback sockets on ephemeral ports. Helpers are handed out through the
``dk`` fixture (tests use --import-mode=importlib, so this module cannot be imported by name).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest

from diam.constants import (
    APP_BASE,
    APP_CREDIT_CONTROL,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_CREDIT_CONTROL,
    CMD_DEVICE_WATCHDOG,
    CMD_DISCONNECT_PEER,
    VENDOR_3GPP,
)
from diam.identity import LocalIdentity, PeerPolicy, applications_from_names
from diam.message import Avp, Message
from diam.node import Node

TIMEOUT = 5.0


class RawPeer:
    """A remote peer speaking bytes: send anything, read whole messages, observe the close."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._h2h = 0x1000
        self._e2e = 0x2000

    @classmethod
    async def connect(cls, port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send_bytes(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, msg: Message) -> Message:
        if msg.is_request and not msg.hop_by_hop:
            self._h2h += 1
            self._e2e += 1
            msg.hop_by_hop, msg.end_to_end = self._h2h, self._e2e
        self.writer.write(msg.encode())
        return msg

    async def recv(self, timeout: float = TIMEOUT) -> Message:
        header = await asyncio.wait_for(self.reader.readexactly(20), timeout)
        length = int.from_bytes(header[1:4], "big")
        body = await asyncio.wait_for(self.reader.readexactly(length - 20), timeout)
        return Message.decode(header + body)

    async def recv_skipping_dwr(self, timeout: float = TIMEOUT) -> Message:
        while True:
            msg = await self.recv(timeout)
            if not (msg.is_request and msg.command_code == CMD_DEVICE_WATCHDOG):
                return msg

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closes the connection (EOF or reset) within ``timeout``."""
        try:
            while True:
                data = await asyncio.wait_for(self.reader.read(65536), timeout)
                if not data:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    async def request(self, msg: Message, timeout: float = TIMEOUT) -> Message:
        sent = self.send(msg)
        answer = await self.recv_skipping_dwr(timeout)
        assert answer.hop_by_hop == sent.hop_by_hop
        assert answer.end_to_end == sent.end_to_end
        return answer

    async def open(
        self, origin_host: str = "client.test", realm: str = "test", apps: Iterable[Any] = ()
    ) -> Message:
        """CER/CEA; returns the CEA."""
        cea = await self.request(cer(origin_host, realm, apps or [("vsai", APP_CREDIT_CONTROL)]))
        return cea

    async def aclose(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


def cer(origin_host: str, realm: str, apps: Iterable[Any]) -> Message:
    """A CER; ``apps`` items are app ids (Auth-Application-Id) or ("vsai", app_id)."""
    msg = Message.request(
        CMD_CAPABILITIES_EXCHANGE,
        APP_BASE,
        [
            ("Origin-Host", origin_host),
            ("Origin-Realm", realm),
            ("Host-IP-Address", "127.0.0.1"),
            ("Vendor-Id", 0),
            ("Product-Name", "raw-test-peer"),
            ("Origin-State-Id", 7),
        ],
        proxiable=False,
    )
    for app in apps:
        if isinstance(app, tuple):
            msg.add(
                Avp.new(
                    "Vendor-Specific-Application-Id",
                    [("Vendor-Id", VENDOR_3GPP), ("Auth-Application-Id", app[1])],
                )
            )
        else:
            msg.add(Avp.new("Auth-Application-Id", app))
    return msg


def ccr(session_id: str = "s;1", *extra: Any, app: int = APP_CREDIT_CONTROL) -> Message:
    return Message.request(
        CMD_CREDIT_CONTROL,
        app,
        [
            ("Session-Id", session_id),
            ("Origin-Host", "client.test"),
            ("Origin-Realm", "test"),
            ("Destination-Realm", "server.test"),
            ("Auth-Application-Id", app),
            ("CC-Request-Type", 1),
            ("CC-Request-Number", 0),
            *extra,
        ],
    )


def dwr() -> Message:
    return Message.request(
        CMD_DEVICE_WATCHDOG,
        APP_BASE,
        [("Origin-Host", "client.test"), ("Origin-Realm", "test")],
        proxiable=False,
    )


def dpr(cause: int = 0) -> Message:
    return Message.request(
        CMD_DISCONNECT_PEER,
        APP_BASE,
        [("Origin-Host", "client.test"), ("Origin-Realm", "test"), ("Disconnect-Cause", cause)],
        proxiable=False,
    )


def make_node(
    origin_host: str = "server.test",
    realm: str = "server.test",
    apps: Iterable[str] = ("ro",),
    policy: PeerPolicy | None = None,
    **kwargs: Any,
) -> Node:
    identity = LocalIdentity(
        origin_host, realm, ("127.0.0.1",), applications=applications_from_names(apps)
    )
    return Node(identity, policy, **kwargs)


async def echo_ccr(request: Message, peer: Any) -> Message:
    return request.answer(
        2001,
        ("Auth-Application-Id", request.application_id),
        ("CC-Request-Type", request.get("CC-Request-Type")),
        ("CC-Request-Number", request.get("CC-Request-Number")),
    )


async def serving(**kwargs: Any) -> tuple[Node, int]:
    """A listening node (Ro served, CCR echoed unless routes are overridden) and its port."""
    node = make_node(**kwargs)
    node.add_route(APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, echo_ccr)
    _, port = await node.listen("127.0.0.1", 0)
    return node, port


def run(
    factory: Callable[[], Awaitable[Any]], timeout: float = 20.0, *, use_uvloop: bool = False
) -> Any:
    """Run one test coroutine with an overall bound (on uvloop when asked, as ``openpcc run``
    does); fail on any error the event loop saw outside it (an exception escaping a protocol
    callback, a forgotten task)."""
    loop_errors: list[dict[str, Any]] = []

    async def bounded() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: loop_errors.append(ctx))
        return await asyncio.wait_for(factory(), timeout)

    loop_factory = None
    if use_uvloop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(bounded())
    assert not loop_errors, f"event loop errors: {loop_errors}"
    return result


def avp_bytes(code: int, data: bytes, flags: int = 0x40, vendor: int | None = None) -> bytes:
    """Raw AVP wire bytes (padded), lengths computed unless the test wants them wrong."""
    head = 12 if vendor is not None else 8
    length = head + len(data)
    out = struct.pack(">II", code, (flags << 24) | length)
    if vendor is not None:
        out += struct.pack(">I", vendor)
    return out + data + b"\x00" * (-length & 3)


def header_bytes(
    length: int,
    flags: int = 0xC0,
    cmd: int = CMD_CREDIT_CONTROL,
    app: int = APP_CREDIT_CONTROL,
    h2h: int = 0x77,
    e2e: int = 0x88,
    version: int = 1,
) -> bytes:
    return struct.pack(">IIIII", (version << 24) | length, (flags << 24) | cmd, app, h2h, e2e)


@pytest.fixture
def dk() -> SimpleNamespace:
    return SimpleNamespace(
        RawPeer=RawPeer,
        cer=cer,
        ccr=ccr,
        dwr=dwr,
        dpr=dpr,
        make_node=make_node,
        serving=serving,
        echo_ccr=echo_ccr,
        run=run,
        avp_bytes=avp_bytes,
        header_bytes=header_bytes,
    )
