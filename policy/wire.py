"""Policy value types ↔ Gx/Rx AVPs (TS 29.212 §5.3, TS 29.214 §5.3). No state, no I/O."""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from diam.avp import Fields
from diam.constants import VENDOR_3GPP
from diam.dictionary import avp_def
from diam.message import Avp, Message
from policy.decision import Ambr, MonitoringGrant
from policy.qos import (
    Arp,
    BearerQos,
    FlowDirection,
    FlowStatus,
    FlowUsage,
    MediaComponent,
    MediaSubComponent,
    MediaType,
    PccRule,
)

ENABLED, DISABLED = 0, 1  # Pre-emption-Capability / -Vulnerability, Online / Offline values


class EventTrigger(IntEnum):
    """TS 29.212 §5.3.7 (the ones OpenPCC subscribes to or reacts on)."""

    QOS_CHANGE = 1
    RAT_CHANGE = 2
    PLMN_CHANGE = 4
    LOSS_OF_BEARER = 5
    RECOVERY_OF_BEARER = 6
    IP_CAN_CHANGE = 7
    REVALIDATION_TIMEOUT = 17
    UE_IP_ADDRESS_ALLOCATE = 18
    UE_IP_ADDRESS_RELEASE = 19
    DEFAULT_EPS_BEARER_QOS_CHANGE = 20
    SUCCESSFUL_RESOURCE_ALLOCATION = 22
    CHARGING_CORRELATION_EXCHANGE = 28
    USAGE_REPORT = 33


class SpecificAction(IntEnum):
    """TS 29.214 §5.3.13."""

    CHARGING_CORRELATION_EXCHANGE = 1
    INDICATION_OF_LOSS_OF_BEARER = 2
    INDICATION_OF_RECOVERY_OF_BEARER = 3
    INDICATION_OF_RELEASE_OF_BEARER = 4
    IP_CAN_CHANGE = 6
    INDICATION_OF_OUT_OF_CREDIT = 7
    INDICATION_OF_SUCCESSFUL_RESOURCES_ALLOCATION = 8
    INDICATION_OF_FAILED_RESOURCES_ALLOCATION = 9


class SubscriptionIdType(IntEnum):
    """RFC 4006 §8.47."""

    END_USER_E164 = 0
    END_USER_IMSI = 1
    END_USER_SIP_URI = 2
    END_USER_NAI = 3
    END_USER_PRIVATE = 4


PCC_RULE_ACTIVE = 0  # PCC-Rule-Status, TS 29.212 §5.3.19
USAGE_MONITORING_DISABLED = 0  # Usage-Monitoring-Support, TS 29.212 §5.3.63
SESSION_LEVEL = 0  # Usage-Monitoring-Level, TS 29.212 §5.3.61


def shared(avp: Avp) -> Avp:
    """``avp`` as wire bytes, re-emitted as is: for AVPs built once and appended to many
    messages (never modified, so one object serves every use)."""
    return Avp.from_wire(avp.wire())


@functools.lru_cache(maxsize=64)
def experimental_result(code: int) -> Avp:
    return shared(
        Avp.new(
            "Experimental-Result",
            [("Vendor-Id", VENDOR_3GPP), ("Experimental-Result-Code", int(code))],
        )
    )


def result_of(answer: Message) -> int | None:
    """Result-Code, else Experimental-Result-Code, of an answer."""
    code = answer.get("Result-Code")
    if code is not None:
        return int(code)
    er = answer.first("Experimental-Result")
    return None if er is None else er.get("Experimental-Result-Code")


# --- Gx encoding ---------------------------------------------------------------------------


def arp_avp(arp: Arp) -> Avp:
    return Avp.new(
        "Allocation-Retention-Priority",
        [
            ("Priority-Level", arp.priority_level),
            ("Pre-emption-Capability", ENABLED if arp.preemption_capability else DISABLED),
            ("Pre-emption-Vulnerability", ENABLED if arp.preemption_vulnerability else DISABLED),
        ],
    )


def default_bearer_qos(qci: int, arp: Arp) -> Avp:
    """Default-EPS-Bearer-QoS (TS 29.212 §5.3.48)."""
    return Avp.new("Default-EPS-Bearer-QoS", [("QoS-Class-Identifier", qci), arp_avp(arp)])


