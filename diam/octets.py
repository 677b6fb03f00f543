"""Diameter requests assembled from AVP octets (RFC 6733 §4), for clients whose requests repeat
one shape, like the IMS core's Rx/Ro requests per call: the constant AVPs (Auth-Application-Id,
Vendor-Specific-Application-Id, Destination-Realm, Service-Context-Id, Specific-Action, ...) are
encoded once and reused as octets; only the per-call values are encoded, straight to wire
octets, with the dictionary's code, vendor id, V/M flags and value encoders — the very octets
``Avp.new`` produces (a unit test compares them). ``request`` turns the octets into a
``diam.message.Message`` that reads like any decoded one.
"""

from __future__ import annotations

import struct
from typing import Any

from diam.avp import _HDR8, _HDR12
from diam.codec_types import ENCODERS
from diam.constants import AVP_FLAG_MANDATORY, AVP_FLAG_VENDOR
from diam.dictionary import AvpType, avp_def
from diam.message import Message

_MSG = struct.Struct(">IIIII")
_PAD = (b"", b"\x00\x00\x00", b"\x00\x00", b"\x00")
_REQUEST_PROXIABLE = 0xC0  # R and P bits (RFC 6733 §3)

# name -> (code, vendor, flags, value encoder or None for Grouped), filled on first use
_KINDS: dict[str, tuple[int, int, int, Any]] = {}


def _kind(name: str) -> tuple[int, int, int, Any]:
    kind = _KINDS.get(name)
    if kind is None:
        d = avp_def(name)
        flags = (AVP_FLAG_VENDOR if d.vendor else 0) | (AVP_FLAG_MANDATORY if d.mandatory else 0)
        encoder = None if d.type is AvpType.GROUPED else ENCODERS[d.type]
        kind = _KINDS[name] = (d.code, d.vendor, flags, encoder)
    return kind


def _wrap(code: int, vendor: int, flags: int, data: bytes) -> bytes:
    if vendor:
        length = 12 + len(data)
        head = _HDR12.pack(code, (flags << 24) | length, vendor)
    else:
        length = 8 + len(data)
        head = _HDR8.pack(code, (flags << 24) | length)
    return head + data + _PAD[length & 3]


def avp(name: str, value: Any) -> bytes:
    """AVP ``name`` (not Grouped) carrying ``value``, as padded wire octets."""
    code, vendor, flags, encode = _kind(name)
    if encode is None:
        raise TypeError(f"{name} is Grouped: use group()")
    try:
        data = encode(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None
    return _wrap(code, vendor, flags, data)


def group(name: str, *children: bytes) -> bytes:
    """Grouped AVP ``name`` holding the children's wire octets (each already padded)."""
    code, vendor, flags, encode = _kind(name)
    if encode is not None:
        raise TypeError(f"{name} is not Grouped")
    return _wrap(code, vendor, flags, b"".join(children))


def request(command_code: int, application_id: int, *parts: bytes) -> Message:
    """A proxiable request (ids left for the node to set) whose AVPs are ``parts``' octets."""
    body = b"".join(parts)
    header = _MSG.pack(
        (1 << 24) | (20 + len(body)),
        (_REQUEST_PROXIABLE << 24) | command_code,
        application_id,
        0,
        0,
    )
    return Message.decode(header + body)
