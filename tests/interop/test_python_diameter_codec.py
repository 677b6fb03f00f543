"""Cross-implementation check: python-diameter 0.9.0 as an independent second codec.

Its typed command classes drop AVPs they do not model, so trees are compared through its generic
AVP access (`Message.from_bytes(..., plain_msg=True)`, `Avp.new(code, vendor, value)`).
"""

from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from diameter.message import Message as PdMessage
from diameter.message.avp import Avp as PdAvp
from diameter.message.avp import avp as pd_types

from bench._diameter_samples import SAMPLES, build, build_python_diameter
from diam.dictionary import avp_def
from diam.message import Avp, Message

CASES = ["gx_ccr_i", "gx_cca", "rx_aar", "ro_ccr_u"]


def our_tree(avps: list[Avp]) -> list[tuple[Any, ...]]:
    return [(a.code, a.vendor, a.flags, a.data,
             our_tree(a.value) if isinstance(a.value, list) else None) for a in avps]


def pd_tree(avps: list[PdAvp]) -> list[tuple[Any, ...]]:
    return [(a.code, a.vendor_id, a.flags, a.payload,
             pd_tree(a.value) if isinstance(a, pd_types.AvpGrouped) else None) for a in avps]


def pd_value_matches(ours: Avp, theirs: PdAvp) -> bool:
    """python-diameter's typed reading of a leaf equals ours (modulo its coarser types)."""
    mine, value = ours.value, theirs.value
    if isinstance(mine, IPv4Address | IPv6Address):
        return value == (1 if mine.version == 4 else 2, str(mine))
    if isinstance(mine, datetime):
        return value.replace(tzinfo=UTC) == mine
    if isinstance(mine, str) and isinstance(value, bytes):  # its OctetString, our Identity/URI
        return value == mine.encode()
    return value == mine


def check_values(ours: list[Avp], theirs: list[PdAvp]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        if isinstance(a.value, list):
            check_values(a.value, b.value)
        else:
            assert pd_value_matches(a, b), (a, b.value)


def named_tree(avps: list[Avp]) -> list[tuple[str, Any]]:
    return [(a.name, named_tree(a.value) if isinstance(a.value, list) else a.value)
            for a in avps]


def canonical(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    for name, value in items:
        if isinstance(value, list):
            value = canonical(value)
        elif isinstance(value, str) and avp_def(name).type.value == "OctetString":
            value = value.encode()
        out.append((name, value))
    return out


@pytest.mark.parametrize("case", CASES)
def test_python_diameter_decodes_what_we_encode(case: str) -> None:
    wire = build(SAMPLES[case]).encode()
    theirs = PdMessage.from_bytes(wire, plain_msg=True)
    ours = Message.decode(wire, validate=True)
    assert (theirs.header.command_code, theirs.header.application_id,
            theirs.header.command_flags, theirs.header.length) == (
        ours.command_code, ours.application_id, ours.flags, len(wire))
    assert pd_tree(theirs.avps) == our_tree(ours.avps)
    check_values(ours.avps, theirs.avps)
    assert theirs.as_bytes() == wire


@pytest.mark.parametrize("case", CASES)
def test_we_decode_what_python_diameter_encodes(case: str) -> None:
    spec = SAMPLES[case]
    wire = build_python_diameter(spec).as_bytes()
    assert wire == build(spec).encode()  # same AVPs, same flags: the very same octets
    ours = Message.decode(wire, validate=True)
    assert (ours.command_code, ours.application_id, ours.flags) == (
        spec.command_code, spec.application_id, spec.flags)
    assert named_tree(ours.avps) == canonical(spec.avps)
    assert ours.encode() == wire


def test_samples_are_the_shapes_the_issue_names() -> None:
    def count(items: list[tuple[str, Any]], name: str) -> int:
        return sum((n == name) + (count(v, name) if isinstance(v, list) else 0)
                   for n, v in items)

    def total(items: list[tuple[str, Any]]) -> int:
        return sum(1 + (total(v) if isinstance(v, list) else 0) for _n, v in items)

    assert count(SAMPLES["gx_cca"].avps, "Charging-Rule-Definition") == 2
    assert count(SAMPLES["gx_cca"].avps, "Charging-Rule-Install") == 2
    assert count(SAMPLES["rx_aar"].avps, "Media-Component-Description") == 2
    assert count(SAMPLES["ro_ccr_u"].avps, "Multiple-Services-Credit-Control") == 2
    assert count(SAMPLES["ro_ccr_u"].avps, "IMS-Information") == 1
    assert total(SAMPLES["ro_ccr_u"].avps) == 40
