"""Hostile input: every malformation maps to the RFC 6733 Result-Code, nothing else escapes."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench._diameter_samples import SAMPLES, build
from diam.constants import ResultCode
from diam.message import (
    MAX_GROUP_DEPTH,
    Avp,
    DecodeError,
    Header,
    Message,
    read_header,
)

WIRES = [build(spec).encode() for spec in SAMPLES.values()]


def _frame(
    body: bytes, *, flags: int = 0x80, version: int = 1, length: int | None = None, cmd: int = 272
) -> bytes:
    size = 20 + len(body) if length is None else length
    return struct.pack(">IIIII", (version << 24) | size, (flags << 24) | cmd, 4, 7, 9) + body


def _avp(code: int, data: bytes, flags: int = 0x40, length: int | None = None) -> bytes:
    size = 8 + len(data) if length is None else length
    return struct.pack(">II", code, (flags << 24) | size) + data + b"\0" * (-len(data) % 4)


def _decode_error(data: bytes, **kw: bool) -> DecodeError:
    with pytest.raises(DecodeError) as err:
        Message.decode(data, **kw)
    return err.value


def test_header_errors() -> None:
    ok = _avp(263, b"session")
    assert _decode_error(b"\x01\x00\x00").result_code == ResultCode.INVALID_MESSAGE_LENGTH
    err = _decode_error(_frame(ok, version=2))
    assert err.result_code == ResultCode.UNSUPPORTED_VERSION
    assert err.header == Header(2, 36, 0x80, 272, 4, 7, 9)
    for flags in (0x81, 0x88, 0xA0):  # reserved bits; E bit on a request (RFC 6733 §3)
        assert _decode_error(_frame(ok, flags=flags)).result_code == ResultCode.INVALID_HDR_BITS
    for length in (0, 20, 35, 40, 1 << 23):
        err = _decode_error(_frame(ok, length=length))
        assert err.result_code == ResultCode.INVALID_MESSAGE_LENGTH
        assert err.header is not None and err.header.length == length
    assert _decode_error(_frame(ok) + b"\0\0\0\0").result_code == 5015


def test_avp_length_errors_carry_failed_avp() -> None:
    good = _avp(263, b"session")
    too_short = struct.pack(">II", 264, (0x40 << 24) | 6)
    err = _decode_error(_frame(good + too_short))
    assert err.result_code == ResultCode.INVALID_AVP_LENGTH
    assert err.failed_avp == too_short  # RFC 6733 §7.1.5: the offending header
    assert err.header is not None and err.header.command_code == 272

    vendor_short = struct.pack(">III", 1005, (0xC0 << 24) | 10, 10415)
    err = _decode_error(_frame(vendor_short))
    assert err.result_code == 5014 and err.failed_avp == vendor_short

    overrun = struct.pack(">II", 432, (0x40 << 24) | 200) + b"\0\0\0\1"  # Rating-Group
    err = _decode_error(_frame(good + overrun))
    assert err.result_code == 5014
    assert err.failed_avp == overrun[:8] + b"\0\0\0\0"  # header + zero Unsigned32 payload

    trailing = _frame(good + b"\0\0\0\0")  # 4 octets cannot hold an AVP header
    assert _decode_error(trailing).result_code == 5014

    reserved = _avp(263, b"session", flags=0x41)
    err = _decode_error(_frame(reserved))
    assert err.result_code == ResultCode.INVALID_AVP_BITS and err.failed_avp == reserved


def test_nested_errors_found_by_validate() -> None:
    bad_child = struct.pack(">II", 432, (0x40 << 24) | 50) + b"\0\0\0\1"
    group = _avp(456, _avp(439, b"\0\0\0\7") + bad_child)  # MSCC{Service-Identifier, bad}
    wire = _frame(_avp(263, b"s") + group)
    msg = Message.decode(wire)  # lazy: the top level is sound
    assert msg.encode() == wire
    err = _decode_error(wire, validate=True)
    assert err.result_code == 5014 and err.failed_avp == bad_child[:8] + b"\0\0\0\0"
    with pytest.raises(DecodeError) as lazy:
        msg.validate()
    assert lazy.value.failed_avp == err.failed_avp
    with pytest.raises(DecodeError):
        _ = msg.avps[1].value

    wrong_size = _avp(456, _avp(432, b"\0\0\1"))  # Unsigned32 with 3 octets
    err = _decode_error(_frame(wrong_size), validate=True)
    assert err.result_code == 5014 and err.failed_avp == _avp(432, b"\0\0\1")


def test_group_nesting_is_capped() -> None:
    def nest(depth: int) -> bytes:
        inner = _avp(432, b"\0\0\0\1")
        for _ in range(depth):
            inner = _avp(456, inner)
        return _frame(inner)

    ok = Message.decode(nest(MAX_GROUP_DEPTH - 1), validate=True)
    avp = ok.avps[0]
    while isinstance(avp.value, list):
        avp = avp.value[0]
    assert avp.value == 1
    deep = nest(10_000)  # far deeper than any recursion limit
    err = _decode_error(deep, validate=True)
    assert err.result_code == ResultCode.INVALID_AVP_VALUE
    lazy = Message.decode(deep)
    avp = lazy.avps[0]
    with pytest.raises(DecodeError) as walk:
        for _ in range(MAX_GROUP_DEPTH + 1):
            avp = avp.value[0]
    assert walk.value.result_code == ResultCode.INVALID_AVP_VALUE
    assert Message.decode(deep).encode() == deep


def test_read_header_and_memoryview_input() -> None:
    wire = WIRES[0]
    assert read_header(wire) == Header(1, len(wire), 0xC0, 272, 16777238, 0x1234, 0x5678)
    with pytest.raises(DecodeError):
        read_header(wire[:19])
    buf = bytearray(wire)
    msg = Message.decode(memoryview(buf))
    buf[:] = bytes(len(buf))  # the caller reuses its buffer: the message must not change
    assert msg.encode() == wire


def _read_everything(msg: Message) -> None:
    def walk(avps: list[Avp]) -> None:
        for a in avps:
            _ = a.name, a.data
            v = a.value
            if isinstance(v, list):
                walk(v)

    walk(msg.avps)


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    for candidate in (data, _frame(data), _frame(data, length=len(data) + 20 - len(data) % 4)):
        try:
            msg = Message.decode(candidate, validate=True)
            _read_everything(msg)
            assert msg.encode() == candidate
        except DecodeError as err:
            assert 1000 <= err.result_code < 6000


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.sampled_from(WIRES),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=6),
)
def test_fuzz_mutated_samples(wire: bytes, edits: list[tuple[int, int]]) -> None:
    data = bytearray(wire)
    for pos, byte in edits:
        data[pos % len(data)] = byte
    try:
        msg = Message.decode(bytes(data))
        msg.validate()
        _read_everything(msg)
        assert msg.encode() == bytes(data)
    except DecodeError as err:
        assert err.result_code in {3008, 3009, 5004, 5011, 5014, 5015}


def test_failed_avp_embeds_the_offending_octets() -> None:
    """The node answers 5014 with Failed-AVP{the offending AVP} (RFC 6733 §7.5): the octets go
    on the wire as received, even when their length field is the very error."""
    overrun = struct.pack(">II", 432, (0x40 << 24) | 200) + b"\0\0\0\1"
    err = _decode_error(_frame(_avp(263, b"s") + overrun))
    assert err.failed_avp is not None
    answer = Message(272, 4, 0x40, 7, 9).add(
        ("Result-Code", err.result_code), ("Failed-AVP", [Avp.from_wire(err.failed_avp)])
    )
    wire = answer.encode()
    assert err.failed_avp in wire
    decoded = Message.decode(wire)
    assert decoded.get("Result-Code") == 5014
    assert decoded.first("Failed-AVP").data == err.failed_avp
