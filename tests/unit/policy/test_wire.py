"""AVP ↔ policy values: what the PCRF reads from Gx/Rx requests, on encoded-then-decoded bytes."""

from __future__ import annotations

import ipaddress

from diam.constants import APP_GX, APP_RX, CMD_AA, CMD_CREDIT_CONTROL
from diam.message import Avp, Message
from policy.decision import MonitoringGrant
from policy.qos import (
    Arp,
    BearerQos,
    Flow,
    FlowDirection,
    FlowStatus,
    FlowUsage,
    MediaType,
    PccRule,
)
from policy.wire import (
    SubscriptionIdType,
    media_components,
    monitoring_avps,
    monitoring_off,
    result_of,
    rule_definition,
    rule_reports,
    subscription_ids,
    ue_addresses,
    usage_reports,
)


def roundtrip(msg: Message) -> Message:
    return Message.decode(msg.encode(), validate=True)


def test_ue_addresses_ipv4_and_ipv6_prefix() -> None:
    v6 = ipaddress.IPv6Address("2001:db8:1:2::abcd")
    msg = roundtrip(Message.request(CMD_AA, APP_RX, [
        ("Framed-IP-Address", bytes([10, 45, 0, 2])),
        ("Framed-IPv6-Prefix", bytes([0, 128]) + v6.packed),
    ]))  # fmt: skip
    assert ue_addresses(msg) == ("10.45.0.2", "2001:db8:1:2::abcd/128")
    pgw = roundtrip(Message.request(CMD_CREDIT_CONTROL, APP_GX, [
        ("Framed-IPv6-Prefix", bytes([0, 64]) + v6.packed[:8]),  # prefix octets only
    ]))  # fmt: skip
    assert ue_addresses(pgw) == (None, "2001:db8:1:2::/64")
    assert ue_addresses(roundtrip(Message.request(CMD_AA, APP_RX, []))) == (None, None)


def test_subscription_ids_keep_the_first_of_each_type() -> None:
    def sid(kind: int, data: str) -> tuple[str, list[tuple[str, object]]]:
        return ("Subscription-Id", [("Subscription-Id-Type", kind), ("Subscription-Id-Data", data)])

    msg = roundtrip(Message.request(CMD_CREDIT_CONTROL, APP_GX, [
        sid(1, "001010000000001"), sid(0, "491700000001"), sid(0, "491799999999"), sid(99, "x"),
    ]))  # fmt: skip
    assert subscription_ids(msg) == {
        SubscriptionIdType.END_USER_IMSI: "001010000000001",
        SubscriptionIdType.END_USER_E164: "491700000001",
    }


def test_usage_and_rule_reports() -> None:
    msg = roundtrip(Message.request(CMD_CREDIT_CONTROL, APP_GX, [
        ("Usage-Monitoring-Information", [
            ("Monitoring-Key", b"fair-use"),
            ("Used-Service-Unit", [("CC-Input-Octets", 100), ("CC-Output-Octets", 50)]),
        ]),
        ("Usage-Monitoring-Information", [
            ("Monitoring-Key", b"fair-use"),
            ("Used-Service-Unit", [("CC-Total-Octets", 1000)]),
        ]),
        ("Charging-Rule-Report", [
            ("Charging-Rule-Name", b"af-1"), ("Charging-Rule-Name", b"af-2"),
            ("PCC-Rule-Status", 1), ("Rule-Failure-Code", 10),
        ]),
    ]))  # fmt: skip
    assert usage_reports(msg) == {"fair-use": 1150}
    (report,) = rule_reports(msg)
    assert (report.names, report.status, report.failure_code) == (("af-1", "af-2"), 1, 10)


def test_monitoring_grants_and_off() -> None:
    (grant,) = monitoring_avps([MonitoringGrant("fair-use", 5)])
    (off,) = monitoring_off(["fair-use"])
    decoded = roundtrip(Message.request(CMD_CREDIT_CONTROL, APP_GX, [grant, off]))
    a, b = decoded["Usage-Monitoring-Information"]
    assert a.get("Monitoring-Key") == b"fair-use"
    assert a.first("Granted-Service-Unit").get("CC-Total-Octets") == 5
    assert a.get("Usage-Monitoring-Level") == 0
    assert b.get("Usage-Monitoring-Support") == 0 and b.first("Granted-Service-Unit") is None


