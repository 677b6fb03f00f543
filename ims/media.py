"""SDP offer + answer → Rx Media-Component-Description inputs (3GPP TS 29.213 §6.2, TS 29.214).

Plain values, independent of the PCRF's code: the P-CSCF encodes them as AVPs. Shapes follow what
a Kamailio P-CSCF (ims_qos) sends: one component per m= line, Max- and Min-Requested-Bandwidth
equal, RR/RS, two Codec-Data, one sub-component for RTP and one for RTCP (port + 1), each with a
"permit out" (downlink) and a "permit in" (uplink) Flow-Description.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from ims.sdp import Media, SessionDescription

IP_UDP_RTP_OVERHEAD = {4: 20 + 8 + 12, 6: 40 + 8 + 12}  # octets per packet (TS 29.213 §6.2)


class RxMediaType(IntEnum):
    """TS 29.214 §5.3.19."""

    AUDIO = 0
    VIDEO = 1
    DATA = 2
    APPLICATION = 3
    CONTROL = 4
    TEXT = 5
    MESSAGE = 6
    OTHER = 0xFFFFFFFF


class RxFlowStatus(IntEnum):
    """TS 29.214 §5.3.11."""

    ENABLED_UPLINK = 0
    ENABLED_DOWNLINK = 1
    ENABLED = 2
    DISABLED = 3
    REMOVED = 4


class RxFlowUsage(IntEnum):
    """TS 29.214 §5.3.12."""

    NO_INFORMATION = 0
    RTCP = 1
    AF_SIGNALLING = 2


@dataclass(frozen=True, slots=True)
class SubComponent:
    flow_number: int
    flow_descriptions: tuple[str, ...]
    flow_usage: RxFlowUsage


@dataclass(frozen=True, slots=True)
class MediaComponentInput:
    number: int
    media_type: RxMediaType
    flow_status: RxFlowStatus
    max_ul: int | None = None  # bit/s
    max_dl: int | None = None
    min_ul: int | None = None
    min_dl: int | None = None
    rr: int | None = None
    rs: int | None = None
    codec_data: tuple[str, ...] = ()
    sub_components: tuple[SubComponent, ...] = ()


def media_bandwidth(media: Media, session: SessionDescription, ipv6: bool) -> int | None:
    """Bit/s a stream may use: b=AS (kbit/s, includes IP/UDP/RTP overhead, RFC 3556) × 1000; else
    b=TIAS (bit/s, transport independent, RFC 3890) plus the IP/UDP/RTP overhead at a=maxprate
    (else 1000/ptime, default 20 ms) packets/s, as TS 29.213 §6.2 prescribes; else None."""
    bandwidths = {**session.bandwidths, **media.bandwidths}
    if "AS" in bandwidths:
        return bandwidths["AS"] * 1000
    if "TIAS" in bandwidths:
        maxprate = media.attribute("maxprate") or _session_attr(session, "maxprate")
        try:
            rate = float(maxprate) if maxprate else 1000 / (media.ptime or 20)
        except ValueError:
            rate = 1000 / (media.ptime or 20)
        overhead = IP_UDP_RTP_OVERHEAD[6 if ipv6 else 4] * 8
        return bandwidths["TIAS"] + round(overhead * rate)
    return None


def _session_attr(session: SessionDescription, name: str) -> str | None:
    return next((v for k, v in session.attributes if k == name), None)


def _direction(media: Media, session: SessionDescription) -> str:
    return media.direction or next(
        (k for k, _ in session.attributes if k in ("sendonly", "recvonly", "inactive")), "sendrecv"
    )


_FLOW_STATUS = {
    "sendonly": RxFlowStatus.ENABLED_UPLINK,
    "recvonly": RxFlowStatus.ENABLED_DOWNLINK,
    "inactive": RxFlowStatus.DISABLED,
}


def _flow_status(ue_direction: str) -> RxFlowStatus:
    """From the UE's own SDP direction (TS 29.213 §6.2, Flow-Status derivation)."""
    return _FLOW_STATUS.get(ue_direction, RxFlowStatus.ENABLED)


def codec_data(direction: str, role: str, media: Media) -> str:
    """TS 29.214 §5.3.7: "uplink"/"downlink", "offer"/"answer", then the m= line and a= lines."""
    count = f"/{media.port_count}" if media.port_count else ""
    lines = [
        direction,
        role,
        f"m={media.media} {media.port}{count} {media.proto} {' '.join(media.formats)}",
    ]
    lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in media.attributes]
    return "\n".join(lines)


def _rtcp_port(media: Media) -> int:
    value = media.attribute("rtcp")  # RFC 3605
    if value and value.split()[0].isdigit():
        return int(value.split()[0])
    return media.port + 1


