"""A pipelined Diameter load client: K connections, a window of N requests in flight on each.

The client costs as little CPU as possible so the server is what gets measured: each request is
one pre-encoded CCR whose hop-by-hop and end-to-end ids are patched in place, and each answer is
matched by reading its header only.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field
from typing import cast

from diam.constants import (
    APP_BASE,
    APP_CREDIT_CONTROL,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_CREDIT_CONTROL,
    CMD_DEVICE_WATCHDOG,
    VENDOR_3GPP,
)
from diam.message import Avp, Message

_IDS = struct.Struct(">II")


def cer_bytes(origin_host: str) -> bytes:
    msg = Message.request(
        CMD_CAPABILITIES_EXCHANGE,
        APP_BASE,
        [
            ("Origin-Host", origin_host),
            ("Origin-Realm", "bench.test"),
            ("Host-IP-Address", "127.0.0.1"),
            ("Vendor-Id", 0),
            ("Product-Name", "openpcc-bench"),
            Avp.new(
                "Vendor-Specific-Application-Id",
                [("Vendor-Id", VENDOR_3GPP), ("Auth-Application-Id", APP_CREDIT_CONTROL)],
            ),
        ],
        proxiable=False,
    )
    msg.hop_by_hop, msg.end_to_end = 1, 1
    return msg.encode()


def ccr_template(origin_host: str, connection: int) -> bytearray:
    """A Ro CCR-I like an S-CSCF's (TS 32.299), ids zero: patched per request."""
    msg = Message.request(
        CMD_CREDIT_CONTROL,
        APP_CREDIT_CONTROL,
        [
            ("Session-Id", f"{origin_host};{connection};bench"),
            ("Origin-Host", origin_host),
            ("Origin-Realm", "bench.test"),
            ("Destination-Realm", "ocs.test"),
            ("Auth-Application-Id", APP_CREDIT_CONTROL),
            ("Service-Context-Id", "32260@3gpp.org"),
            ("CC-Request-Type", 1),
            ("CC-Request-Number", 0),
            Avp.new(
                "Subscription-Id",
                [("Subscription-Id-Type", 0), ("Subscription-Id-Data", "491700000001")],
            ),
            Avp.new(
                "Multiple-Services-Credit-Control",
                [
                    Avp.new("Requested-Service-Unit", [("CC-Time", 300)]),
                    ("Service-Identifier", 1000),
                    ("Rating-Group", 100),
                ],
            ),
        ],
    )
    return bytearray(msg.encode())


@dataclass(slots=True)
class Stats:
    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    recording: bool = False
    errors: int = 0


class LoadConnection(asyncio.Protocol):
    """Keeps ``window`` CCRs in flight: each answer immediately triggers the next request."""

    def __init__(self, stats: Stats, window: int, index: int) -> None:
        self.stats = stats
        self.window = window
        self.origin_host = f"bench-client-{index}"  # one Origin-Host per connection
        self.template = ccr_template(self.origin_host, index)
        self.sent: dict[int, float] = {}
        self.next_id = (index << 24) + 1
        self.buffer = b""
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopping = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.write(cer_bytes(self.origin_host))

    def start(self) -> None:
        self._send(self.window)

    def _send(self, count: int) -> None:
        assert self.transport is not None
        out = []
        now = time.perf_counter()
        template = self.template
        for _ in range(count):
            ident = self.next_id
            self.next_id = (ident + 1) & 0xFFFFFFFF
            _IDS.pack_into(template, 12, ident, ident)
            out.append(bytes(template))
            self.sent[ident] = now
        self.transport.write(b"".join(out))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pos, size = 0, len(buf)
        replies = 0
        now = time.perf_counter()
        stats = self.stats
        while size - pos >= 20:
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if size - pos < length:
                break
            cmd = int.from_bytes(buf[pos + 5 : pos + 8], "big")
            flags = buf[pos + 4]
            if cmd == CMD_CAPABILITIES_EXCHANGE:
                if not self.open.done():
                    self.open.set_result(None)
            elif cmd == CMD_DEVICE_WATCHDOG and flags & 0x80:
                pass  # the bench runs shorter than Tw
            else:
                h2h = int.from_bytes(buf[pos + 12 : pos + 16], "big")
                started = self.sent.pop(h2h, None)
                if started is None or flags & 0x20:
                    stats.errors += 1
                elif stats.recording:
                    stats.latencies.append(now - started)
                    stats.answered += 1
                replies += 1
            pos += length
        self.buffer = buf[pos:]
        if replies and not self.stopping:
            self._send(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError("closed before CEA"))


async def run_load(
    port: int, connections: int, window: int, warmup: float, duration: float, on_measure
) -> Stats:
    """Load ``port``; ``on_measure(start: bool)`` brackets the measured interval."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    conns: list[LoadConnection] = []
    for i in range(connections):
        _, conn = await loop.create_connection(
            lambda i=i: LoadConnection(stats, window, i), "127.0.0.1", port
        )
        await asyncio.wait_for(conn.open, 5)
        conns.append(conn)
    for conn in conns:
        conn.start()
    await asyncio.sleep(warmup)
    on_measure(True)
    stats.recording = True
    await asyncio.sleep(duration)
    stats.recording = False
    on_measure(False)
    for conn in conns:
        conn.stopping = True
        assert conn.transport is not None
        conn.transport.close()
    return stats
