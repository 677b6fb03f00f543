"""AVPs (RFC 6733 §4): lazy decoding from wire bytes, direct encoding, grouped navigation.

A decoded AVP keeps a reference to the message bytes and its offset; its value is converted on
first access and, while the AVP is unmodified, it re-encodes as the exact bytes it came from
(unknown AVPs included). Changing `value`, `flags`, `code` or `vendor` drops that cache.
Values are sliced from the message's immutable bytes only when read: a few-octet copy costs what
a memoryview would and yields bytes that hash and compare directly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from diam.codec_types import (
    DECODERS,
    ENCODERS,
    FIXED_SIZE,
    MIN_ADDRESS,
    NUMBER_STRUCTS,
    UnsupportedValue,
)
from diam.constants import (
    AVP_FLAG_MANDATORY,
    AVP_FLAG_VENDOR,
    AVP_FLAGS_RESERVED,
    ResultCode,
)
from diam.dictionary import _BY_KEY, AvpDef, AvpType, avp_def

# Grouped AVPs nest at most this deep (the deepest 3GPP Gx/Rx/Ro structure is about 6 levels).
MAX_GROUP_DEPTH = 16

_HDR8 = struct.Struct(">II")
_HDR12 = struct.Struct(">III")
_U32 = struct.Struct(">I")
_PAD = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_GROUPED = AvpType.GROUPED
_ADDRESS = AvpType.ADDRESS
_OCTETS = AvpType.OCTET_STRING
_UNSET: Any = object()


class Header(NamedTuple):
    """The 20-octet message header (RFC 6733 §3)."""

    version: int
    length: int
    flags: int
    command_code: int
    application_id: int
    hop_by_hop: int
    end_to_end: int


class DecodeError(Exception):
    """Malformed Diameter data. `result_code` is the answer RFC 6733 §7.1 prescribes,
    `failed_avp` the offending AVP as wire bytes (for Failed-AVP), `header` the message header
    when it could be parsed."""

    def __init__(
        self,
        result_code: int,
        message: str,
        failed_avp: bytes | None = None,
        header: Header | None = None,
    ) -> None:
        super().__init__(f"{int(result_code)}: {message}")
        self.result_code = int(result_code)
        self.message = message
        self.failed_avp = failed_avp
        self.header = header


def _length_error(buf: bytes, pos: int, end: int, what: str) -> DecodeError:
    """5014 for an AVP whose length field is impossible. Per RFC 6733 §7.1.5 Failed-AVP carries
    the offending header as received (zero-filled up to the minimum header length) and a
    zero-filled payload of the minimum length for the AVP's data type."""
    head = bytes(buf[pos : min(pos + 12, end)])
    hlen = 12 if len(head) > 4 and head[4] & AVP_FLAG_VENDOR else 8
    head = head[:hlen].ljust(hlen, b"\x00")
    code = _U32.unpack_from(head)[0]
    vendor = _U32.unpack_from(head, 8)[0] if hlen == 12 else 0
    d = _BY_KEY.get((vendor << 32) | code)
    size = 0 if d is None else FIXED_SIZE.get(d.type, MIN_ADDRESS if d.type is _ADDRESS else 0)
    return DecodeError(ResultCode.INVALID_AVP_LENGTH, what, head + bytes(size))


def walk(buf: bytes, pos: int, end: int, depth: int) -> list[Avp]:
    """Split buf[pos:end] into AVPs: one pass over the headers, no value conversion. Strict
    about padding: each AVP's padded length must fit its container (RFC 6733 §4.4: a Grouped
    AVP's data holds its members with their padding)."""
    avps: list[Avp] = []
    append = avps.append
    unpack = _HDR8.unpack_from
    unpack_vendor = _U32.unpack_from
    new = Avp
    try:
        while pos < end:
            code, word = unpack(buf, pos)
            length = word & 0xFFFFFF
            nxt = pos + ((length + 3) & ~3)
            flags = word >> 24
            if flags & AVP_FLAG_VENDOR:
                if length < 12 or nxt > end or flags & AVP_FLAGS_RESERVED:
                    raise _header_error(buf, pos, end)
                append(
                    new(
                        code,
                        unpack_vendor(buf, pos + 8)[0],
                        flags,
                        buf,
                        pos + 12,
                        pos + length,
                        depth,
                    )
                )
            else:
                # A length >= 8 that fits also proves the 8 header octets were inside `end`.
                if length < 8 or nxt > end or flags & AVP_FLAGS_RESERVED:
                    raise _header_error(buf, pos, end)
                append(new(code, 0, flags, buf, pos + 8, pos + length, depth))
            pos = nxt
    except struct.error:  # fewer than 8 octets left in the whole buffer
        raise _header_error(buf, pos, end) from None
    return avps


