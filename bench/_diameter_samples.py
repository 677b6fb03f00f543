"""Sample Diameter messages shared by the codec tests (unit, interop) and bench/codec.py.

Each sample is a `Spec`: command code, application id, header flags and the AVP tree as
(name, value) pairs, Grouped values being lists of pairs. `build(spec)` turns it into our Message;
`build_python_diameter(spec)` builds the same message with python-diameter, for the interop tests
and the benchmark.
"""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NamedTuple

from diam.constants import (
    APP_BASE,
    APP_CREDIT_CONTROL,
    APP_GX,
    APP_RX,
    AVP_FLAG_MANDATORY,
    CMD_AA,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_CREDIT_CONTROL,
    FLAG_PROXIABLE,
    FLAG_REQUEST,
    VENDOR_3GPP,
)
from diam.dictionary import avp_def
from diam.message import Avp, Message

REQUEST = FLAG_REQUEST | FLAG_PROXIABLE
ANSWER = FLAG_PROXIABLE
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class Spec(NamedTuple):
    command_code: int
    application_id: int
    flags: int
    avps: list[tuple[str, Any]]


def build(spec: Spec, hop_by_hop: int = 0x1234, end_to_end: int = 0x5678) -> Message:
    msg = Message(spec.command_code, spec.application_id, spec.flags, hop_by_hop, end_to_end)
    return msg.add(*spec.avps)


def build_python_diameter(spec: Spec, hop_by_hop: int = 0x1234, end_to_end: int = 0x5678) -> Any:
    """The same message built with python-diameter's generic API (`Avp.new(code, vendor, value)`,
    its typed classes drop AVPs), with our M bits so that both encode to the same octets."""
    from diameter.message import Message as PdMessage
    from diameter.message import MessageHeader
    from diameter.message.avp import Avp as PdAvp
    from diameter.message.avp import avp as pd_types

    def avp(name: str, value: Any) -> Any:
        d = avp_def(name)
        mandatory = bool(Avp.new(name, value).flags & AVP_FLAG_MANDATORY)
        if isinstance(value, list):
            value = [avp(n, v) for n, v in value]
        elif isinstance(value, IPv4Address | IPv6Address):
            value = str(value)
        elif isinstance(value, str) and isinstance(
            PdAvp.new(d.code, d.vendor), pd_types.AvpOctetString
        ):
            value = value.encode()
        return PdAvp.new(d.code, d.vendor, value, is_mandatory=mandatory)

    header = MessageHeader(
        1, 0, spec.flags, spec.command_code, spec.application_id, hop_by_hop, end_to_end
    )
    return PdMessage(header, [avp(n, v) for n, v in spec.avps])


def count_avps(avps: list[tuple[str, Any]]) -> int:
    """Number of AVPs in a spec tree, nested ones included."""
    return sum(1 + (count_avps(v) if isinstance(v, list) else 0) for _n, v in avps)


def _arp(level: int) -> tuple[str, Any]:
    return (
        "Allocation-Retention-Priority",
        [
            ("Priority-Level", level),
            ("Pre-emption-Capability", 1),
            ("Pre-emption-Vulnerability", 0),
        ],
    )


def _rule(name: str, rating_group: int, ue: str, port: int) -> tuple[str, Any]:
    """A dynamic PCC rule for one voice media stream (TS 29.212 §5.3.4)."""
    return (
        "Charging-Rule-Install",
        [
            (
                "Charging-Rule-Definition",
                [
                    ("Charging-Rule-Name", name),
                    ("Rating-Group", rating_group),
                    (
                        "Flow-Information",
                        [
                            (
                                "Flow-Description",
                                f"permit out 17 from 192.0.2.10 40000 to {ue} {port}",
                            ),
                            ("Flow-Direction", 1),
                        ],
                    ),
                    (
                        "Flow-Information",
                        [
                            (
                                "Flow-Description",
                                f"permit out 17 from {ue} {port} to 192.0.2.10 40000",
                            ),
                            ("Flow-Direction", 2),
                        ],
                    ),
                    ("Flow-Status", 2),
                    (
                        "QoS-Information",
                        [
                            ("QoS-Class-Identifier", 1),
                            ("Max-Requested-Bandwidth-UL", 41000),
                            ("Max-Requested-Bandwidth-DL", 41000),
                            ("Guaranteed-Bitrate-UL", 41000),
                            ("Guaranteed-Bitrate-DL", 41000),
                            _arp(2),
                        ],
                    ),
                    ("Precedence", 100),
                    ("Online", 0),
                    ("Offline", 1),
                ],
            ),
        ],
    )