def test_media_components_tolerate_unknown_enum_values() -> None:
    mcd = Avp.new("Media-Component-Description", [
        ("Media-Component-Number", 3),
        ("Media-Sub-Component", [
            ("Flow-Number", 1),
            ("Flow-Description", "permit out 17 from any to 10.0.0.1 4000"),
            ("Flow-Usage", 1),
        ]),
        ("Media-Type", 77),  # not a TS 29.214 value
        ("Max-Requested-Bandwidth-DL", 64_000),
        ("Codec-Data", "downlink\nanswer\nm=audio 4000 RTP/AVP 8"),
        ("Flow-Status", 2),
    ])  # fmt: skip
    (comp,) = media_components(roundtrip(Message.request(CMD_AA, APP_RX, [mcd])))
    assert comp.number == 3 and comp.media_type is None and comp.max_dl == 64_000
    assert comp.flow_status is FlowStatus.ENABLED
    assert comp.codec_data == ("downlink\nanswer\nm=audio 4000 RTP/AVP 8",)
    (sub,) = comp.sub_components
    assert sub.flow_usage is FlowUsage.RTCP and sub.flow_descriptions[0].endswith("4000")
    assert MediaType.AUDIO == 0


def test_result_of_reads_result_or_experimental() -> None:
    req = Message.request(CMD_AA, APP_RX, [("Session-Id", "s")])
    assert result_of(req.answer(2001)) == 2001
    er = Avp.new("Experimental-Result", [("Vendor-Id", 10415), ("Experimental-Result-Code", 5065)])
    assert result_of(roundtrip(req.answer(None, er))) == 5065
    assert result_of(req.answer()) is None


def test_af_signalling_protocol_marks_signalling_flows() -> None:
    mcd = Avp.new("Media-Component-Description", [
        ("Media-Component-Number", 0),
        ("Media-Sub-Component", [
            ("Flow-Number", 1),
            ("Flow-Description", "permit out 17 from 192.0.2.1 5060 to 10.0.0.1 5060"),
            ("AF-Signalling-Protocol", 1),  # SIP
        ]),
    ])  # fmt: skip
    (comp,) = media_components(roundtrip(Message.request(CMD_AA, APP_RX, [mcd])))
    assert comp.is_signalling


def test_rule_definition_is_the_plain_encoding() -> None:
    """The parts shared between calls (pre-encoded once) leave the octets as if every AVP of the
    Charging-Rule-Definition were built for this rule, in TS 29.212 §5.3.4 order."""
    down = "permit out 17 from 192.0.2.10 50000 to 10.0.0.1 49152"
    up = "permit out 17 from 10.0.0.1 49152 to 192.0.2.10 50000"

    def rule(name: str, icid: bytes | None) -> PccRule:
        qos = BearerQos(1, Arp(2, True, False), 41_000, 42_000, 40_000, 41_000)
        flows = (Flow(down, FlowDirection.DOWNLINK), Flow(up, FlowDirection.UPLINK))
        return PccRule(name, qos, flows, FlowStatus.ENABLED, 101, 1, (1, 2), icid, True)

    def plain(name: str, icid: bytes | None) -> bytes:
        arp = [("Priority-Level", 2), ("Pre-emption-Capability", 0),
               ("Pre-emption-Vulnerability", 1)]  # fmt: skip
        children = [
            ("Charging-Rule-Name", name.encode()),
            ("Flow-Information", [("Flow-Description", down), ("Flow-Direction", 1)]),
            ("Flow-Information", [("Flow-Description", up), ("Flow-Direction", 2)]),
            ("Flow-Status", 2),
            ("QoS-Information", [
                ("QoS-Class-Identifier", 1),
                ("Max-Requested-Bandwidth-UL", 41_000), ("Max-Requested-Bandwidth-DL", 42_000),
                ("Guaranteed-Bitrate-UL", 40_000), ("Guaranteed-Bitrate-DL", 41_000),
                ("Allocation-Retention-Priority", arp),
            ]),
            ("Precedence", 101),
            *([("AF-Charging-Identifier", icid)] if icid is not None else []),
            ("Flows", [("Media-Component-Number", 1), ("Flow-Number", 1), ("Flow-Number", 2)]),
            ("AF-Signalling-Protocol", 1),
        ]  # fmt: skip
        return Avp.new("Charging-Rule-Definition", children).wire()

    for name, icid in (("af-a-1", b"icid-1"), ("af-b-1", None), ("af-a-1", b"icid-1")):
        assert rule_definition(rule(name, icid)).wire() == plain(name, icid)