def _header_error(buf: bytes, pos: int, end: int) -> DecodeError:
    """The precise error for the AVP header at buf[pos:end] that `walk` rejected."""
    if end - pos < 8:
        return _length_error(buf, pos, end, f"{end - pos} trailing octets are no AVP")
    code, word = _HDR8.unpack_from(buf, pos)
    flags, length = word >> 24, word & 0xFFFFFF
    minimum = 12 if flags & AVP_FLAG_VENDOR else 8
    if length < minimum:
        return _length_error(buf, pos, end, f"AVP {code} length {length} < {minimum}")
    nxt = pos + ((length + 3) & ~3)
    if nxt > end:
        return _length_error(buf, pos, end, f"AVP {code} length {length} overruns its container")
    return DecodeError(
        ResultCode.INVALID_AVP_BITS, f"AVP {code} has reserved flag bits set", bytes(buf[pos:nxt])
    )


def check(buf: bytes, pos: int, end: int, depth: int) -> None:
    """Validate buf[pos:end] as AVPs, recursing into known Grouped AVPs (depth-capped) and
    checking the data length of fixed-size types, without converting values."""
    check_avps(walk(buf, pos, end, depth), depth)


def check_avps(avps: list[Avp], depth: int) -> None:
    """`check` for AVPs already split out of their buffer (decoded, not modified)."""
    for avp in avps:
        d = avp.definition
        if d is None:
            continue
        if d.type is _GROUPED:
            if depth + 1 >= MAX_GROUP_DEPTH:
                raise avp._value_error(f"Grouped AVPs nested deeper than {MAX_GROUP_DEPTH}")
            check(avp._buf, avp._start, avp._end, depth + 1)  # type: ignore[arg-type]
        else:
            size = FIXED_SIZE.get(d.type)
            if size is not None and avp._end - avp._start != size:
                raise DecodeError(
                    ResultCode.INVALID_AVP_LENGTH,
                    f"{d.name} data is {avp._end - avp._start} octets, expected {size}",
                    avp.wire(),
                )


def _coerce(item: Avp | tuple[str, Any]) -> Avp:
    if isinstance(item, Avp):
        return item
    name, value = item
    return Avp.new(name, value)


def _children(name: str, value: Any) -> list[Avp]:
    """The children of Grouped AVP `name` from an iterable of Avp or (name, value) pairs."""
    if (
        type(value) is not list
        and type(value) is not tuple
        and (isinstance(value, str | bytes | bytearray) or not isinstance(value, Iterable))
    ):
        raise TypeError(f"{name} is Grouped: give an iterable of Avp or (name, value) pairs")
    return [item if isinstance(item, Avp) else Avp.new(*item) for item in value]


