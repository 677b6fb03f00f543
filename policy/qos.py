"""Service information (Rx Media-Component-Description) → PCC rules, per 3GPP TS 29.213 §6.3.

Pure functions over small value types: no Diameter, no I/O. ``policy/wire.py`` converts between
these types and AVPs.

Choices where the specification leaves room (each is cited where it is made):

* one PCC rule per media component, carrying every flow of its media sub-components
  (TS 29.213 §6.3 allows per-component or per-flow rules; per component keeps RTP and RTCP
  on one bearer, which is what PCEFs expect for a voice call);
* QCI from the media type (TS 29.213 §6.3 "Derivation of QCI", TS 26.114 Annex E):
  audio → 1, video → 2, AF signalling → 5, anything else → the default non-GBR QCI;
* bit rates: Max-Requested-Bandwidth plus RS + RR when the component carries RTCP flows
  (the SDP b=AS that the AF maps to Max-Requested-Bandwidth excludes RTCP, RFC 3556); when the
  AF gives no Max-Requested-Bandwidth the rate comes from the negotiated codec (Codec-Data) plus
  IP/UDP/RTP overhead; Min-Requested-Bandwidth gives the GBR, else GBR = MBR (§6.3, conversational);
* Gx allows only "permit out" filters (TS 29.212 §5.4.2): a Rx "permit in" filter is rewritten with
  source and destination swapped and Flow-Direction UPLINK; "permit out" becomes DOWNLINK.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import TypeVar


class MediaType(IntEnum):
    """TS 29.214 §5.3.19."""

    AUDIO = 0
    VIDEO = 1
    DATA = 2
    APPLICATION = 3
    CONTROL = 4
    TEXT = 5
    MESSAGE = 6
    OTHER = 0xFFFFFFFF


class FlowStatus(IntEnum):
    """TS 29.214 §5.3.11 (same values on Gx, TS 29.212 §5.3.11)."""

    ENABLED_UPLINK = 0
    ENABLED_DOWNLINK = 1
    ENABLED = 2
    DISABLED = 3
    REMOVED = 4


class FlowUsage(IntEnum):
    """TS 29.214 §5.3.12."""

    NO_INFORMATION = 0
    RTCP = 1
    AF_SIGNALLING = 2


class FlowDirection(IntEnum):
    """TS 29.212 §5.3.65."""

    UNSPECIFIED = 0
    DOWNLINK = 1
    UPLINK = 2
    BIDIRECTIONAL = 3


class ServiceInformationError(ValueError):
    """The service information cannot be authorized; ``result_code`` is the Rx
    Experimental-Result-Code to answer with (TS 29.214 §5.5.3)."""

    def __init__(self, result_code: int, message: str) -> None:
        super().__init__(message)
        self.result_code = result_code


INVALID_SERVICE_INFORMATION = 5061
FILTER_RESTRICTIONS = 5062
REQUESTED_SERVICE_NOT_AUTHORIZED = 5063


# --- inputs (from Rx) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaSubComponent:
    flow_number: int
    flow_descriptions: tuple[str, ...] = ()
    flow_usage: FlowUsage | None = None
    flow_status: FlowStatus | None = None
    max_ul: int | None = None
    max_dl: int | None = None


@dataclass(frozen=True, slots=True)
class MediaComponent:
    number: int
    media_type: MediaType | None = None
    max_ul: int | None = None
    max_dl: int | None = None
    min_ul: int | None = None
    min_dl: int | None = None
    rr: int | None = None
    rs: int | None = None
    flow_status: FlowStatus | None = None
    codec_data: tuple[str, ...] = ()
    sub_components: tuple[MediaSubComponent, ...] = ()

    @property
    def is_signalling(self) -> bool:
        return any(s.flow_usage == FlowUsage.AF_SIGNALLING for s in self.sub_components)

    @property
    def has_rtcp(self) -> bool:
        return any(s.flow_usage == FlowUsage.RTCP for s in self.sub_components)


def merge_components(
    current: Mapping[int, MediaComponent], update: Iterable[MediaComponent]
) -> dict[int, MediaComponent]:
    """Apply an AAR modification (TS 29.214 §4.4.2): AVPs present replace the stored ones, absent
    ones keep their value; sub-components merge by Flow-Number the same way; a component (or
    sub-component) with Flow-Status REMOVED is dropped."""
    merged = dict(current)
    for new in update:
        old = merged.get(new.number)
        if new.flow_status == FlowStatus.REMOVED:
            merged.pop(new.number, None)
            continue
        if old is None:
            merged[new.number] = new
            continue
        subs = {s.flow_number: s for s in old.sub_components}
        for sub in new.sub_components:
            if sub.flow_status == FlowStatus.REMOVED:
                subs.pop(sub.flow_number, None)
            else:
                subs[sub.flow_number] = _overlay(subs.get(sub.flow_number), sub)
        combined = _overlay(old, new)
        merged[new.number] = replace(combined, sub_components=tuple(subs.values()))
    return merged


_T = TypeVar("_T", MediaComponent, MediaSubComponent)


def _overlay(old: _T | None, new: _T) -> _T:
    if old is None:
        return new
    changes = {}
    for name in new.__dataclass_fields__:
        value = getattr(new, name)
        if value not in (None, ()):
            changes[name] = value
    return replace(old, **changes)


# --- outputs (to Gx) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arp:
    """Allocation-Retention-Priority (TS 29.212 §5.3.32); True = ENABLED."""

    priority_level: int
    preemption_capability: bool = False
    preemption_vulnerability: bool = True


@dataclass(frozen=True, slots=True)
class BearerQos:
    qci: int
    arp: Arp
    mbr_ul: int | None = None
    mbr_dl: int | None = None
    gbr_ul: int | None = None
    gbr_dl: int | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    description: str
    direction: FlowDirection


@dataclass(frozen=True, slots=True)
class PccRule:
    """A dynamic PCC rule (Charging-Rule-Definition, TS 29.212 §5.3.4)."""

    name: str
    qos: BearerQos
    flows: tuple[Flow, ...]
    flow_status: FlowStatus
    precedence: int
    media_component_number: int
    flow_numbers: tuple[int, ...] = ()
    af_charging_identifier: bytes | None = None
    af_signalling: bool = False


@dataclass(frozen=True, slots=True)
class QosConfig:
    """Operator choices for the mapping; the defaults follow TS 26.114 Annex E / GSMA IR.92."""

    audio_arp: Arp = Arp(2, preemption_capability=True, preemption_vulnerability=False)
    video_arp: Arp = Arp(4, preemption_capability=True, preemption_vulnerability=False)
    signalling_arp: Arp = Arp(1, preemption_capability=True, preemption_vulnerability=False)
    other_arp: Arp = Arp(9)
    audio_qci: int = 1
    video_qci: int = 2
    signalling_qci: int = 5
    other_qci: int = 9
    precedence: int = 100
    max_gbr_ul: int | None = None
    max_gbr_dl: int | None = None
    allowed_media: frozenset[MediaType] = field(default_factory=lambda: frozenset(MediaType))


# --- IPFilterRule handling (RFC 6733 §4.3, TS 29.214 §5.3.8 restrictions) --------------------


@dataclass(frozen=True, slots=True)
class FilterRule:
    direction: str  # "in" | "out"
    proto: str
    src: tuple[str, ...]  # address [ports]
    dst: tuple[str, ...]

    def as_gx(self) -> Flow:
        """The Gx form: always "permit out"; "in" swaps the endpoints (TS 29.212 §5.4.2)."""
        if self.direction == "out":
            return Flow(self.render("out", self.src, self.dst), FlowDirection.DOWNLINK)
        return Flow(self.render("out", self.dst, self.src), FlowDirection.UPLINK)

    def render(self, direction: str, src: tuple[str, ...], dst: tuple[str, ...]) -> str:
        return " ".join(("permit", direction, self.proto, "from", *src, "to", *dst))

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.src[0] or ":" in self.dst[0]


def parse_filter(rule: str) -> FilterRule:
    """Parse a Rx Flow-Description; raise 5062 FILTER_RESTRICTIONS when it breaks TS 29.214
    §5.3.8 (action must be permit, direction in/out, no options)."""
    tokens = rule.split()
    if (  # the usual "permit in|out proto from addr port to addr port", checked directly
        len(tokens) == 9
        and tokens[0] == "permit"
        and tokens[1] in ("in", "out")
        and tokens[3] == "from"
        and tokens[6] == "to"
        and _is_ports(tokens[5])
        and _is_ports(tokens[8])
    ):
        return FilterRule(tokens[1], tokens[2], (tokens[4], tokens[5]), (tokens[7], tokens[8]))
    if len(tokens) < 7 or tokens[0] != "permit" or tokens[1] not in ("in", "out"):
        raise ServiceInformationError(FILTER_RESTRICTIONS, f"unsupported filter: {rule!r}")
    if tokens[3] != "from" or "to" not in tokens[5:]:
        raise ServiceInformationError(FILTER_RESTRICTIONS, f"malformed filter: {rule!r}")
    to = tokens.index("to", 5)
    src, dst = tuple(tokens[4:to]), tuple(tokens[to + 1 :])
    for side in (src, dst):
        if not side or len(side) > 2 or (len(side) == 2 and not _is_ports(side[1])):
            raise ServiceInformationError(FILTER_RESTRICTIONS, f"filter options: {rule!r}")
    return FilterRule(tokens[1], tokens[2], src, dst)


def _is_ports(token: str) -> bool:
    return token.isdigit() or all(part.replace("-", "", 1).isdigit() for part in token.split(","))


# --- codec → bit rate (when the AF sends no Max-Requested-Bandwidth) -------------------------

# Peak codec bit rates (bit/s) and RTP payload-header octets (RFC 4867 octet-aligned AMR/AMR-WB:
# CMR + ToC = 2 octets; EVS header-full compact = 0-2, take 2). A "mode-set"/"br" parameter lowers
# the peak. telephony-event (RFC 4733) and comfort noise ride the main codec's bearer budget.
_CODEC_RATES: dict[str, tuple[int, int]] = {
    "AMR": (12_200, 2),
    "AMR-WB": (23_850, 2),
    "EVS": (24_400, 2),
    "PCMU": (64_000, 0),
    "PCMA": (64_000, 0),
    "G722": (64_000, 0),
    "G729": (8_000, 0),
    "OPUS": (40_000, 0),
    "H264": (384_000, 0),
    "H265": (384_000, 0),
}
_AMR_MODES = (4_750, 5_150, 5_900, 6_700, 7_400, 7_950, 10_200, 12_200)
_AMR_WB_MODES = (6_600, 8_850, 12_650, 14_250, 15_850, 18_250, 19_850, 23_050, 23_850)
_IGNORED_CODECS = frozenset({"TELEPHONE-EVENT", "CN", "RED"})


def codec_bitrate(codec_data: str, ipv6: bool = False) -> int | None:
    """Bit rate (bit/s, rounded up to whole kbit/s) one direction of the negotiated codec needs
    on the wire, from a Codec-Data value (TS 29.214 §5.3.7: direction, offer/answer, SDP)."""
    lines = [line.strip() for line in codec_data.splitlines() if line.strip()]
    media = next((line for line in lines if line.startswith("m=")), None)
    if media is None:
        return None
    rtpmap: dict[str, str] = {}
    fmtp: dict[str, str] = {}
    ptime = 20
    for line in lines:
        if line.startswith("a=rtpmap:"):
            pt, _, enc = line[9:].partition(" ")
            rtpmap[pt] = enc.split("/")[0].upper()
        elif line.startswith("a=fmtp:"):
            pt, _, params = line[7:].partition(" ")
            fmtp[pt] = params
        elif line.startswith("a=ptime:") and line[8:].isdigit():
            ptime = max(int(line[8:]), 1)
    static = {"0": "PCMU", "8": "PCMA", "9": "G722", "18": "G729"}
    for pt in media.split()[3:]:
        name = rtpmap.get(pt) or static.get(pt)
        if name is None or name in _IGNORED_CODECS or name not in _CODEC_RATES:
            continue
        rate, header = _CODEC_RATES[name]
        rate = _restricted_rate(name, fmtp.get(pt, ""), rate)
        overhead = (40 if not ipv6 else 60) + header  # IP + UDP 8 + RTP 12
        bps = rate + overhead * 8 * 1000 / ptime
        return math.ceil(bps / 1000) * 1000
    return None


def _restricted_rate(name: str, params: str, rate: int) -> int:
    values = dict(p.strip().partition("=")[::2] for p in params.split(";") if "=" in p)
    if name in ("AMR", "AMR-WB") and values.get("mode-set"):
        modes = _AMR_MODES if name == "AMR" else _AMR_WB_MODES
        chosen = [int(m) for m in values["mode-set"].split(",") if m.strip().isdigit()]
        valid = [modes[m] for m in chosen if m < len(modes)]
        return max(valid) if valid else rate
    if name == "EVS" and values.get("br"):
        top = values["br"].split("-")[-1]
        try:
            return int(float(top) * 1000)
        except ValueError:
            return rate
    if name == "OPUS" and values.get("maxaveragebitrate", "").isdigit():
        return int(values["maxaveragebitrate"])
    return rate


# --- derivation ------------------------------------------------------------------------------


def rule_name(af_session_id: str, media_component_number: int) -> str:
    """Stable, unique per Rx session and component, so a restarted PCRF removes the same rules."""
    digest = hashlib.blake2s(af_session_id.encode(), digest_size=6).hexdigest()
    return f"af-{digest}-{media_component_number}"


def derive_rules(
    af_session_id: str,
    components: Iterable[MediaComponent],
    config: QosConfig = QosConfig(),
    af_charging_identifier: bytes | None = None,
) -> list[PccRule]:
    """One PCC rule per media component with at least one flow."""
    rules = []
    for comp in sorted(components, key=lambda c: c.number):
        rule = _derive_one(af_session_id, comp, config, af_charging_identifier)
        if rule is not None:
            rules.append(rule)
    return rules


def _derive_one(
    af_session_id: str, comp: MediaComponent, config: QosConfig, icid: bytes | None
) -> PccRule | None:
    filters = [parse_filter(d) for s in comp.sub_components for d in s.flow_descriptions]
    if not filters:
        return None
    ipv6 = any(f.is_ipv6 for f in filters)
    signalling = comp.is_signalling
    status = comp.flow_status if comp.flow_status is not None else FlowStatus.ENABLED
    return PccRule(
        name=rule_name(af_session_id, comp.number),
        qos=_component_qos(comp, signalling, ipv6, config),
        flows=tuple(f.as_gx() for f in filters),
        flow_status=status,
        precedence=config.precedence + comp.number,
        media_component_number=comp.number,
        flow_numbers=tuple(s.flow_number for s in comp.sub_components),
        af_charging_identifier=icid,
        af_signalling=signalling,
    )


def _component_qos(
    comp: MediaComponent, signalling: bool, ipv6: bool, config: QosConfig
) -> BearerQos:
    media_type = comp.media_type if comp.media_type is not None else MediaType.OTHER
    if signalling:
        qci, arp, gbr = config.signalling_qci, config.signalling_arp, False
    elif media_type not in config.allowed_media:
        raise ServiceInformationError(
            REQUESTED_SERVICE_NOT_AUTHORIZED, f"media type {media_type.name} not allowed"
        )
    elif media_type == MediaType.AUDIO:
        qci, arp, gbr = config.audio_qci, config.audio_arp, True
    elif media_type == MediaType.VIDEO:
        qci, arp, gbr = config.video_qci, config.video_arp, True
    else:
        qci, arp, gbr = config.other_qci, config.other_arp, False
    rtcp = (comp.rr or 0) + (comp.rs or 0) if comp.has_rtcp else 0
    mbr_ul, mbr_dl = _max_rates(comp, ipv6, rtcp)
    if not gbr:
        return BearerQos(qci, arp, mbr_ul, mbr_dl)
    if mbr_ul is None or mbr_dl is None:
        raise ServiceInformationError(
            INVALID_SERVICE_INFORMATION,
            f"media component {comp.number}: no bandwidth and no known codec",
        )
    gbr_ul = comp.min_ul + rtcp if comp.min_ul is not None else mbr_ul
    gbr_dl = comp.min_dl + rtcp if comp.min_dl is not None else mbr_dl
    _check_limit(comp.number, gbr_ul, config.max_gbr_ul, "UL")
    _check_limit(comp.number, gbr_dl, config.max_gbr_dl, "DL")
    return BearerQos(qci, arp, mbr_ul, mbr_dl, min(gbr_ul, mbr_ul), min(gbr_dl, mbr_dl))


def _max_rates(comp: MediaComponent, ipv6: bool, rtcp: int) -> tuple[int | None, int | None]:
    ul, dl = comp.max_ul, comp.max_dl
    if ul is None:
        ul = _sub_sum(comp, "max_ul") or _codec_rate(comp.codec_data, ipv6)
    if dl is None:
        dl = _sub_sum(comp, "max_dl") or _codec_rate(comp.codec_data, ipv6)
    return (ul + rtcp if ul is not None else None, dl + rtcp if dl is not None else None)


def _sub_sum(comp: MediaComponent, attr: str) -> int | None:
    values = [getattr(s, attr) for s in comp.sub_components if getattr(s, attr) is not None]
    return sum(values) if values else None


@functools.lru_cache(maxsize=1024)
def _codec_rate(codec_data: tuple[str, ...], ipv6: bool) -> int | None:
    """The negotiated codec: Codec-Data of the SDP answer first (TS 29.214 §5.3.7: line 1 is the
    direction, line 2 "offer"/"answer"); codec rates are the same in both directions. Calls
    with the same codecs share one parse."""

    def is_answer(data: str) -> bool:
        lines = data.split("\n", 2)
        return len(lines) > 1 and lines[1].strip().lower() == "answer"

    for data in sorted(codec_data, key=lambda d: not is_answer(d)):
        rate = codec_bitrate(data, ipv6)
        if rate is not None:
            return rate
    return None


def _check_limit(number: int, value: int, limit: int | None, label: str) -> None:
    if limit is not None and value > limit:
        raise ServiceInformationError(
            REQUESTED_SERVICE_NOT_AUTHORIZED,
            f"media component {number}: GBR {label} {value} exceeds {limit}",
        )
