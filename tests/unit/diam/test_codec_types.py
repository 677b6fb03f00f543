"""Round trips for every RFC 6733 AVP data format, nested groups, unknown AVPs and edits."""

import math
import struct
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diam.constants import APP_CREDIT_CONTROL, CMD_CREDIT_CONTROL, ResultCode
from diam.dictionary import AvpType, avp_def
from diam.message import Avp, DecodeError, Message

# One dictionary AVP per data format (vendor and non-vendor mixed in).
NAME_OF = {
    AvpType.OCTET_STRING: "Charging-Rule-Name",
    AvpType.INTEGER32: "Exponent",
    AvpType.INTEGER64: "Value-Digits",
    AvpType.UNSIGNED32: "Rating-Group",
    AvpType.UNSIGNED64: "CC-Total-Octets",
    AvpType.FLOAT32: "Max-PLR-DL",  # TS 29.212, 3GPP vendor
    AvpType.FLOAT64: "Cost",  # vendor 193 (Ericsson): the dictionary's only Float64
    AvpType.ADDRESS: "Host-IP-Address",
    AvpType.TIME: "Event-Timestamp",
    AvpType.UTF8STRING: "Subscription-Id-Data",
    AvpType.DIAMETER_IDENTITY: "Origin-Host",
    AvpType.DIAMETER_URI: "Redirect-Host",
    AvpType.ENUMERATED: "CC-Request-Type",
    AvpType.IP_FILTER_RULE: "Flow-Description",
}
TIME_MIN = datetime(1968, 1, 20, 3, 14, 8)
TIME_MAX = datetime(2104, 2, 26, 9, 42, 23)


def _name(kind: AvpType) -> str:
    name = NAME_OF[kind]
    assert avp_def(name).type is kind
    return name


VALUES = {
    AvpType.OCTET_STRING: st.binary(max_size=300),
    AvpType.INTEGER32: st.integers(-(2**31), 2**31 - 1),
    AvpType.INTEGER64: st.integers(-(2**63), 2**63 - 1),
    AvpType.UNSIGNED32: st.integers(0, 2**32 - 1),
    AvpType.UNSIGNED64: st.integers(0, 2**64 - 1),
    AvpType.FLOAT32: st.floats(width=32, allow_nan=False),
    AvpType.FLOAT64: st.floats(allow_nan=False),
    AvpType.ADDRESS: st.ip_addresses(),
    AvpType.TIME: st.datetimes(TIME_MIN, TIME_MAX, timezones=st.just(UTC)),
    AvpType.UTF8STRING: st.text(max_size=100),
    AvpType.DIAMETER_IDENTITY: st.from_regex(r"[a-z0-9.-]{1,60}", fullmatch=True),
    AvpType.DIAMETER_URI: st.from_regex(
        r"aaa://[a-z0-9.]{1,30}:3868;transport=tcp", fullmatch=True
    ),
    AvpType.ENUMERATED: st.integers(-(2**31), 2**31 - 1),
    AvpType.IP_FILTER_RULE: st.text(max_size=100),
}


def _expected(kind: AvpType, value: object) -> object:
    if kind is AvpType.TIME:
        assert isinstance(value, datetime)
        return value.replace(microsecond=0)
    return value


def _message(*avps: Avp) -> Message:
    return Message.request(CMD_CREDIT_CONTROL, APP_CREDIT_CONTROL, avps)


@pytest.mark.parametrize("kind", [k for k in AvpType if k is not AvpType.GROUPED])
def test_every_type_round_trips(kind: AvpType) -> None:
    name = _name(kind)
    definition = avp_def(name)

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(VALUES[kind])
    def check(value: object) -> None:
        wire = _message(Avp.new(name, value)).encode()
        msg = Message.decode(wire, validate=True)
        avp = msg.avps[0]
        assert (avp.code, avp.vendor, avp.name) == (definition.code, definition.vendor, name)
        assert avp.value == _expected(kind, value)
        assert msg.encode() == wire
        assert len(wire) % 4 == 0

    check()


def test_float_nan_and_int_bounds() -> None:
    f32, f64 = _name(AvpType.FLOAT32), _name(AvpType.FLOAT64)
    assert math.isnan(Message.decode(_message(Avp.new(f32, math.nan)).encode()).avps[0].value)
    assert math.isnan(Message.decode(_message(Avp.new(f64, math.nan)).encode()).avps[0].value)
    with pytest.raises(ValueError):
        Avp.new("Rating-Group", 2**32)
    with pytest.raises(ValueError):
        Avp.new("Rating-Group", -1)
    with pytest.raises(TypeError, match="Rating-Group"):
        Avp.new("Rating-Group", "7")
    with pytest.raises(ValueError, match="Session-Id"):
        Avp.new("Session-Id", "lone \udc80 surrogate")
    with pytest.raises(TypeError):
        Avp.new("Rating-Group", True)
    with pytest.raises(ValueError):
        Avp.new(f32, 1e39)  # beyond Float32
    assert Avp.new(f32, 0.1).value == struct.unpack(">f", struct.pack(">f", 0.1))[0]