class Avp:
    """One AVP. Build with `Avp.new(name, value)`; decoded ones come from `Message.decode`.

    State: a decoded AVP points into the message bytes (`_buf`, data at `_start:_end`); a built
    or modified one holds its encoded data in `_data`. `_value` caches the converted value (for
    Grouped, the list of children, which is then the source of truth for encoding).
    """

    __slots__ = (
        "_buf",
        "_code",
        "_data",
        "_depth",
        "_end",
        "_flags",
        "_start",
        "_value",
        "_vendor",
    )

    def __init__(
        self,
        code: int,
        vendor: int,
        flags: int,
        buf: bytes | None,
        start: int,
        end: int,
        depth: int,
    ) -> None:
        self._code = code
        self._vendor = vendor
        self._flags = flags
        self._buf = buf
        self._start = start
        self._end = end
        self._depth = depth
        self._value = _UNSET
        self._data: bytes | None = None

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def new(cls, name: str, value: Any, *, mandatory: bool | None = None) -> Avp:
        """AVP `name` carrying `value`; vendor id and V/M bits come from the dictionary.
        For Grouped, `value` is an iterable of Avp or (name, value) pairs, nested freely."""
        entry = _NEW.get(name)
        if entry is None:
            avp_def(name)  # raises the KeyError naming it
        code, vendor, flags, encode = entry  # type: ignore[misc]
        if mandatory is not None:
            flags = (flags | AVP_FLAG_MANDATORY) if mandatory else (flags & ~AVP_FLAG_MANDATORY)
        avp = cls(code, vendor, flags, None, 0, 0, 0)
        if encode is None:
            avp._value = _children(name, value)
        else:
            try:
                avp._data = encode(value)
            except TypeError as exc:
                raise TypeError(f"{name}: {exc}") from None
            except ValueError as exc:  # UnicodeEncodeError included
                raise ValueError(f"{name}: {exc}") from None
        return avp

    @classmethod
    def from_wire(cls, raw: bytes) -> Avp:
        """An AVP that re-encodes exactly as `raw` (zero-padded to 4 octets), e.g. a received
        malformed AVP to be returned inside Failed-AVP (RFC 6733 §7.5)."""
        raw = bytes(raw)
        code, word, vendor = _HDR12.unpack(raw[:12].ljust(12, b"\x00"))
        flags = word >> 24
        hlen = 12 if flags & AVP_FLAG_VENDOR else 8
        if hlen == 8:
            vendor = 0
        length = word & 0xFFFFFF
        end = length if hlen <= length <= len(raw) else len(raw)  # a bogus length: keep it all
        buf = raw + _PAD[len(raw) & 3]
        return cls(code, vendor, flags, buf, min(hlen, len(raw)), end, 0)

    def clone(self) -> Avp:
        """An independent AVP that encodes to this one's current octets (a received one's bytes
        exactly, e.g. the Session-Id an answer copies, RFC 6733 §8.8)."""
        buf = self._buf
        start = self._start
        pos = start - (12 if self._flags & AVP_FLAG_VENDOR else 8)
        if buf is None or pos < 0 or type(self._value) is list:  # built, changed or truncated
            return Avp.from_wire(self.wire())
        raw = buf[pos : pos + ((self._end - pos + 3) & ~3)]
        return Avp(self._code, self._vendor, self._flags, raw, start - pos, self._end - pos, 0)

    # -- header fields -------------------------------------------------------------------------
    @property
    def code(self) -> int:
        return self._code

    @code.setter
    def code(self, code: int) -> None:
        self._detach()
        self._code = code

    @property
    def vendor(self) -> int:
        return self._vendor

    @vendor.setter
    def vendor(self, vendor: int) -> None:
        """Setting a vendor id sets the V bit; vendor 0 clears it."""
        self._detach()
        self._vendor = vendor
        if vendor:
            self._flags |= AVP_FLAG_VENDOR
        else:
            self._flags &= ~AVP_FLAG_VENDOR

    @property
    def flags(self) -> int:
        return self._flags

    @flags.setter
    def flags(self, flags: int) -> None:
        if bool(flags & AVP_FLAG_VENDOR) != bool(self._vendor):
            raise ValueError("the V bit follows the vendor id: set .vendor instead")
        self._detach()
        self._flags = flags

    @property
    def definition(self) -> AvpDef | None:
        return _BY_KEY.get((self._vendor << 32) | self._code)

    @property
    def name(self) -> str:
        d = _BY_KEY.get((self._vendor << 32) | self._code)
        return d.name if d is not None else f"Unknown({self._code},{self._vendor})"

    @property
    def is_mandatory(self) -> bool:
        return bool(self._flags & AVP_FLAG_MANDATORY)

    # -- value ---------------------------------------------------------------------------------
    @property
    def data(self) -> bytes:
        """The raw value octets (no header, no padding)."""
        value = self._value
        if type(value) is list:
            parts: list[bytes] = []
            for child in value:
                child._emit(parts)
            return b"".join(parts)
        if self._buf is not None:
            return self._buf[self._start : self._end]
        assert self._data is not None
        return self._data

    @property
    def value(self) -> Any:
        """The value converted per the dictionary type (bytes when the AVP is unknown);
        Grouped -> list[Avp]. Raises DecodeError (5014/5004) on malformed data."""
        value = self._value
        if value is not _UNSET:
            return value
        conv = _CONVERTERS.get((self._vendor << 32) | self._code, bytes)
        buf = self._buf
        if buf is not None and type(conv) is _Struct:  # fixed-size number: no slice, no frame
            start = self._start
            if self._end - start == conv.size:
                value = self._value = conv.unpack_from(buf, start)[0]
                return value
            raise DecodeError(
                ResultCode.INVALID_AVP_LENGTH,
                f"{self.name}: expected {conv.size} octets, got {self._end - start}",
                self.wire(),
            )
        if conv is None:  # Grouped
            if self._depth + 1 >= MAX_GROUP_DEPTH:
                raise self._value_error(f"Grouped AVPs nested deeper than {MAX_GROUP_DEPTH}")
            if buf is None:  # detached octets (e.g. its code was changed to a Grouped one)
                buf, self._start, self._end = self._data, 0, len(self._data or b"")
            value = self._value = walk(buf, self._start, self._end, self._depth + 1)
            return value
        if type(conv) is _Struct:
            conv = _DECODE_STRUCT[conv]
        data = self._data if buf is None else buf[self._start : self._end]
        try:
            value = self._value = conv(data)
        except UnsupportedValue as exc:
            raise self._value_error(str(exc)) from None
        except (ValueError, struct.error) as exc:
            code = (
                ResultCode.INVALID_AVP_VALUE
                if isinstance(exc, UnicodeDecodeError)
                else ResultCode.INVALID_AVP_LENGTH
            )
            raise DecodeError(code, f"{self.name}: {exc}", self.wire()) from None
        return value

    @value.setter
    def value(self, value: Any) -> None:
        d = _BY_KEY.get((self._vendor << 32) | self._code)
        if d is not None and d.type is _GROUPED:
            self._value = _children(d.name, value)
            self._data = None
        else:
            self._data = ENCODERS[d.type if d is not None else _OCTETS](value)
            self._value = _UNSET  # re-read from the encoded bytes: the value the peer will see
        self._buf = None
        self._depth = 0

    def _value_error(self, message: str) -> DecodeError:
        return DecodeError(ResultCode.INVALID_AVP_VALUE, f"{self.name}: {message}", self.wire())

    def _detach(self) -> None:
        """Drop the cached wire bytes, keeping the data, before a header field changes."""
        if self._buf is not None:
            if type(self._value) is not list:
                self._data = self._buf[self._start : self._end]
            self._buf = None

    # -- grouped navigation --------------------------------------------------------------------
    def _children(self) -> list[Avp]:
        value = self.value
        if type(value) is not list:
            raise TypeError(f"{self.name} is not a Grouped AVP")
        return value

    def __getitem__(self, name: str) -> list[Avp]:
        """Every child AVP called `name` (possibly none)."""
        code, vendor = _KEYS.get(name) or key_of(name)
        return [a for a in self._children() if a._code == code and a._vendor == vendor]

    def first(self, name: str) -> Avp | None:
        """The first child AVP called `name`, else None."""
        code, vendor = _KEYS.get(name) or key_of(name)
        for a in self._children():
            if a._code == code and a._vendor == vendor:
                return a
        return None

    def get(self, name: str, default: Any = None) -> Any:
        """The value of the first child called `name`, else `default`."""
        code, vendor = _KEYS.get(name) or key_of(name)
        for a in self._children():
            if a._code == code and a._vendor == vendor:
                return a.value
        return default

    def __iter__(self) -> Iterator[Avp]:
        return iter(self._children())

    def add(self, *items: Avp | tuple[str, Any]) -> Avp:
        """Append children to a Grouped AVP (returns self)."""
        self._children().extend(_coerce(i) for i in items)
        return self

    # -- encoding ------------------------------------------------------------------------------
    def _emit(self, out: list[bytes]) -> int:
        """Append this AVP's wire form (padded) to `out`; return its padded length."""
        value = self._value
        flags = self._flags
        if type(value) is not list:
            data = self._data
            if data is not None:  # built or changed: header, data, padding
                if flags & 0x80:  # AVP_FLAG_VENDOR
                    length = 12 + len(data)
                    out.append(_HDR12.pack(self._code, (flags << 24) | length, self._vendor))
                else:
                    length = 8 + len(data)
                    out.append(_HDR8.pack(self._code, (flags << 24) | length))
                out.append(data)
                if length & 3:
                    out.append(_PAD[length & 3])
                    return (length + 3) & ~3
                return length
            # unmodified: the octets it came with
            pos = self._start - (12 if flags & 0x80 else 8)
            end = pos + ((self._end - pos + 3) & ~3)
            out.append(self._buf[pos:end])  # type: ignore[index]
            return end - pos
        hlen = 12 if flags & AVP_FLAG_VENDOR else 8
        slot = len(out)
        out.append(b"")  # the header, once the children's length is known
        length = hlen
        for child in value:
            length += child._emit(out)
        if hlen == 12:
            out[slot] = _HDR12.pack(self._code, (flags << 24) | length, self._vendor)
        else:
            out[slot] = _HDR8.pack(self._code, (flags << 24) | length)
        return length

    def wire(self) -> bytes:
        """The AVP as wire bytes, padding included."""
        parts: list[bytes] = []
        self._emit(parts)
        return b"".join(parts)

    def __repr__(self) -> str:
        try:
            value = self.value
        except DecodeError:
            value = "<malformed>"
        return f"Avp({self.name}, {value!r})"


