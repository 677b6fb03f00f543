"""Codec basics: build, encode, decode, navigate, answer."""

from datetime import UTC, datetime
from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diam.constants import APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, FLAG_PROXIABLE, FLAG_REQUEST
from diam.message import Avp, Header, Message, read_header


def _ccr() -> Message:
    return Message.request(
        CMD_CREDIT_CONTROL,
        APP_CREDIT_CONTROL,
        [
            ("Session-Id", "scscf.test;1;2"),
            ("Origin-Host", "scscf.test"),
            ("CC-Request-Type", 2),
            ("Event-Timestamp", datetime(2026, 1, 1, tzinfo=UTC)),
            (
                "Multiple-Services-Credit-Control",
                [
                    ("Rating-Group", 100),
                    ("Used-Service-Unit", [("CC-Time", 30)]),
                ],
            ),
            ("Multiple-Services-Credit-Control", [("Rating-Group", 200)]),
            ("Host-IP-Address", "127.0.0.1"),
        ],
    )


def test_round_trip_and_navigation() -> None:
    wire = _ccr().encode()
    msg = Message.decode(wire, validate=True)
    assert msg.is_request and msg.is_proxiable
    assert msg.flags == FLAG_REQUEST | FLAG_PROXIABLE
    assert msg.get("Session-Id") == "scscf.test;1;2"
    assert msg.get("Event-Timestamp") == datetime(2026, 1, 1, tzinfo=UTC)
    assert msg.get("Host-IP-Address") == IPv4Address("127.0.0.1")
    mscc = msg["Multiple-Services-Credit-Control"]
    assert [m.get("Rating-Group") for m in mscc] == [100, 200]
    assert mscc[0].first("Used-Service-Unit").get("CC-Time") == 30
    assert msg.get("Destination-Host", "none") == "none"
    assert msg.encode() == wire


def test_answer_copies_session_and_ids() -> None:
    req = Message.decode(_ccr().encode())
    req.hop_by_hop, req.end_to_end = 7, 9
    ans = Message.decode(req.answer(2001, Avp.new("CC-Request-Type", 2)).encode())
    assert not ans.is_request and ans.is_proxiable and not ans.is_error
    assert (ans.hop_by_hop, ans.end_to_end) == (7, 9)
    assert [a.name for a in ans.avps] == ["Session-Id", "Result-Code", "CC-Request-Type"]
    assert req.answer(3001).is_error


def test_changing_code_reinterprets_the_octets() -> None:
    raw = Avp.new("Used-Service-Unit", [("CC-Time", 5)])
    msg = Message.decode(Message.request(272, 4, [("Session-Id", "s"), raw]).encode())
    avp = msg.avps[1]
    avp.code = 437  # Requested-Service-Unit, also Grouped
    assert avp.name == "Requested-Service-Unit" and avp.get("CC-Time") == 5
    again = Message.decode(msg.encode(), validate=True)
    assert again.first("Requested-Service-Unit").get("CC-Time") == 5


def test_answer_keeps_session_id_octets() -> None:
    req = Message.decode(_ccr().encode())
    ans = req.answer(2001)
    assert ans.avps[0].wire() == req.avps[0].wire()
    assert ans.get("Result-Code") == 2001 and ans.get("Session-Id") == "scscf.test;1;2"


def test_unknown_avp_value_is_octets() -> None:
    avp = Avp.from_wire(bytes.fromhex("0001117100000009") + b"x\0\0\0")
    assert avp.name == "Unknown(70001,0)" and avp.value == b"x"
    avp.value = b"abcd"
    assert avp.wire() == bytes.fromhex("000111710000000c") + b"abcd"
    with pytest.raises(TypeError):
        avp.value = 5  # never bytes(5), five zero octets


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.integers(0, 2**24 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0x80, 0xC0, 0x90, 0xD0, 0x00, 0x40, 0x60, 0x20]),
)
def test_header_fields_round_trip(cmd: int, app: int, h2h: int, e2e: int, flags: int) -> None:
    msg = Message(cmd, app, flags, h2h, e2e).add(("Session-Id", "s"))
    wire = msg.encode()
    assert read_header(wire) == Header(1, len(wire), flags, cmd, app, h2h, e2e)
    back = Message.decode(wire)
    assert (
        back.command_code,
        back.application_id,
        back.flags,
        back.hop_by_hop,
        back.end_to_end,
    ) == (cmd, app, flags, h2h, e2e)
    assert back.is_request == bool(flags & 0x80) and back.is_proxiable == bool(flags & 0x40)
    assert back.is_error == bool(flags & 0x20) and back.is_retransmit == bool(flags & 0x10)


def test_clone_is_independent_and_encodes_to_the_same_octets() -> None:
    wire = _ccr().encode()
    msg = Message.decode(wire)
    sources = [
        *msg.avps,  # decoded, unchanged: their received octets
        Avp.new("Subscription-Id", [("Subscription-Id-Type", 0), ("Subscription-Id-Data", "1")]),
        Avp.from_wire(b"\x00\x00\x01\x07\x40\x00\x00\x0dabcde"),  # odd length: padded
        Avp.from_wire(b"\x00\x00\x01\x07\x40"),  # a truncated header, as Failed-AVP may carry
    ]
    for avp in sources:
        copy = avp.clone()
        assert copy is not avp and copy.wire() == avp.wire()
    session = msg.first("Session-Id")
    copy = session.clone()
    copy.value = "changed"
    assert session.value != "changed" and msg.encode() == wire