def test_address_wire_format_rfc6733() -> None:
    v4 = Avp.new("Host-IP-Address", "127.0.0.1").wire()
    assert v4 == struct.pack(">IIH4B", 257, (0x40 << 24) | 14, 1, 127, 0, 0, 1) + b"\0\0"
    v6 = Avp.new("Host-IP-Address", IPv6Address("::1")).data
    assert v6 == b"\x00\x02" + IPv6Address("::1").packed
    assert Avp.from_wire(Avp.new("Host-IP-Address", "::1").wire()).value == ip_address("::1")
    assert Avp.new("Host-IP-Address", "10.1.2.3").value == IPv4Address("10.1.2.3")


def test_time_ntp_epoch_and_2036_rollover() -> None:
    def seconds(dt: datetime) -> int:
        return struct.unpack(">I", Avp.new("Event-Timestamp", dt).data)[0]

    rollover = datetime(2036, 2, 7, 6, 28, 16, tzinfo=UTC)
    assert seconds(datetime(1970, 1, 1, tzinfo=UTC)) == 2208988800
    assert seconds(rollover - timedelta(seconds=1)) == 0xFFFFFFFF
    assert seconds(rollover) == 0  # RFC 4330 §3 era 1
    assert seconds(datetime(1968, 1, 20, 3, 14, 8, tzinfo=UTC)) == 0x80000000
    for raw, expected in [
        (0, rollover),
        (0x7FFFFFFF, rollover + timedelta(seconds=0x7FFFFFFF)),
        (0x80000000, datetime(1968, 1, 20, 3, 14, 8, tzinfo=UTC)),
        (0xFFFFFFFF, rollover - timedelta(seconds=1)),
    ]:
        avp = Avp.from_wire(struct.pack(">III", 55, (0x40 << 24) | 12, raw))
        assert avp.value == expected
    with pytest.raises(ValueError):
        Avp.new("Event-Timestamp", datetime(1960, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        Avp.new("Event-Timestamp", datetime(2110, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        Avp.new("Event-Timestamp", datetime(2026, 1, 1))  # naive


LEAVES = st.one_of(
    st.tuples(st.just("Rating-Group"), VALUES[AvpType.UNSIGNED32]),
    st.tuples(st.just("Subscription-Id-Data"), VALUES[AvpType.UTF8STRING]),
    st.tuples(st.just("Charging-Rule-Name"), VALUES[AvpType.OCTET_STRING]),
    st.tuples(st.just("Event-Timestamp"), VALUES[AvpType.TIME]),
    st.tuples(st.just("AN-GW-Address"), VALUES[AvpType.ADDRESS]),
)
GROUPS = ["Multiple-Services-Credit-Control", "Charging-Rule-Definition", "Service-Information"]
TREES = st.recursive(
    LEAVES,
    lambda children: st.tuples(st.sampled_from(GROUPS), st.lists(children, max_size=4)),
    max_leaves=25,
)


def _tree(avps: list[Avp]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for a in avps:
        v = a.value
        out.append((a.name, _tree(v) if isinstance(v, list) else v))
    return out


def _canonical(items: list[tuple[str, object]]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name, v in items:
        if isinstance(v, list):
            out.append((name, _canonical(v)))
        elif isinstance(v, datetime):
            out.append((name, v.replace(microsecond=0)))
        else:
            out.append((name, v))
    return out


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(TREES, min_size=1, max_size=6))
def test_nested_groups_round_trip(items: list[tuple[str, object]]) -> None:
    wire = Message.request(CMD_CREDIT_CONTROL, APP_CREDIT_CONTROL, items).encode()
    msg = Message.decode(wire, validate=True)
    assert msg.encode() == wire  # untouched
    assert _tree(msg.avps) == _canonical(items)
    assert msg.encode() == wire  # every group materialised, still byte-identical


def _raw_avp(code: int, vendor: int, flags: int, data: bytes, pad: bytes) -> bytes:
    if vendor:
        head = struct.pack(">III", code, ((flags | 0x80) << 24) | (12 + len(data)), vendor)
    else:
        head = struct.pack(">II", code, ((flags & 0x7F) << 24) | (8 + len(data)))
    return head + data + pad[: (-len(data)) % 4]


UNKNOWN = st.builds(
    _raw_avp,
    st.integers(70000, 2**32 - 1),
    st.sampled_from([0, 10415, 99999]),
    st.sampled_from([0, 0x40, 0x20, 0x60]),
    st.binary(max_size=40),
    st.binary(min_size=3, max_size=3),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(UNKNOWN, min_size=1, max_size=5), st.lists(UNKNOWN, max_size=3))
def test_unknown_avps_re_encode_byte_exact(top: list[bytes], nested: list[bytes]) -> None:
    group = Avp.new("Multiple-Services-Credit-Control", [("Rating-Group", 1)]).wire()
    inner = b"".join(nested)
    group = struct.pack(">II", 456, (0x40 << 24) | (len(group) + len(inner))) + group[8:] + inner
    body = b"".join(top) + group
    wire = struct.pack(">IIIII", (1 << 24) | (20 + len(body)), (0x80 << 24) | 272, 4, 1, 2) + body
    msg = Message.decode(wire, validate=True)
    assert msg.encode() == wire
    for a, raw in zip(msg.avps, top, strict=False):
        assert a.name.startswith("Unknown(") and a.definition is None
        assert a.wire() == raw and a.value == a.data
    children = msg.avps[-1].value  # materialise the group: unknown children still exact
    assert len(children) == 1 + len(nested)
    assert msg.encode() == wire


def test_edits_are_encoded() -> None:
    wire = Message.request(
        CMD_CREDIT_CONTROL,
        APP_CREDIT_CONTROL,
        [
            ("Session-Id", "s"),
            ("Multiple-Services-Credit-Control", [("Rating-Group", 1), ("Service-Identifier", 2)]),
        ],
    ).encode()
    msg = Message.decode(wire)
    mscc = msg.first("Multiple-Services-Credit-Control")
    assert mscc is not None
    mscc.first("Rating-Group").value = 7_000_000
    mscc.add(("Used-Service-Unit", [("CC-Time", 60)]))
    msg.first("Session-Id").value = "a-much-longer-session-id;1;2"
    msg.avps[0].flags |= 0x20
    again = Message.decode(msg.encode(), validate=True)
    group = again.first("Multiple-Services-Credit-Control")
    assert group.get("Rating-Group") == 7_000_000
    assert group.first("Used-Service-Unit").get("CC-Time") == 60
    assert again.get("Session-Id") == "a-much-longer-session-id;1;2"
    assert again.avps[0].flags == 0x60
    with pytest.raises(ValueError):
        again.avps[0].flags = 0xC0  # V bit without a vendor id


def test_mandatory_override_and_vendor_bits() -> None:
    a = Avp.new("Charging-Rule-Name", "r1")  # 3GPP, M per TS 29.212
    assert a.vendor == 10415 and a.flags & 0x80 and a.is_mandatory
    b = Avp.new("Charging-Rule-Name", "r1", mandatory=False)
    assert not b.is_mandatory and b.flags == 0x80
    assert not Avp.new("Product-Name", "x").is_mandatory  # RFC 6733 §5.3: M MUST NOT


def test_grouped_access_api() -> None:
    g = Avp.new(
        "Multiple-Services-Credit-Control",
        [
            ("Rating-Group", 1),
            ("Rating-Group", 2),
            Avp.new("Service-Identifier", 9),
        ],
    )
    assert [a.value for a in g["Rating-Group"]] == [1, 2]
    assert g["Validity-Time"] == []
    assert g.get("Service-Identifier") == 9 and g.get("Validity-Time", 5) == 5
    assert [a.name for a in g] == ["Rating-Group", "Rating-Group", "Service-Identifier"]
    with pytest.raises(KeyError, match="No-Such-AVP"):
        g["No-Such-AVP"]
    with pytest.raises(TypeError):
        Avp.new("Rating-Group", 1)["Rating-Group"]
    with pytest.raises(TypeError):
        Avp.new("Multiple-Services-Credit-Control", "not a list")


def test_malformed_values_raise_decode_error() -> None:
    short = Avp.from_wire(struct.pack(">IIH", 432, (0x40 << 24) | 10, 1))  # Unsigned32, 2 octets
    with pytest.raises(DecodeError) as err:
        _ = short.value
    assert err.value.result_code == ResultCode.INVALID_AVP_LENGTH
    assert err.value.failed_avp == short.wire()
    bad_utf8 = Avp.from_wire(struct.pack(">II", 444, (0x40 << 24) | 10) + b"\xff\xfe\0\0")
    with pytest.raises(DecodeError) as err:
        _ = bad_utf8.value
    assert err.value.result_code == ResultCode.INVALID_AVP_VALUE
    e164 = Avp.from_wire(struct.pack(">IIH", 257, (0x40 << 24) | 14, 8) + b"4917\0\0")
    with pytest.raises(DecodeError) as err:
        _ = e164.value
    assert err.value.result_code == ResultCode.INVALID_AVP_VALUE