GX_CCR_I = Spec(
    CMD_CREDIT_CONTROL,
    APP_GX,
    REQUEST,
    [
        ("Session-Id", "pgw.epc.example;1772366400;1"),
        ("Auth-Application-Id", APP_GX),
        ("Origin-Host", "pgw.epc.example"),
        ("Origin-Realm", "epc.example"),
        ("Destination-Realm", "pcrf.example"),
        ("CC-Request-Type", 1),
        ("CC-Request-Number", 0),
        (
            "Subscription-Id",
            [("Subscription-Id-Type", 1), ("Subscription-Id-Data", "001010000000001")],
        ),
        (
            "Subscription-Id",
            [("Subscription-Id-Type", 0), ("Subscription-Id-Data", "491700000001")],
        ),
        (
            "Supported-Features",
            [
                ("Vendor-Id", VENDOR_3GPP),
                ("Feature-List-ID", 1),
                ("Feature-List", 0x0000000B),
            ],
        ),
        ("Network-Request-Support", 1),
        ("Framed-IP-Address", IPv4Address("10.45.0.5").packed),
        ("IP-CAN-Type", 5),
        ("RAT-Type", 1004),
        (
            "QoS-Information",
            [
                ("APN-Aggregate-Max-Bitrate-UL", 100_000_000),
                ("APN-Aggregate-Max-Bitrate-DL", 200_000_000),
            ],
        ),
        ("Default-EPS-Bearer-QoS", [("QoS-Class-Identifier", 5), _arp(1)]),
        ("AN-GW-Address", IPv4Address("127.0.0.2")),
        ("3GPP-User-Location-Info", bytes.fromhex("8200f110000100f11000000101")),
        ("Called-Station-Id", "ims"),
        ("Event-Timestamp", T0),
    ],
)

GX_CCA = Spec(
    CMD_CREDIT_CONTROL,
    APP_GX,
    ANSWER,
    [
        ("Session-Id", "pgw.epc.example;1772366400;1"),
        ("Auth-Application-Id", APP_GX),
        ("Origin-Host", "pcrf.example"),
        ("Origin-Realm", "pcrf.example"),
        ("Result-Code", 2001),
        ("CC-Request-Type", 1),
        ("CC-Request-Number", 0),
        (
            "Supported-Features",
            [
                ("Vendor-Id", VENDOR_3GPP),
                ("Feature-List-ID", 1),
                ("Feature-List", 0x0000000B),
            ],
        ),
        ("Bearer-Control-Mode", 2),
        ("Event-Trigger", 2),
        ("Event-Trigger", 13),
        ("Event-Trigger", 26),
        (
            "QoS-Information",
            [
                ("APN-Aggregate-Max-Bitrate-UL", 100_000_000),
                ("APN-Aggregate-Max-Bitrate-DL", 200_000_000),
            ],
        ),
        ("Default-EPS-Bearer-QoS", [("QoS-Class-Identifier", 5), _arp(1)]),
        _rule("ims-voice-audio-1", 100, "10.45.0.5", 49000),
        _rule("ims-voice-audio-1-rtcp", 100, "10.45.0.5", 49001),
        (
            "Usage-Monitoring-Information",
            [
                ("Monitoring-Key", b"mk-internet"),
                ("Granted-Service-Unit", [("CC-Total-Octets", 5_000_000_000)]),
                ("Usage-Monitoring-Level", 0),
            ],
        ),
        ("Revalidation-Time", T0),
    ],
)


def _media(number: int, media_type: int, ue_port: int) -> tuple[str, Any]:
    """One Media-Component-Description as a P-CSCF sends it (TS 29.214 §5.3.7)."""

    def sub(flow: int, port: int, usage: int) -> tuple[str, Any]:
        return (
            "Media-Sub-Component",
            [
                ("Flow-Number", flow),
                (
                    "Flow-Description",
                    f"permit out 17 from 192.0.2.10 {port} to 10.45.0.5 {ue_port}",
                ),
                ("Flow-Description", f"permit in 17 from 10.45.0.5 {ue_port} to 192.0.2.10 {port}"),
                ("Flow-Usage", usage),
            ],
        )

    return (
        "Media-Component-Description",
        [
            ("Media-Component-Number", number),
            sub(1, 40000, 0),
            sub(2, 40001, 1),
            ("Media-Type", media_type),
            ("Max-Requested-Bandwidth-UL", 41000),
            ("Max-Requested-Bandwidth-DL", 41000),
            ("Min-Requested-Bandwidth-UL", 41000),
            ("Min-Requested-Bandwidth-DL", 41000),
            ("RR-Bandwidth", 1000),
            ("RS-Bandwidth", 800),
            ("Codec-Data", "uplink\noffer\nm=audio 49000 RTP/AVP 96\na=rtpmap:96 AMR-WB/16000\n"),
            (
                "Codec-Data",
                "downlink\nanswer\nm=audio 40000 RTP/AVP 96\na=rtpmap:96 AMR-WB/16000\n",
            ),
            ("Flow-Status", 2),
        ],
    )


