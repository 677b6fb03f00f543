"""Wireshark as the independent oracle: it must dissect our messages cleanly, naming every AVP we
meant, and its dictionary must agree with ours on AVP types and forbidden M bits."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench._diameter_samples import SAMPLES, build
from diam.dictionary import all_defs, avp_def

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(
        not (shutil.which("tshark") and shutil.which("text2pcap")),
        reason="Wireshark's tshark/text2pcap not installed",
    ),
]


def _tshark(*args: str) -> str:
    return subprocess.run(
        ["tshark", *args], capture_output=True, text=True, check=True, timeout=120
    ).stdout


@pytest.fixture(scope="module")
def pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our encoded samples as TCP segments to port 3868 (text2pcap needs no capture rights)."""
    work = tmp_path_factory.mktemp("wireshark")
    dump = []
    for spec in SAMPLES.values():
        wire = build(spec).encode()
        dump += [
            f"{i:06x} " + " ".join(f"{b:02x}" for b in wire[i : i + 16])
            for i in range(0, len(wire), 16)
        ]
        dump.append("")
    (work / "in.txt").write_text("\n".join(dump) + "\n")
    subprocess.run(
        ["text2pcap", "-q", "-T", "40000,3868", str(work / "in.txt"), str(work / "out.pcap")],
        check=True,
        timeout=60,
    )
    return work / "out.pcap"


def test_no_malformed_packets_or_warnings(pcap: Path) -> None:
    frames = _tshark("-r", str(pcap), "-Y", "diameter")
    assert len(frames.splitlines()) == len(SAMPLES)
    bad = _tshark(
        "-r", str(pcap), "-Y", 'diameter && (_ws.malformed || _ws.expert.severity >= "Warning")'
    )
    assert bad == ""


def _names(items: list[tuple[str, Any]]) -> list[str]:
    out = []
    for name, value in items:
        out.append(name)
        if isinstance(value, list):
            out += _names(value)
    return out


# Where Wireshark (like python-diameter) spells a name differently from the 3GPP spec: it prefixes
# TS 32.299's SIP-Method (824/10415) with 3GPP- to keep it apart from RFC 4740's (393/0), and
# capitalises TS 32.299 §7.2.242 User-Session-Id as User-Session-ID.
WS_NAMES = {"SIP-Method": "3GPP-SIP-Method", "User-Session-Id": "User-Session-ID"}


def test_every_avp_we_meant_is_named(pcap: Path) -> None:
    text = _tshark("-r", str(pcap), "-V")
    frames = re.split(r"^Frame \d+:", text, flags=re.M)[1:]
    assert len(frames) == len(SAMPLES)
    for (case, spec), frame in zip(SAMPLES.items(), frames, strict=True):
        shown = re.findall(r"AVP: ([\w.-]+)\((\d+)\)", frame)
        meant = [(WS_NAMES.get(n, n), str(avp_def(n).code)) for n in _names(spec.avps)]
        assert shown == meant, case


# Wireshark's dictionary spells some RFC 6733 types differently.
WS_TYPES = {
    "IPAddress": "Address",
    "AppId": "Unsigned32",
    "VendorId": "Unsigned32",
    "QoSFilterRule": "OctetString",
}
# Where we keep the RFC's type and Wireshark uses a display-oriented one.
TYPE_EXCEPTIONS = {
    "Framed-IP-Address": "RFC 7155 §4.4.10.5.1: OctetString of 4 octets, no address family",
    "Framed-IP-Netmask": "RFC 7155 §4.4.10.5.2: OctetString, no address family",
    "3GPP-CG-Address": "TS 29.061 §16.4.7: OctetString (raw IPv4), no address family",
    "3GPP-SGSN-Address": "TS 29.061 §16.4.7: OctetString (raw IPv4), no address family",
    "3GPP-GGSN-Address": "TS 29.061 §16.4.7: OctetString (raw IPv4), no address family",
    "Experimental-Result-Code": "RFC 6733 §7.7: Unsigned32",
    "Framed-IPX-Network": "RFC 7155 §4.4.10.7.1: Unsigned32",
    "ISUP-Cause-Location": "TS 32.299: Unsigned32",
    "EAP-Key-Name": "python-diameter keeps OctetString; opaque either way",
    "3GPP-NSAPI": "TS 29.061: OctetString (one octet) in python-diameter",
}


def _wireshark_dictionary() -> dict[tuple[int, int], tuple[str, str | None, str | None]]:
    folder = Path("/usr/share/wireshark/diameter")
    for line in _tshark("-G", "folders").splitlines():
        if line.startswith("Global configuration:"):
            folder = Path(line.split(":", 1)[1].strip()) / "diameter"
    vendors: dict[str, int] = {}
    raw: dict[tuple[int, str], tuple[str, str | None, str | None]] = {}
    for path in sorted(folder.glob("*.xml")):
        xml = re.sub(r"<!--.*?-->", "", path.read_text(errors="replace"), flags=re.S)
        for m in re.finditer(r"<vendor\s+([^>]*)>", xml):
            attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
            if "vendor-id" in attrs and "code" in attrs:
                vendors[attrs["vendor-id"]] = int(attrs["code"])
        for m in re.finditer(r"<avp\s+([^>]*?)/?>(.*?)(?:</avp>|(?=<avp\s))", xml, flags=re.S):
            attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(1)))
            kind = re.search(r'<type\s+type-name="([^"]+)"', m.group(2))
            type_name = "Grouped" if "<grouped" in m.group(2) else (kind and kind.group(1))
            raw.setdefault(
                (int(attrs["code"]), attrs.get("vendor-id", "")),
                (attrs.get("name", ""), type_name, attrs.get("mandatory")),
            )
    return {
        (code, vendors.get(v, 0) if v not in ("", "None") else 0): entry
        for (code, v), entry in raw.items()
        if v in ("", "None") or v in vendors
    }


def test_dictionary_agrees_with_wireshark() -> None:
    theirs = _wireshark_dictionary()
    types, m_bits, compared = [], [], 0
    for d in all_defs():
        entry = theirs.get((d.code, d.vendor))
        if d.vendor not in (0, 10415, 13019) or entry is None:
            continue
        compared += 1
        _name, ws_type, mandatory = entry
        ws_type = WS_TYPES.get(ws_type or "", ws_type)
        if ws_type == "OctetStringOrUTF8":
            ws_type = d.type.value if d.type.value in ("OctetString", "UTF8String") else ws_type
        if ws_type and ws_type != d.type.value and d.name not in TYPE_EXCEPTIONS:
            types.append((d.name, d.type.value, ws_type))
        if mandatory == "mustnot" and d.mandatory:
            m_bits.append(d.name)
    assert compared > 1500
    assert types == []
    assert m_bits == []
