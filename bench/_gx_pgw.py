"""The PGW of bench.policy's Gx phase: ``window`` IP-CAN sessions, each a CCR-I, then (once its
CCA-I came) a CCR-T, then the next session, over one raw asyncio connection.

A closed loop waits for its load generator at every turn, so this one costs as little CPU as
bench.charging's client: requests are assembled from AVPs encoded once (only Session-Id and
Framed-IP-Address per session, ids in the header), answers are read only as far as their
Result-Code. The PCRF does exactly the work it does for our diam node's PGW.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field
from typing import cast

from diam.constants import (
    APP_GX,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_CREDIT_CONTROL,
    VENDOR_3GPP,
)
from diam.message import Avp, Message

_HEADER = struct.Struct(">IIIII")
_AVP = struct.Struct(">II")
_REQUEST_FLAGS = 0xC0  # R and P (RFC 6733 §3)
_M = 0x40 << 24  # AVP M bit
_SESSION_ID, _FRAMED_IP, _RESULT_CODE = 263, 8, 268


@dataclass(slots=True)
class GxResult:
    pairs: int = 0  # sessions established and released
    failures: int = 0  # answers without Result-Code 2001
    latencies: list[float] = field(default_factory=list)  # per CCR, seconds


class GxPgw(asyncio.Protocol):
    """Keeps ``window`` sessions in flight until ``deadline`` (perf_counter), then lets them end;
    ``done`` resolves when the last CCA-T came."""

    def __init__(self, origin_host: str, realm: str, imsi: str, window: int) -> None:
        self.window = window
        self.deadline = 0.0
        self.result = GxResult()
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._origin = origin_host
        self._cer = _cer(origin_host, realm)
        self._initial, self._terminate = _tails(origin_host, realm, imsi)
        self._sessions = 0
        self._in_flight: dict[int, tuple[int, bool, float]] = {}  # hop-by-hop -> (n, CCR-I?, t0)
        self._next_id = 1
        self._buffer = b""
        self._out: list[bytes] = []
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._cer)

    def run(self, duration: float) -> None:
        self.deadline = time.perf_counter() + duration
        for _ in range(self.window):
            self._begin()
        self._flush()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _begin(self) -> None:
        self._sessions += 1
        self._send(self._sessions, True)

    def _send(self, n: int, initial: bool) -> None:
        ident = self._next_id
        self._next_id = (ident + 1) & 0xFFFFFFFF
        sid = f"{self._origin};{n}".encode()
        body = [_AVP.pack(_SESSION_ID, _M | (8 + len(sid))), sid, b"\0" * (-len(sid) % 4)]
        if initial:
            ip = (0x0A000000 + n).to_bytes(4, "big")  # 10.x.y.z, as the Rx phase's UEs
            body += [self._initial, _AVP.pack(_FRAMED_IP, _M | 12), ip]
        else:
            body.append(self._terminate)
        avps = b"".join(body)
        length = 20 + len(avps)
        self._out.append(_HEADER.pack((1 << 24) | length, (_REQUEST_FLAGS << 24)
                                      | CMD_CREDIT_CONTROL, APP_GX, ident, ident))  # fmt: skip
        self._out.append(avps)
        self._in_flight[ident] = (n, initial, time.perf_counter())

    def _flush(self) -> None:
        if self._out and self._transport is not None:
            self._transport.write(b"".join(self._out))
            self._out.clear()

    def data_received(self, data: bytes) -> None:
        buf = self._buffer + data if self._buffer else data
        pos, size = 0, len(buf)
        now = time.perf_counter()
        result = self.result
        while size - pos >= 20:
            length = int.from_bytes(buf[pos + 1 : pos + 4], "big")
            if size - pos < length:
                break
            flags, cmd = buf[pos + 4], int.from_bytes(buf[pos + 5 : pos + 8], "big")
            code = _result_code(buf, pos, length)
            if flags & 0x80:
                pass  # a DWR: the bench runs shorter than Tw
            elif cmd == CMD_CAPABILITIES_EXCHANGE:
                if code != 2001:
                    self.open.set_exception(ConnectionError(f"CEA Result-Code {code}"))
                elif not self.open.done():
                    self.open.set_result(None)
            else:
                n, initial, started = self._in_flight.pop(_HEADER.unpack_from(buf, pos)[3])
                result.latencies.append(now - started)
                if code != 2001:
                    result.failures += 1
                if initial and code == 2001:
                    self._send(n, False)
                else:
                    result.pairs += not initial
                    if now < self.deadline:
                        self._begin()
                    elif not self._in_flight and not self.done.done():
                        self.done.set_result(None)
            pos += length
        self._buffer = buf[pos:]
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.open, self.done):
            if not future.done():
                future.set_exception(ConnectionError("PCRF closed the connection"))


def _result_code(buf: bytes, pos: int, length: int) -> int | None:
    """The top-level Result-Code of the message at ``buf[pos:]``, else None."""
    at, end = pos + 20, pos + length
    while at + 8 <= end:
        code, word = _AVP.unpack_from(buf, at)
        if code == _RESULT_CODE and not word & (0x80 << 24):
            return int.from_bytes(buf[at + 8 : at + 12], "big")
        at += ((word & 0xFFFFFF) + 3) & ~3
    return None


def _cer(origin_host: str, realm: str) -> bytes:
    msg = Message.request(CMD_CAPABILITIES_EXCHANGE, 0, [
        ("Origin-Host", origin_host), ("Origin-Realm", realm),
        ("Host-IP-Address", "127.0.0.1"), ("Vendor-Id", 0), ("Product-Name", "openpcc-bench"),
        Avp.new("Vendor-Specific-Application-Id",
                [("Vendor-Id", VENDOR_3GPP), ("Auth-Application-Id", APP_GX)]),
    ], proxiable=False)  # fmt: skip
    msg.hop_by_hop = msg.end_to_end = 1
    return msg.encode()


def _tails(origin_host: str, realm: str, imsi: str) -> tuple[bytes, bytes]:
    """The AVPs after Session-Id of every CCR-I (Framed-IP-Address follows) and CCR-T."""
    head = [("Origin-Host", origin_host), ("Origin-Realm", realm),
            ("Auth-Application-Id", APP_GX), ("Destination-Realm", realm)]  # fmt: skip
    initial = [*head, ("CC-Request-Type", 1), ("CC-Request-Number", 0),
               Avp.new("Subscription-Id", [("Subscription-Id-Type", 1),
                                           ("Subscription-Id-Data", imsi)]),
               ("Called-Station-Id", "ims")]  # fmt: skip
    terminate = [*head, ("CC-Request-Type", 3), ("CC-Request-Number", 1)]
    return (b"".join(Avp.new(*a).wire() if isinstance(a, tuple) else a.wire() for a in initial),
            b"".join(Avp.new(*a).wire() for a in terminate))  # fmt: skip