RX_AAR = Spec(
    CMD_AA,
    APP_RX,
    REQUEST,
    [
        ("Session-Id", "pcscf.ims.example;1772366400;7"),
        ("Auth-Application-Id", APP_RX),
        ("Origin-Host", "pcscf.ims.example"),
        ("Origin-Realm", "ims.example"),
        ("Destination-Realm", "pcrf.example"),
        ("AF-Application-Identifier", "IMS Services"),
        _media(1, 0, 49000),
        _media(2, 1, 49002),
        (
            "Subscription-Id",
            [
                ("Subscription-Id-Type", 2),
                ("Subscription-Id-Data", "sip:+491700000001@ims.example"),
            ],
        ),
        ("Framed-IP-Address", IPv4Address("10.45.0.5").packed),
        ("Specific-Action", 1),
        ("Specific-Action", 2),
        ("Specific-Action", 3),
        ("Specific-Action", 4),
        ("Specific-Action", 5),
        ("Specific-Action", 6),
        ("Specific-Action", 12),
        ("AF-Charging-Identifier", b"icid-0001"),
        ("SIP-Forking-Indication", 0),
        ("Reservation-Priority", 0),
        ("Rx-Request-Type", 0),
    ],
)


def _mscc(service: int, rating_group: int, used: int) -> tuple[str, Any]:
    return (
        "Multiple-Services-Credit-Control",
        [
            ("Requested-Service-Unit", [("CC-Time", 0)]),
            ("Used-Service-Unit", [("CC-Time", used)]),
            ("Service-Identifier", service),
            ("Rating-Group", rating_group),
        ],
    )


# 40 AVPs in all (nested ones counted): 2 MSCC and IMS-Information, as an S-CSCF sends a CCR-U.
RO_CCR_U = Spec(
    CMD_CREDIT_CONTROL,
    APP_CREDIT_CONTROL,
    REQUEST,
    [
        ("Session-Id", "scscf.ims.example;1772366400;42"),
        ("Origin-Host", "scscf.ims.example"),
        ("Origin-Realm", "ims.example"),
        ("Destination-Realm", "ocs.example"),
        ("Auth-Application-Id", APP_CREDIT_CONTROL),
        ("Service-Context-Id", "32260@3gpp.org"),
        ("CC-Request-Type", 2),
        ("CC-Request-Number", 1),
        ("Event-Timestamp", T0),
        (
            "Subscription-Id",
            [("Subscription-Id-Type", 0), ("Subscription-Id-Data", "491700000001")],
        ),
        _mscc(1000, 100, 55),
        _mscc(1001, 200, 30),
        (
            "Service-Information",
            [
                (
                    "IMS-Information",
                    [
                        ("Event-Type", [("SIP-Method", "INVITE")]),
                        ("Role-Of-Node", 0),
                        ("Node-Functionality", 0),
                        ("User-Session-Id", "a84b4c76e66710@pcscf.ims.example"),
                        ("Calling-Party-Address", "sip:+491700000001@ims.example"),
                        ("Called-Party-Address", "tel:+491700000002"),
                        ("IMS-Charging-Identifier", "icid-0001"),
                        (
                            "Time-Stamps",
                            [
                                ("SIP-Request-Timestamp", T0),
                                ("SIP-Response-Timestamp", T0),
                            ],
                        ),
                    ],
                ),
            ],
        ),
        ("Route-Record", "pcscf.ims.example"),
    ],
)

_CAPABILITIES: list[tuple[str, Any]] = [
    ("Origin-Host", "pcrf.example"),
    ("Origin-Realm", "pcrf.example"),
    ("Host-IP-Address", IPv4Address("127.0.0.1")),
    ("Vendor-Id", 0),
    ("Product-Name", "OpenPCC"),
    ("Origin-State-Id", 1772366400),
    ("Supported-Vendor-Id", VENDOR_3GPP),
    ("Auth-Application-Id", APP_CREDIT_CONTROL),
    (
        "Vendor-Specific-Application-Id",
        [
            ("Vendor-Id", VENDOR_3GPP),
            ("Auth-Application-Id", APP_GX),
        ],
    ),
    (
        "Vendor-Specific-Application-Id",
        [
            ("Vendor-Id", VENDOR_3GPP),
            ("Auth-Application-Id", APP_RX),
        ],
    ),
    ("Firmware-Revision", 1),
]
CER = Spec(CMD_CAPABILITIES_EXCHANGE, APP_BASE, FLAG_REQUEST, _CAPABILITIES)
CEA = Spec(CMD_CAPABILITIES_EXCHANGE, APP_BASE, 0, [("Result-Code", 2001), *_CAPABILITIES])

SAMPLES: dict[str, Spec] = {
    "gx_ccr_i": GX_CCR_I,
    "gx_cca": GX_CCA,
    "rx_aar": RX_AAR,
    "ro_ccr_u": RO_CCR_U,
    "cer": CER,
    "cea": CEA,
}