def _flows(ue_ip: str, ue_port: int, remote_ip: str, remote_port: int) -> tuple[str, str]:
    return (
        f"permit out 17 from {remote_ip} {remote_port} to {ue_ip} {ue_port}",
        f"permit in 17 from {ue_ip} {ue_port} to {remote_ip} {remote_port}",
    )


def media_components(
    offer: SessionDescription, answer: SessionDescription, ue_is_offerer: bool
) -> list[MediaComponentInput]:
    """One Media-Component-Description per m= line of offer/answer (numbered from 1).

    ``ue_is_offerer``: the P-CSCF's UE sent the offer (originating side). The UE's SDP is the
    uplink SDP; the bandwidth the UE may send (UL) is what the remote side declared it can
    receive, b= of the downlink SDP, and DL is b= of the uplink SDP (TS 29.213 §6.2).
    """
    if len(offer.media) != len(answer.media):
        raise ValueError("answer must have as many m= lines as the offer (RFC 3264 §6)")
    uplink, downlink = (offer, answer) if ue_is_offerer else (answer, offer)
    ue_role, remote_role = ("offer", "answer") if ue_is_offerer else ("answer", "offer")
    out: list[MediaComponentInput] = []
    for index, (ue_m, remote_m) in enumerate(zip(uplink.media, downlink.media, strict=True)):
        number = index + 1
        try:
            media_type = RxMediaType[ue_m.media.upper()]
        except KeyError:
            media_type = RxMediaType.OTHER
        ue_data = codec_data("uplink", ue_role, ue_m)
        remote_data = codec_data("downlink", remote_role, remote_m)
        data = (ue_data, remote_data) if ue_is_offerer else (remote_data, ue_data)
        if ue_m.rejected or remote_m.rejected:
            out.append(
                MediaComponentInput(number, media_type, RxFlowStatus.REMOVED, codec_data=data)
            )
            continue
        ue_conn = uplink.connection_for(ue_m)
        remote_conn = downlink.connection_for(remote_m)
        assert ue_conn is not None and remote_conn is not None  # parse_sdp guarantees it
        ipv6 = ":" in ue_conn.ip  # parse_sdp checked it is an IPv4 or IPv6 address
        max_ul = media_bandwidth(remote_m, downlink, ipv6)
        max_dl = media_bandwidth(ue_m, uplink, ipv6)
        rr = _max_of(ue_m.bandwidths.get("RR"), remote_m.bandwidths.get("RR"))
        rs = _max_of(ue_m.bandwidths.get("RS"), remote_m.bandwidths.get("RS"))
        subs = [
            SubComponent(
                1,
                _flows(ue_conn.ip, ue_m.port, remote_conn.ip, remote_m.port),
                RxFlowUsage.NO_INFORMATION,
            )
        ]
        muxed = ue_m.has_attribute("rtcp-mux") and remote_m.has_attribute("rtcp-mux")
        if not muxed:  # RFC 5761: with rtcp-mux RTCP shares the RTP flow
            subs.append(
                SubComponent(
                    2,
                    _flows(ue_conn.ip, _rtcp_port(ue_m), remote_conn.ip, _rtcp_port(remote_m)),
                    RxFlowUsage.RTCP,
                )
            )
        out.append(
            MediaComponentInput(
                number,
                media_type,
                _flow_status(_direction(ue_m, uplink)),
                max_ul,
                max_dl,
                max_ul,
                max_dl,
                rr,
                rs,
                data,
                tuple(subs),
            )
        )
    return out


def _max_of(a: int | None, b: int | None) -> int | None:
    """RR/RS: the larger declared value when both sides give one (conservative reservation)."""
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


def ue_address(
    offer: SessionDescription, answer: SessionDescription, ue_is_offerer: bool
) -> str | None:
    """The UE's media address: c= of its first accepted stream (Rx Framed-IP-Address)."""
    sdp = offer if ue_is_offerer else answer
    for media in sdp.media:
        conn = sdp.connection_for(media)
        if conn is not None and not media.rejected:
            return conn.ip
    return sdp.connection.ip if sdp.connection else None


def signalling_component(
    ue_ip: str, ue_port: int, pcscf_ip: str, pcscf_port: int
) -> MediaComponentInput:
    """Registration AAR: one CONTROL component with AF_SIGNALLING flows (TS 29.214 §4.4.5a)."""
    flows = (
        f"permit out 17 from {pcscf_ip} {pcscf_port} to {ue_ip} {ue_port}",
        f"permit in 17 from {ue_ip} {ue_port} to {pcscf_ip} {pcscf_port}",
    )
    return MediaComponentInput(
        0,
        RxMediaType.CONTROL,
        RxFlowStatus.ENABLED,
        sub_components=(SubComponent(1, flows, RxFlowUsage.AF_SIGNALLING),),
    )
