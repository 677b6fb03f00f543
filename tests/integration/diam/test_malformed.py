"""Hostile input (issue 2 item 5): each case gets its exact answer or a prompt close, and a second,
well-behaved peer on the same node keeps getting answers meanwhile."""

from __future__ import annotations

import asyncio
import random
import struct
import time

import pytest

from diam.constants import CMD_DEVICE_WATCHDOG, FLAG_ERROR, ResultCode
from diam.message import Message


def _base_avps(dk, session: bytes = b"s;bad") -> bytes:
    return (
        dk.avp_bytes(263, session)  # Session-Id
        + dk.avp_bytes(264, b"bad.test")  # Origin-Host
        + dk.avp_bytes(296, b"test")  # Origin-Realm
        + dk.avp_bytes(283, b"server.test")  # Destination-Realm
    )


def _frame(dk, body: bytes, *, extra: bytes = b"", **header) -> bytes:
    """A request frame whose Message-Length covers ``body + extra``."""
    return dk.header_bytes(20 + len(body) + len(extra), **header) + body + extra


def _cases(dk):
    base = _base_avps(dk)
    short_avp = struct.pack(">II", 416, (0x40 << 24) | 5)  # CC-Request-Type, length 5 < 8
    overrun = struct.pack(">II", 415, (0x40 << 24) | 200) + b"\x00" * 4  # claims 200 octets
    nested_short = dk.avp_bytes(
        456,  # Multiple-Services-Credit-Control
        dk.avp_bytes(432, b"\x00\x00\x00\x64") + struct.pack(">II", 432, (0x40 << 24) | 3),
    )
    short_enum = dk.avp_bytes(416, b"\x00\x01")  # CC-Request-Type with 2 octets of data
    return {
        # RFC 6733 §7.1.5: 5011 for a version other than 1 (not a header-bit error)
        "bad version": (
            _frame(dk, base, version=2),
            ResultCode.UNSUPPORTED_VERSION,
            False,
            None,
        ),
        "reserved header bits": (
            _frame(dk, base, flags=0xC1),
            ResultCode.INVALID_HDR_BITS,
            True,
            None,
        ),
        "E bit on a request": (
            _frame(dk, base, flags=0xA0),
            ResultCode.INVALID_HDR_BITS,
            True,
            None,
        ),
        "AVP length below header": (
            _frame(dk, base + short_avp),
            ResultCode.INVALID_AVP_LENGTH,
            False,
            short_avp[:8],
        ),
        "AVP overrunning the message": (
            _frame(dk, base + overrun),
            ResultCode.INVALID_AVP_LENGTH,
            False,
            overrun[:8],
        ),
        "AVP length error inside a group": (
            _frame(dk, base + nested_short),
            ResultCode.INVALID_AVP_LENGTH,
            False,
            struct.pack(">I", 432),
        ),
        "fixed-size AVP with the wrong data length": (
            _frame(dk, base + short_enum),
            ResultCode.INVALID_AVP_LENGTH,
            False,
            struct.pack(">I", 416),
        ),
        "Message-Length not a multiple of 4": (
            _frame(dk, base, extra=b"\x00\x00"),
            ResultCode.INVALID_MESSAGE_LENGTH,
            False,
            None,
        ),
    }


CASE_NAMES = [
    "bad version",
    "reserved header bits",
    "E bit on a request",
    "AVP length below header",
    "AVP overrunning the message",
    "AVP length error inside a group",
    "fixed-size AVP with the wrong data length",
    "Message-Length not a multiple of 4",
]


async def _open_pair(dk, **kwargs):
    node, port = await dk.serving(**kwargs)
    good = await dk.RawPeer.connect(port)
    await good.open(origin_host="good.test")
    return node, port, good


async def _good_is_served(dk, good, label: str) -> None:
    answer = await good.request(dk.ccr(f"s;good;{label}"), timeout=2.0)
    assert answer.get("Result-Code") == ResultCode.SUCCESS


@pytest.mark.parametrize("case", CASE_NAMES)
def test_malformed_request_gets_its_error_answer(dk, case):
    async def main():
        node, port, good = await _open_pair(dk)
        bad = await dk.RawPeer.connect(port)
        await bad.open(origin_host="bad.test")
        frame, code, e_bit, failed_prefix = _cases(dk)[case]
        bad.send_bytes(frame)
        answer = await bad.recv(2.0)
        assert not answer.is_request
        assert answer.get("Result-Code") == code
        assert bool(answer.flags & FLAG_ERROR) == e_bit
        assert (answer.hop_by_hop, answer.end_to_end) == (0x77, 0x88)
        assert answer.get("Origin-Host") == "server.test"
        failed = answer.first("Failed-AVP")
        if failed_prefix is None:
            assert failed is None
        else:
            assert failed is not None and failed.data.startswith(failed_prefix)
        # the offender's connection still works, and so does everyone else's
        await _good_is_served(dk, bad, case)
        await _good_is_served(dk, good, case)
        await node.close(0.2)

    dk.run(main)


def _closing_cases(dk):
    return {
        "Message-Length 0": dk.header_bytes(0),
        "Message-Length below the header": dk.header_bytes(12) + b"\x00" * 8,
        "Message-Length above 1 MiB": dk.header_bytes((1 << 20) + 4),  # body never sent
        "not Diameter at all": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }


@pytest.mark.parametrize(
    "case",
    [
        "Message-Length 0",
        "Message-Length below the header",
        "Message-Length above 1 MiB",
        "not Diameter at all",
    ],
)
def test_lost_framing_closes_that_connection_at_once(dk, case):
    async def main():
        node, port, good = await _open_pair(dk)
        bad = await dk.RawPeer.connect(port)
        await bad.open(origin_host="bad.test")
        started = time.monotonic()
        bad.send_bytes(_closing_cases(dk)[case])
        assert await bad.closed(2.0)
        assert time.monotonic() - started < 1.5
        await _good_is_served(dk, good, case)
        assert [p.origin_host for p in node.peers] == ["good.test"]
        await node.close(0.2)

    dk.run(main)


@pytest.mark.parametrize("what", ["CCR", "DWR", "framing error"])
def test_anything_before_cer_closes_the_connection(dk, what):
    async def main():
        node, port, good = await _open_pair(dk)
        early = await dk.RawPeer.connect(port)
        if what == "CCR":
            early.send(dk.ccr("s;early"))
        elif what == "DWR":
            early.send(dk.dwr())
        else:
            early.send_bytes(dk.header_bytes(0))
        assert await early.closed(2.0)
        await _good_is_served(dk, good, what)
        await node.close(0.2)

    dk.run(main)


def test_a_peer_that_never_completes_cer_is_dropped(dk):
    async def main():
        node, port, good = await _open_pair(dk, cer_timeout=0.3)
        silent = await dk.RawPeer.connect(port)
        half = await dk.RawPeer.connect(port)
        half.send_bytes(dk.cer("half.test", "test", [4]).encode()[:30])  # a partial CER
        assert await silent.closed(2.0)
        assert await half.closed(2.0)
        await _good_is_served(dk, good, "slow CER")
        await node.close(0.2)

    dk.run(main)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_mutated_requests_never_crash_hang_or_spin(dk, use_uvloop):
    """200 seeded random corruptions of a valid CCR (the length word kept, so framing holds):
    each is answered or closes its connection, a DWR right behind it is answered, and the
    well-behaved peer is served throughout."""
    rng = random.Random(20261125)
    template = dk.ccr("s;fuzz", ("Service-Context-Id", "32260@3gpp.org")).encode()

    async def main():
        node, port, good = await _open_pair(dk)
        cpu_before = time.process_time()
        outcomes = {"answered": 0, "closed": 0}
        for i in range(200):
            frame = bytearray(template)
            for _ in range(rng.randint(1, 6)):
                frame[rng.randrange(4, len(frame))] = rng.randrange(256)
            peer = await dk.RawPeer.connect(port)
            await peer.open(origin_host=f"fuzz{i}.test")
            peer.send_bytes(bytes(frame))
            probe = peer.send(dk.dwr())
            try:
                while True:
                    msg = await peer.recv(2.0)
                    if msg.command_code == CMD_DEVICE_WATCHDOG and not msg.is_request:
                        assert msg.hop_by_hop == probe.hop_by_hop
                        outcomes["answered"] += 1
                        break
            except (asyncio.IncompleteReadError, ConnectionError):
                outcomes["closed"] += 1
            await peer.aclose()
            if i % 50 == 0:
                await _good_is_served(dk, good, f"fuzz {i}")
        await _good_is_served(dk, good, "fuzz end")
        assert outcomes["answered"] > 100  # most corruptions are answered, not fatal
        assert time.process_time() - cpu_before < 10
        await node.close(0.2)

    dk.run(main, timeout=60, use_uvloop=use_uvloop)


def test_undecodable_answer_is_dropped_and_the_request_fails_fast(dk):
    async def main():
        server = await asyncio.start_server(_answers_garbage, "127.0.0.1", 0)
        client = dk.make_node("client.test", "test")
        peer = await client.connect("127.0.0.1", server.sockets[0].getsockname()[1])
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            await client.request(dk.ccr("s;x"), peer=peer, timeout=3.0)
        assert getattr(caught.value, "result_code", None) == ResultCode.INVALID_AVP_LENGTH
        assert time.monotonic() - started < 1.5
        assert peer.pending_count == 0
        await client.close(0.2)
        server.close()
        await server.wait_closed()

    dk.run(main)


async def _answers_garbage(reader, writer):
    async def read():
        header = await reader.readexactly(20)
        return Message.decode(header + await reader.readexactly(
            int.from_bytes(header[1:4], "big") - 20))  # fmt: skip

    cer = await read()
    writer.write(cer.answer(
        ResultCode.SUCCESS, ("Origin-Host", "garbage.test"), ("Origin-Realm", "test"),
        ("Host-IP-Address", "127.0.0.1"), ("Vendor-Id", 0), ("Product-Name", "g"),
        ("Auth-Application-Id", 4)).encode())  # fmt: skip
    request = await read()
    bad_avp = struct.pack(">II", 268, (0x40 << 24) | 5)  # Result-Code with length 5
    header = struct.pack(">IIIII", (1 << 24) | 28, 272, 4, request.hop_by_hop, request.end_to_end)
    writer.write(header + bad_avp)
    await reader.read()
    writer.close()
