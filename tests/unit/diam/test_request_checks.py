"""The node's pre-handler checks (RFC 6733 §6.1, §7): which request gets 5001 with which
Failed-AVP, 5005, or a decode error (5014/5004/3009), decided from the request bytes.

The check splits Grouped AVPs of small requests while it looks for unknown M-bit AVPs (the handler
reads them anyway); the verdict must be exactly the one of a plain scan of the bytes, for valid
and for damaged requests alike, and the values a handler reads must not change.
"""

from __future__ import annotations

import random
import struct

import pytest

from bench._diameter_samples import GX_CCR_I, RO_CCR_U, RX_AAR, build
from diam.constants import AVP_FLAG_MANDATORY, ResultCode
from diam.dictionary import AvpType, avp_by_code
from diam.message import DecodeError, Message
from diam.router import (
    PREWALK_LIMIT,
    SESSION_REQUIRED,
    Route,
    check_request,
    missing_avp_example,
    unknown_mandatory_avp,
)

REQUESTS = [build(spec).encode() for spec in (RO_CCR_U, GX_CCR_I, RX_AAR)]


async def _handler(request: Message, peer: object) -> Message:
    return request.answer(ResultCode.SUCCESS)


ROUTE = Route(_handler, (*SESSION_REQUIRED, "Auth-Application-Id"))


def _verdict(run):
    """(kind, detail) of a check: None, ("5001", Failed-AVP octets), ("5005", its text) or
    (decode error code, its Failed-AVP octets)."""
    try:
        error = run()
    except DecodeError as err:
        return err.result_code, err.failed_avp
    if error is None:
        return None
    failed = error.failed_avp.wire() if error.failed_avp is not None else None
    return error.result_code, failed, error.error_message


def _reference(wire: bytes):
    """The byte scan alone, then the required AVPs by name: the verdict before the shortcut
    (its DecodeError raised)."""
    msg = Message.decode(wire)
    unknown = unknown_mandatory_avp(wire)
    if unknown is not None:
        text = f"AVP {unknown.code} (vendor {unknown.vendor}) unknown"
        return ResultCode.AVP_UNSUPPORTED, unknown.wire(), text
    for name in ROUTE.required:
        if msg.first(name) is None:
            return ResultCode.MISSING_AVP, missing_avp_example(name).wire(), f"{name} missing"
    return None


def _values(avps) -> list:
    out = []
    for avp in avps:
        try:
            value = avp.value
        except DecodeError as err:
            out.append(("error", err.result_code, err.failed_avp))
            continue
        out.append(_values(value) if type(value) is list else value)
    return out


def _avp_offsets(wire: bytes) -> list[int]:
    """Offsets of every AVP header in the tree (known Grouped AVPs descended)."""
    out: list[int] = []

    def scan(pos: int, end: int) -> None:
        while pos + 8 <= end:
            code, word = struct.unpack_from(">II", wire, pos)
            length = word & 0xFFFFFF
            if length < 8:
                return
            out.append(pos)
            head = 12 if word >> 24 & 0x80 else 8
            vendor = struct.unpack_from(">I", wire, pos + 8)[0] if head == 12 else 0
            d = avp_by_code(code, vendor)
            if d is not None and d.type is AvpType.GROUPED:
                scan(pos + head, pos + length)
            pos += (length + 3) & ~3

    scan(20, len(wire))
    return out


def _mutations(rng: random.Random, wire: bytes):
    """Targeted damage: unknown codes with and without the M bit at any depth, flags, lengths,
    random bytes; the message length word is kept so that the frame stays a frame."""
    offsets = _avp_offsets(wire)
    for _ in range(120):
        frame = bytearray(wire)
        for _ in range(rng.randint(1, 3)):
            pos = rng.choice(offsets)
            kind = rng.randrange(5)
            if kind == 0:  # an unknown code
                struct.pack_into(">I", frame, pos, 0xFFF000 + rng.randrange(256))
            elif kind == 1:  # toggle the M bit
                frame[pos + 4] ^= AVP_FLAG_MANDATORY
            elif kind == 2:  # reserved or V flag bits
                frame[pos + 4] ^= rng.choice((0x01, 0x10, 0x80))
            elif kind == 3:  # a length that is off
                frame[pos + 7] = (frame[pos + 7] + rng.choice((-5, -4, -1, 1, 4, 9))) & 0xFF
            else:
                frame[rng.randrange(20, len(frame))] = rng.randrange(256)
        yield bytes(frame)


@pytest.mark.parametrize("index", range(len(REQUESTS)), ids=["Ro CCR-U", "Gx CCR-I", "Rx AAR"])
def test_check_verdict_is_the_byte_scan_verdict_and_values_are_unchanged(index: int) -> None:
    wire = REQUESTS[index]
    rng = random.Random(20261125 + index)
    seen: set[object] = set()
    for frame in [wire, *_mutations(rng, wire)]:
        try:
            msg = Message.decode(frame)
        except DecodeError:
            continue
        try:
            expected = _reference(frame)
        except DecodeError as err:
            expected = err.result_code, err.failed_avp
        got = _verdict(lambda m=msg, f=frame: check_request(m, ROUTE, f))
        assert got == expected
        seen.add(None if got is None else got[0])
        assert _values(msg.avps) == _values(Message.decode(frame).avps)
        assert msg.encode() == frame  # still byte-exact after the check
    # the mutations reach every kind of verdict
    assert {None, ResultCode.AVP_UNSUPPORTED, ResultCode.INVALID_AVP_LENGTH} <= seen


def _with_nested_unknown(base: Message) -> tuple[bytes, bytes]:
    """``base`` plus an MSCC whose Requested-Service-Unit holds an unknown optional AVP, then an
    unknown M-bit one."""
    unknown = struct.pack(">II", 0xFFF001, (AVP_FLAG_MANDATORY << 24) | 12) + b"abcd"
    optional = struct.pack(">II", 0xFFF002, 12) + b"wxyz"
    rsu = struct.pack(">II", 437, (AVP_FLAG_MANDATORY << 24) | (8 + len(optional + unknown)))
    mscc_data = rsu + optional + unknown
    mscc = struct.pack(">II", 456, (AVP_FLAG_MANDATORY << 24) | (8 + len(mscc_data))) + mscc_data
    head = base.encode()
    body = head[20:] + mscc
    return struct.pack(">I", (1 << 24) | (20 + len(body))) + head[4:20] + body, unknown


@pytest.mark.parametrize("large", [False, True], ids=["small", f"above {PREWALK_LIMIT} octets"])
def test_unknown_mandatory_avp_deep_inside_a_group_is_5001_with_its_octets(large: bool) -> None:
    base = build(RO_CCR_U)
    while large and len(base.encode()) <= PREWALK_LIMIT:
        base.add(("Service-Information", [("IMS-Information", [("Node-Functionality", 0)])]))
    wire, unknown = _with_nested_unknown(base)
    msg = Message.decode(wire)
    error = check_request(msg, ROUTE, wire)
    assert error is not None and error.result_code == ResultCode.AVP_UNSUPPORTED
    assert error.failed_avp.wire() == unknown
    assert msg.encode() == wire