def apn_ambr(ambr: Ambr) -> Avp:
    """QoS-Information carrying only the APN-AMBR (TS 29.212 APN-AMBR provisioning)."""
    return Avp.new(
        "QoS-Information",
        [("APN-Aggregate-Max-Bitrate-UL", ambr.ul), ("APN-Aggregate-Max-Bitrate-DL", ambr.dl)],
    )


def rule_definition(rule: PccRule) -> Avp:
    """Charging-Rule-Definition (TS 29.212 §5.3.4) of a dynamic rule. The parts a call's SDP does
    not change (status, QoS, precedence, Flows) are encoded once per shape and shared."""
    children = [Avp.new("Charging-Rule-Name", rule.name.encode())]
    children += [
        Avp.new(
            "Flow-Information",
            [Avp.new("Flow-Description", f.description), _DIRECTIONS[f.direction]],
        )
        for f in rule.flows
    ]
    children += _rule_middle(rule.flow_status, rule.qos, rule.precedence)
    if rule.af_charging_identifier is not None:
        children.append(Avp.new("AF-Charging-Identifier", rule.af_charging_identifier))
    children += _rule_tail(rule.media_component_number, rule.flow_numbers, rule.af_signalling)
    return Avp.new("Charging-Rule-Definition", children)


_DIRECTIONS = {d: shared(Avp.new("Flow-Direction", d)) for d in FlowDirection}


@functools.lru_cache(maxsize=1024)
def _rule_middle(status: int, qos: BearerQos, precedence: int) -> tuple[Avp, ...]:
    return (
        shared(Avp.new("Flow-Status", status)),
        _rule_qos(qos),
        shared(Avp.new("Precedence", precedence)),
    )


@functools.lru_cache(maxsize=1024)
def _rule_tail(component: int, flow_numbers: tuple[int, ...], signalling: bool) -> tuple[Avp, ...]:
    flows: list[Any] = [("Media-Component-Number", component)]
    flows += [("Flow-Number", n) for n in flow_numbers]
    tail = [shared(Avp.new("Flows", flows))]
    if signalling:
        tail.append(shared(Avp.new("AF-Signalling-Protocol", 1)))  # SIP (TS 29.212 §5.3.58)
    return tuple(tail)


@functools.lru_cache(maxsize=1024)
def _rule_qos(qos: BearerQos) -> Avp:
    """A rule's QoS-Information: the same for every call with the same codec and bandwidth, so
    encoded once and shared as wire bytes (never modified)."""
    children: list[Any] = [("QoS-Class-Identifier", qos.qci)]
    for name, value in (
        ("Max-Requested-Bandwidth-UL", qos.mbr_ul),
        ("Max-Requested-Bandwidth-DL", qos.mbr_dl),
        ("Guaranteed-Bitrate-UL", qos.gbr_ul),
        ("Guaranteed-Bitrate-DL", qos.gbr_dl),
    ):
        if value is not None:
            children.append((name, value))
    children.append(arp_avp(qos.arp))
    return shared(Avp.new("QoS-Information", children))


def rule_install(
    rules: Iterable[PccRule] = (), names: Iterable[str] = (), bases: Iterable[str] = ()
) -> Avp | None:
    children = [rule_definition(r) for r in rules]
    children += [Avp.new("Charging-Rule-Name", n.encode()) for n in sorted(names)]
    children += [Avp.new("Charging-Rule-Base-Name", b) for b in sorted(bases)]
    return Avp.new("Charging-Rule-Install", children) if children else None


def rule_remove(names: Iterable[str] = (), bases: Iterable[str] = ()) -> Avp | None:
    children = [Avp.new("Charging-Rule-Name", n.encode()) for n in sorted(names)]
    children += [Avp.new("Charging-Rule-Base-Name", b) for b in sorted(bases)]
    return Avp.new("Charging-Rule-Remove", children) if children else None


def monitoring_avps(grants: Iterable[MonitoringGrant]) -> list[Avp]:
    """Usage-Monitoring-Information per key (TS 29.212 §5.3.60), session level."""
    return [
        Avp.new(
            "Usage-Monitoring-Information",
            [
                ("Monitoring-Key", g.monitoring_key.encode()),
                ("Granted-Service-Unit", [("CC-Total-Octets", g.octets)]),
                ("Usage-Monitoring-Level", SESSION_LEVEL),
            ],
        )
        for g in grants
    ]