# (vendor << 32 | code) -> how to convert the value of every dictionary AVP: a struct.Struct for
# fixed-size numbers (unpacked in place), a function for the others, None for Grouped. Unknown
# AVPs convert with `bytes`.
_Struct = struct.Struct
_DECODE_STRUCT: dict[struct.Struct, Any] = {s: DECODERS[t] for t, s in NUMBER_STRUCTS.items()}
# name -> (code, vendor, default flags, encoder; None for Grouped): Avp.new's one lookup.
_NEW: dict[str, tuple[int, int, int, Any]] = {
    d.name: (
        d.code,
        d.vendor,
        (AVP_FLAG_VENDOR if d.vendor else 0) | (AVP_FLAG_MANDATORY if d.mandatory else 0),
        None if d.type is _GROUPED else ENCODERS[d.type],
    )
    for d in _BY_KEY.values()
}
# name -> (code, vendor): the lookup of every access by name.
_KEYS: dict[str, tuple[int, int]] = {d.name: (d.code, d.vendor) for d in _BY_KEY.values()}


def key_of(name: str) -> tuple[int, int]:
    """(code, vendor) of AVP `name`; KeyError naming it when the dictionary lacks it."""
    key = _KEYS.get(name)
    if key is None:
        d = avp_def(name)  # raises the KeyError naming it
        key = (d.code, d.vendor)
    return key


