"""Value conversion for every RFC 6733 §4.2/§4.3 AVP data format: wire bytes <-> Python values.

Decoders take the AVP data (bytes) and raise ValueError on malformed data (the message layer maps
that to a DecodeError with Result-Code 5014 or 5004). Encoders raise TypeError/ValueError on
values the type cannot carry.
"""

from __future__ import annotations

import ipaddress
import math
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from diam.dictionary import AvpType

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_FAMILY = struct.Struct(">H")

# RFC 6733 §4.3.1 Address: 2-octet IANA address family then the address.
FAMILY_IPV4 = 1
FAMILY_IPV6 = 2
MIN_ADDRESS = 6  # family + IPv4: the shortest Address (zero-filled Failed-AVP payload size)

# RFC 6733 §4.3.1 Time: seconds since 1900-01-01 00:00 UTC (NTP), 32 bits. It wraps on
# 2036-02-07 06:28:16 UTC; per RFC 4330 §3 a value with the top bit clear is read as era 1
# (2036-2104), a value with it set as era 0 (1968-2036). Encodable range: [TIME_MIN, TIME_MAX).
NTP_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
_ERA1 = 1 << 32
_NTP_TO_UNIX = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_ERA0_START = 1 << 31  # TIME_MIN in NTP seconds
TIME_MIN = NTP_EPOCH + timedelta(seconds=1 << 31)  # 1968-01-20 03:14:08 UTC
TIME_MAX = TIME_MIN + timedelta(seconds=1 << 32)  # 2104-02-26 09:42:24 UTC

# Exact data length of the fixed-size formats; 5014 when a received AVP differs (RFC 6733 §7.1.5).
FIXED_SIZE: dict[AvpType, int] = {
    AvpType.INTEGER32: 4,
    AvpType.UNSIGNED32: 4,
    AvpType.ENUMERATED: 4,
    AvpType.FLOAT32: 4,
    AvpType.TIME: 4,
    AvpType.INTEGER64: 8,
    AvpType.UNSIGNED64: 8,
    AvpType.FLOAT64: 8,
}


# The struct of each fixed-size number format (the codec unpacks these in place).
NUMBER_STRUCTS: dict[AvpType, struct.Struct] = {
    AvpType.INTEGER32: _I32,
    AvpType.INTEGER64: _I64,
    AvpType.UNSIGNED32: _U32,
    AvpType.UNSIGNED64: _U64,
    AvpType.FLOAT32: _F32,
    AvpType.FLOAT64: _F64,
    AvpType.ENUMERATED: _I32,
}


def _struct_decoder(s: struct.Struct) -> Callable[[bytes], Any]:
    """Fixed-size number; struct.error (a length mismatch) is the caller's 5014."""
    unpack = s.unpack

    def decode(data: bytes) -> Any:
        return unpack(data)[0]

    return decode


def _struct_encoder(s: struct.Struct, kind: type) -> Callable[[Any], bytes]:
    pack = s.pack

    def encode(value: Any) -> bytes:
        if type(value) is not kind and (not isinstance(value, kind) or isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        try:
            return pack(value)
        except struct.error as exc:
            raise ValueError(str(exc)) from None

    return encode


def _encode_float(s: struct.Struct) -> Callable[[Any], bytes]:
    pack = s.pack

    def encode(value: Any) -> bytes:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"expected float, got {type(value).__name__}")
        try:
            return pack(value)
        except OverflowError as exc:  # beyond Float32's range
            raise ValueError(str(exc)) from None

    return encode