def monitoring_off(keys: Iterable[str]) -> list[Avp]:
    """Stop monitoring spent keys (Usage-Monitoring-Support DISABLED, TS 29.212)."""
    return [
        Avp.new(
            "Usage-Monitoring-Information",
            [
                ("Monitoring-Key", k.encode()),
                ("Usage-Monitoring-Support", USAGE_MONITORING_DISABLED),
            ],
        )
        for k in sorted(keys)
    ]


# --- Gx decoding ---------------------------------------------------------------------------


_SUBSCRIPTION_ID = Fields(("Subscription-Id-Type", "Subscription-Id-Data"))
_ID_TYPES: dict[Any, SubscriptionIdType] = SubscriptionIdType._value2member_map_  # type: ignore[assignment]


def subscription_ids(message: Message) -> dict[SubscriptionIdType, str]:
    """The first Subscription-Id-Data of each known Subscription-Id-Type."""
    out: dict[SubscriptionIdType, str] = {}
    for sid in message["Subscription-Id"]:
        kind, data = _SUBSCRIPTION_ID(sid.value)
        known = None if kind is None else _ID_TYPES.get(kind.value)
        if known is not None and data is not None and known not in out and data.value:
            out[known] = data.value
    return out


def ue_addresses(message: Message) -> tuple[str | None, str | None]:
    """(IPv4 from Framed-IP-Address, IPv6 prefix "addr/len" from Framed-IPv6-Prefix)."""
    v4 = v6 = None
    raw = message.get("Framed-IP-Address")
    if isinstance(raw, bytes) and len(raw) == 4:
        v4 = socket.inet_ntoa(raw)
    prefix = message.get("Framed-IPv6-Prefix")
    if isinstance(prefix, bytes) and len(prefix) >= 2:
        length = prefix[1]
        body = prefix[2:].ljust(16, b"\0")[:16]
        if length <= 128:
            v6 = str(ipaddress.IPv6Network((body, length), strict=False))
    return v4, v6


@dataclass(frozen=True, slots=True)
class RuleReport:
    """One Charging-Rule-Report (TS 29.212 §5.3.18)."""

    names: tuple[str, ...]
    bases: tuple[str, ...]
    status: int
    failure_code: int | None


def rule_reports(message: Message) -> list[RuleReport]:
    return [
        RuleReport(
            names=tuple(_text(a.value) for a in report["Charging-Rule-Name"]),
            bases=tuple(a.value for a in report["Charging-Rule-Base-Name"]),
            status=report.get("PCC-Rule-Status", PCC_RULE_ACTIVE),
            failure_code=report.get("Rule-Failure-Code"),
        )
        for report in message["Charging-Rule-Report"]
    ]


@dataclass(frozen=True, slots=True)
class ChargingId:
    """One Access-Network-Charging-Identifier-Gx (TS 29.212): the PCEF's charging id
    and the rules it applies to (none, or IP-CAN-Session-Charging-Scope: the whole session)."""

    value: bytes
    rules: tuple[str, ...]
    session_scope: bool


def charging_ids(message: Message) -> list[ChargingId]:
    return [
        ChargingId(
            value=group.get("Access-Network-Charging-Identifier-Value", b""),
            rules=tuple(_text(a.value) for a in group["Charging-Rule-Name"]),
            session_scope=group.first("IP-CAN-Session-Charging-Scope") is not None,
        )
        for group in message["Access-Network-Charging-Identifier-Gx"]
    ]


def usage_reports(message: Message) -> dict[str, int]:
    """Octets used per monitoring key (Used-Service-Unit total, else input + output)."""
    used: dict[str, int] = {}
    for info in message["Usage-Monitoring-Information"]:
        key = info.get("Monitoring-Key")
        if key is None:
            continue
        total = 0
        for usu in info["Used-Service-Unit"]:
            octets = usu.get("CC-Total-Octets")
            if octets is None:
                octets = usu.get("CC-Input-Octets", 0) + usu.get("CC-Output-Octets", 0)
            total += octets
        used[_text(key)] = used.get(_text(key), 0) + total
    return used


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- Rx decoding ---------------------------------------------------------------------------


