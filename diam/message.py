"""Diameter messages (RFC 6733 §3): header, lazy decode, direct encode, request/answer building.

    msg = Message.decode(data)          # one pass over the top-level AVPs, values converted lazily
    msg["Multiple-Services-Credit-Control"]   # every instance, list[Avp]
    msg.get("CC-Request-Type")          # value of the first instance or None
    answer = msg.answer(2001, ("CC-Request-Type", 1))
    wire = answer.encode()

A decoded message that is not modified re-encodes byte-identically (each AVP re-emits its
original octets until changed).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from diam.avp import (
    _KEYS,
    MAX_GROUP_DEPTH,
    Avp,
    DecodeError,
    Header,
    _coerce,
    check,
    check_avps,
    key_of,
    walk,
)
from diam.constants import (
    AVP_FLAG_MANDATORY,
    FLAG_ERROR,
    FLAG_PROXIABLE,
    FLAG_REQUEST,
    FLAG_RETRANSMIT,
    FLAGS_RESERVED,
    ResultCode,
)
from diam.dictionary import avp_def

__all__ = [
    "HEADER_LENGTH",
    "MAX_GROUP_DEPTH",
    "MAX_MESSAGE_LENGTH",
    "Avp",
    "DecodeError",
    "Header",
    "Message",
    "read_header",
    "result_code_avp",
]

HEADER_LENGTH = 20
MAX_MESSAGE_LENGTH = 1 << 20
VERSION = 1

_HDR = struct.Struct(">IIIII")
_SESSION_ID = avp_def("Session-Id")
_RESULT_CODE = avp_def("Result-Code")
_SESSION_ID_CODE = _SESSION_ID.code  # vendor 0


def read_header(data: bytes | memoryview) -> Header:
    """Parse the 20-octet header without validating it (the framing layer checks the length;
    `Message.decode` checks the rest). DecodeError 5015 when fewer than 20 octets are given."""
    if len(data) < HEADER_LENGTH:
        raise DecodeError(
            ResultCode.INVALID_MESSAGE_LENGTH, f"header needs 20 octets, got {len(data)}"
        )
    vl, fc, app, h2h, e2e = _HDR.unpack_from(data)
    return Header(vl >> 24, vl & 0xFFFFFF, fc >> 24, fc & 0xFFFFFF, app, h2h, e2e)


def _header_error(header: Header, size: int) -> DecodeError:
    """The DecodeError for a header that fails RFC 6733 §3 checks, most fundamental first."""
    if header.version != VERSION:
        return DecodeError(
            ResultCode.UNSUPPORTED_VERSION, f"version {header.version}", None, header
        )
    if header.length != size or header.length & 3 or header.length > MAX_MESSAGE_LENGTH:
        return DecodeError(
            ResultCode.INVALID_MESSAGE_LENGTH,
            f"Message-Length {header.length} for {size} octets",
            None,
            header,
        )
    return DecodeError(
        ResultCode.INVALID_HDR_BITS, f"header flags {header.flags:#04x}", None, header
    )


# Result-Code (RFC 6733 §7.1) data for every code we name; others are encoded when used.
_RESULT_CODE_DATA = {int(code): Avp.new("Result-Code", int(code)).data for code in ResultCode}
_RESULT_CODE_FLAGS = AVP_FLAG_MANDATORY if _RESULT_CODE.mandatory else 0


def result_code_avp(code: int) -> Avp:
    """A Result-Code AVP (the encoded value of the common codes is reused)."""
    data = _RESULT_CODE_DATA.get(code)
    if data is None:
        return Avp.new("Result-Code", int(code))
    avp = Avp(_RESULT_CODE.code, 0, _RESULT_CODE_FLAGS, None, 0, 0, 0)
    avp._data = data
    return avp


class Message:
    """A Diameter message. Header fields are plain attributes; `avps` is the top-level list."""

    __slots__ = (
        "_frozen",
        "application_id",
        "avps",
        "command_code",
        "end_to_end",
        "flags",
        "hop_by_hop",
        "version",
    )

    def __init__(
        self,
        command_code: int,
        application_id: int,
        flags: int = 0,
        hop_by_hop: int = 0,
        end_to_end: int = 0,
        avps: list[Avp] | None = None,
        version: int = VERSION,
    ) -> None:
        self.version = version
        self.flags = flags
        self.command_code = command_code
        self.application_id = application_id
        self.hop_by_hop = hop_by_hop
        self.end_to_end = end_to_end
        self.avps: list[Avp] = [] if avps is None else avps
        # (encoding, AVP count, last AVP) as of freeze(): see there
        self._frozen: tuple[bytes, int, Avp | None] | None = None

    # -- flags ---------------------------------------------------------------------------------
    @property
    def is_request(self) -> bool:
        return bool(self.flags & FLAG_REQUEST)

    @property
    def is_proxiable(self) -> bool:
        return bool(self.flags & FLAG_PROXIABLE)

    @property
    def is_error(self) -> bool:
        return bool(self.flags & FLAG_ERROR)

    @property
    def is_retransmit(self) -> bool:
        return bool(self.flags & FLAG_RETRANSMIT)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def request(
        cls,
        command_code: int,
        application_id: int,
        avps: Iterable[Avp | tuple[str, Any]] = (),
        *,
        proxiable: bool = True,
    ) -> Message:
        """A request (R bit, P bit unless `proxiable=False`); ids are set by the node."""
        flags = FLAG_REQUEST | (FLAG_PROXIABLE if proxiable else 0)
        return cls(command_code, application_id, flags, avps=[_coerce(a) for a in avps])

    def answer(self, result_code: int | None = None, *avps: Avp | tuple[str, Any]) -> Message:
        """The answer to this request: same command, application and ids, R cleared, P kept,
        Session-Id copied first (RFC 6733 §8.8), then Result-Code when given, then `avps`.
        The E bit is set for 3xxx protocol errors (RFC 6733 §7.1.3)."""
        flags = self.flags & FLAG_PROXIABLE
        if result_code is not None and 3000 <= result_code < 4000:
            flags |= FLAG_ERROR
        out = Message(
            self.command_code, self.application_id, flags, self.hop_by_hop, self.end_to_end
        )
        out_avps = out.avps
        for a in self.avps:  # Session-Id: the very octets, never re-decoded
            if a._code == _SESSION_ID_CODE and not a._vendor:
                out_avps.append(a.clone())
                break
        if result_code is not None:
            out_avps.append(result_code_avp(result_code))
        out_avps.extend(_coerce(a) for a in avps)
        return out

    def add(self, *items: Avp | tuple[str, Any]) -> Message:
        """Append AVPs (Avp objects or (name, value) pairs); returns self."""
        self.avps.extend(_coerce(i) for i in items)
        return self

    # -- access --------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> list[Avp]:
        """Every top-level AVP called `name` (possibly none)."""
        code, vendor = _KEYS.get(name) or key_of(name)
        return [a for a in self.avps if a._code == code and a._vendor == vendor]

    def first(self, name: str) -> Avp | None:
        """The first top-level AVP called `name`, else None."""
        code, vendor = _KEYS.get(name) or key_of(name)
        for a in self.avps:
            if a._code == code and a._vendor == vendor:
                return a
        return None

    def get(self, name: str, default: Any = None) -> Any:
        """The value of the first top-level AVP called `name`, else `default`."""
        code, vendor = _KEYS.get(name) or key_of(name)
        for a in self.avps:
            if a._code == code and a._vendor == vendor:
                return a.value
        return default

    def __repr__(self) -> str:
        kind = "request" if self.is_request else "answer"
        return (
            f"Message({kind} cmd={self.command_code} app={self.application_id} "
            f"h2h={self.hop_by_hop:#x} e2e={self.end_to_end:#x} avps={len(self.avps)})"
        )

    # -- wire ----------------------------------------------------------------------------------
    def freeze(self) -> bytes:
        """Encode the message and keep the octets of its AVPs for every later :meth:`encode`
        (e.g. an answer stored for retransmissions, then sent): header fields are read afresh
        each time and AVPs appended since are encoded after the kept ones. The AVPs present now
        must not be changed afterwards; removing or replacing them drops what was kept."""
        wire = self.encode()
        avps = self.avps
        self._frozen = (wire, len(avps), avps[-1] if avps else None)
        return wire

    def encode(self) -> bytes:
        """The message as wire bytes; Message-Length is computed here."""
        parts: list[bytes] = [b""]
        length = HEADER_LENGTH
        avps = self.avps
        frozen = self._frozen
        if frozen is not None:
            wire, count, last = frozen
            if len(avps) >= count and (not count or avps[count - 1] is last):
                parts.append(wire[HEADER_LENGTH:])
                length = len(wire)
                avps = avps[count:]
            else:
                self._frozen = None
        for a in avps:
            length += a._emit(parts)
        parts[0] = _HDR.pack(
            (self.version << 24) | length,
            (self.flags << 24) | self.command_code,
            self.application_id,
            self.hop_by_hop,
            self.end_to_end,
        )
        return b"".join(parts)

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview, *, validate: bool = False) -> Message:
        """Parse one message. Raises DecodeError: 5015 for a length that disagrees with the data
        (or is not a multiple of 4, or exceeds MAX_MESSAGE_LENGTH), 5011 for a version other
        than 1, 3008 for reserved header bits or an E bit on a request, 5014/3009 for AVP
        header errors. With `validate`, nested Grouped AVPs are checked too (`validate()`)."""
        if type(data) is not bytes:
            data = bytes(data)  # never alias a buffer the caller may reuse
        if len(data) < HEADER_LENGTH:
            raise DecodeError(
                ResultCode.INVALID_MESSAGE_LENGTH, f"header needs 20 octets, got {len(data)}"
            )
        vl, fc, app, h2h, e2e = _HDR.unpack_from(data)
        version = vl >> 24
        length = vl & 0xFFFFFF
        flags = fc >> 24
        if (
            version != VERSION
            or flags & FLAGS_RESERVED
            or length != len(data)
            or length & 3
            or length > MAX_MESSAGE_LENGTH
            or (flags & FLAG_REQUEST and flags & FLAG_ERROR)
        ):
            raise _header_error(read_header(data), len(data))
        try:
            avps = walk(data, HEADER_LENGTH, length, 0)
            if validate:
                check_avps(avps, 0)
        except DecodeError as exc:
            exc.header = read_header(data)
            raise
        return cls(fc & 0xFFFFFF, app, flags, h2h, e2e, avps, version)

    def validate(self) -> None:
        """Check every AVP down to the leaves: lengths, nesting depth, fixed-size data lengths.
        Raises DecodeError (5014 with Failed-AVP, 5004 for nesting deeper than MAX_GROUP_DEPTH).
        Values are not converted: a bad UTF-8 string or Address family surfaces (5004) when read."""
        wire = self.encode()
        check(wire, HEADER_LENGTH, len(wire), 0)