class Fields:
    """Several AVPs of one level (a message's or a Grouped AVP's) read in one pass:
    ``Fields(single, repeated)(avps)`` lists, in the order named, the first instance of each
    ``single`` name (None when absent), then every instance of each ``repeated`` name (a list,
    possibly empty). One dict probe per AVP instead of a scan per name."""

    __slots__ = ("_count", "_slots")

    def __init__(self, single: Iterable[str], repeated: Iterable[str] = ()) -> None:
        names = list(single)
        self._count = len(names)
        names += repeated
        self._slots = {(vendor << 32) | code: i
                       for i, (code, vendor) in enumerate(map(key_of, names))}  # fmt: skip

    def __call__(self, avps: list[Avp]) -> list[Any]:
        count = self._count
        out: list[Any] = [None] * len(self._slots)
        slot = self._slots.get
        for avp in avps:
            i = slot((avp._vendor << 32) | avp._code)
            if i is None:
                continue
            if i < count:
                if out[i] is None:
                    out[i] = avp
            elif out[i] is None:
                out[i] = [avp]
            else:
                out[i].append(avp)
        for i in range(count, len(out)):
            if out[i] is None:
                out[i] = []
        return out


_CONVERTERS: dict[int, Any] = {
    key: None if d.type is _GROUPED else NUMBER_STRUCTS.get(d.type, DECODERS[d.type])
    for key, d in _BY_KEY.items()
}