def _key(name: str) -> int:
    d = avp_def(name)
    return (d.vendor << 32) | d.code


# Media-Component-Description / Media-Sub-Component children read, by (vendor << 32 | code): one
# pass over a group's children instead of a search per AVP name (the AAR hot path).
_MCD_FIELDS = {
    _key(name): field
    for name, field in (
        ("Media-Component-Number", "number"),
        ("Media-Type", "media_type"),
        ("Max-Requested-Bandwidth-UL", "max_ul"),
        ("Max-Requested-Bandwidth-DL", "max_dl"),
        ("Min-Requested-Bandwidth-UL", "min_ul"),
        ("Min-Requested-Bandwidth-DL", "min_dl"),
        ("RR-Bandwidth", "rr"),
        ("RS-Bandwidth", "rs"),
        ("Flow-Status", "flow_status"),
    )
}
_MSC_FIELDS = {
    _key(name): field
    for name, field in (
        ("Flow-Number", "flow_number"),
        ("Flow-Status", "flow_status"),
        ("Flow-Usage", "flow_usage"),
        ("Max-Requested-Bandwidth-UL", "max_ul"),
        ("Max-Requested-Bandwidth-DL", "max_dl"),
        ("AF-Signalling-Protocol", "af_signalling_protocol"),
    )
}
_MEDIA_SUB_COMPONENT = _key("Media-Sub-Component")
_CODEC_DATA = _key("Codec-Data")
_FLOW_DESCRIPTION = _key("Flow-Description")
_MEDIA_TYPES = {m.value: m for m in MediaType}
_FLOW_STATUSES = {m.value: m for m in FlowStatus}
_FLOW_USAGES = {m.value: m for m in FlowUsage}


def media_components(message: Message) -> list[MediaComponent]:
    """Media-Component-Description AVPs (TS 29.214 §5.3.7), tolerant of what real P-CSCFs send:
    the first instance of a single-valued AVP counts, unknown enum values read as absent."""
    out = []
    for mcd in message["Media-Component-Description"]:
        values: dict[str, Any] = {}
        subs: list[MediaSubComponent] = []
        codecs: list[str] = []
        for avp in mcd:
            key = (avp.vendor << 32) | avp.code
            field = _MCD_FIELDS.get(key)
            if field is not None:
                if field not in values:
                    values[field] = avp.value
            elif key == _MEDIA_SUB_COMPONENT:
                subs.append(_sub_component(avp))
            elif key == _CODEC_DATA:
                codecs.append(_text(avp.value))
        out.append(
            MediaComponent(
                number=values.get("number", 0),
                media_type=_MEDIA_TYPES.get(values.get("media_type")),  # type: ignore[arg-type]
                max_ul=values.get("max_ul"),
                max_dl=values.get("max_dl"),
                min_ul=values.get("min_ul"),
                min_dl=values.get("min_dl"),
                rr=values.get("rr"),
                rs=values.get("rs"),
                flow_status=_FLOW_STATUSES.get(values.get("flow_status")),  # type: ignore[arg-type]
                codec_data=tuple(codecs),
                sub_components=tuple(subs),
            )
        )
    return out


def _sub_component(msc: Avp) -> MediaSubComponent:
    values: dict[str, Any] = {}
    flows: list[str] = []
    for avp in msc:
        key = (avp.vendor << 32) | avp.code
        field = _MSC_FIELDS.get(key)
        if field is not None:
            if field not in values:
                values[field] = avp.value
        elif key == _FLOW_DESCRIPTION:
            flows.append(avp.value)
    usage = _FLOW_USAGES.get(values.get("flow_usage"))  # type: ignore[arg-type]
    if usage is None and values.get("af_signalling_protocol", 0) != 0:  # 0 = NO_INFORMATION
        # TS 29.214 §5.3.26: AF-Signalling-Protocol is present for the AF's signalling flows.
        usage = FlowUsage.AF_SIGNALLING
    return MediaSubComponent(
        flow_number=values.get("flow_number", 0),
        flow_descriptions=tuple(flows),
        flow_usage=usage,
        flow_status=_FLOW_STATUSES.get(values.get("flow_status")),  # type: ignore[arg-type]
        max_ul=values.get("max_ul"),
        max_dl=values.get("max_dl"),
    )