def encode_octets(value: Any) -> bytes:
    """OctetString: bytes-like; a str is taken as its UTF-8 octets (3GPP text-in-OctetString AVPs
    such as Charging-Rule-Name or AF-Application-Identifier)."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"expected bytes or str, got {type(value).__name__}")


def encode_text(value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value.encode()


def decode_address(data: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if len(data) < 2:
        raise ValueError("Address shorter than its 2-octet family")
    family = _FAMILY.unpack_from(data)[0]
    if family == FAMILY_IPV4 and len(data) == 6:
        return ipaddress.IPv4Address(bytes(data[2:]))
    if family == FAMILY_IPV6 and len(data) == 18:
        return ipaddress.IPv6Address(bytes(data[2:]))
    if family in (FAMILY_IPV4, FAMILY_IPV6):
        raise ValueError(f"Address family {family} with {len(data) - 2} octets")
    raise UnsupportedValue(f"Address family {family} is not IPv4/IPv6")


def encode_address(value: Any) -> bytes:
    """Address from an ipaddress object or its text form."""
    if isinstance(value, str):
        value = ipaddress.ip_address(value)
    if isinstance(value, ipaddress.IPv4Address):
        return b"\x00\x01" + value.packed
    if isinstance(value, ipaddress.IPv6Address):
        return b"\x00\x02" + value.packed
    raise TypeError(f"expected an IP address, got {type(value).__name__}")


def decode_time(data: bytes) -> datetime:
    seconds = _U32.unpack(data)[0]
    if not seconds & 0x80000000:
        seconds += _ERA1
    return datetime.fromtimestamp(seconds - _NTP_TO_UNIX, UTC)


def encode_time(value: Any) -> bytes:
    """Time from a timezone-aware datetime in [TIME_MIN, TIME_MAX); sub-seconds are dropped."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise ValueError("Time needs a timezone-aware datetime")
    seconds = math.floor(value.timestamp()) + _NTP_TO_UNIX
    if not _ERA0_START <= seconds < _ERA0_START + _ERA1:
        raise ValueError(f"{value.isoformat()} is outside the NTP range of RFC 4330 §3")
    return _U32.pack(seconds & 0xFFFFFFFF)


class UnsupportedValue(ValueError):
    """Well-formed data the codec cannot represent (5004 rather than 5014)."""


# UTF8String, DiameterIdentity, DiameterURI and IPFilterRule read as UTF-8 text (ASCII, for the
# latter three, is a subset); invalid UTF-8 raises UnicodeDecodeError, a ValueError (5004).
# Built-in callables where possible: no Python frame per value.
DECODERS: dict[AvpType, Callable[[bytes], Any]] = {
    AvpType.OCTET_STRING: bytes,  # data is already bytes: returned as is
    AvpType.INTEGER32: _struct_decoder(_I32),
    AvpType.INTEGER64: _struct_decoder(_I64),
    AvpType.UNSIGNED32: _struct_decoder(_U32),
    AvpType.UNSIGNED64: _struct_decoder(_U64),
    AvpType.FLOAT32: _struct_decoder(_F32),
    AvpType.FLOAT64: _struct_decoder(_F64),
    AvpType.ADDRESS: decode_address,
    AvpType.TIME: decode_time,
    AvpType.UTF8STRING: bytes.decode,
    AvpType.DIAMETER_IDENTITY: bytes.decode,
    AvpType.DIAMETER_URI: bytes.decode,
    AvpType.ENUMERATED: _struct_decoder(_I32),
    AvpType.IP_FILTER_RULE: bytes.decode,
}

ENCODERS: dict[AvpType, Callable[[Any], bytes]] = {
    AvpType.OCTET_STRING: encode_octets,
    AvpType.INTEGER32: _struct_encoder(_I32, int),
    AvpType.INTEGER64: _struct_encoder(_I64, int),
    AvpType.UNSIGNED32: _struct_encoder(_U32, int),
    AvpType.UNSIGNED64: _struct_encoder(_U64, int),
    AvpType.FLOAT32: _encode_float(_F32),
    AvpType.FLOAT64: _encode_float(_F64),
    AvpType.ADDRESS: encode_address,
    AvpType.TIME: encode_time,
    AvpType.UTF8STRING: encode_text,
    AvpType.DIAMETER_IDENTITY: encode_text,
    AvpType.DIAMETER_URI: encode_text,
    AvpType.ENUMERATED: _struct_encoder(_I32, int),
    AvpType.IP_FILTER_RULE: encode_text,
}
