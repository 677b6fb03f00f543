"""TS 29.213 §6.3 derivation: Kamailio-shaped media components → PCC rules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy.qos import (
    Arp,
    FlowDirection,
    FlowStatus,
    FlowUsage,
    MediaComponent,
    MediaSubComponent,
    MediaType,
    QosConfig,
    ServiceInformationError,
    codec_bitrate,
    derive_rules,
    merge_components,
    parse_filter,
    rule_name,
)

UE, REMOTE = "10.45.0.2", "192.0.2.10"
AMR_WB_OFFER = (
    "uplink\noffer\nm=audio 49152 RTP/AVP 116 118\n"
    "a=rtpmap:116 AMR-WB/16000/1\na=fmtp:116 mode-change-capability=2;max-red=0\n"
    "a=rtpmap:118 telephone-event/16000\na=ptime:20\na=maxptime:240"
)
AMR_WB_ANSWER = AMR_WB_OFFER.replace("uplink\noffer", "downlink\nanswer")


def audio(max_bw: int | None = 41_000, min_bw: int | None = 41_000) -> MediaComponent:
    """What Kamailio ims_qos sends for an AMR-WB call (see shared notes ims-peers.md)."""
    return MediaComponent(
        number=1,
        media_type=MediaType.AUDIO,
        max_ul=max_bw,
        max_dl=max_bw,
        min_ul=min_bw,
        min_dl=min_bw,
        rr=2_000,
        rs=600,
        flow_status=FlowStatus.ENABLED,
        codec_data=(AMR_WB_OFFER, AMR_WB_ANSWER),
        sub_components=(
            MediaSubComponent(
                1,
                (
                    f"permit out 17 from {REMOTE} 50000 to {UE} 49152",
                    f"permit in 17 from {UE} 49152 to {REMOTE} 50000",
                ),
            ),
            MediaSubComponent(
                2,
                (
                    f"permit out 17 from {REMOTE} 50001 to {UE} 49153",
                    f"permit in 17 from {UE} 49153 to {REMOTE} 50001",
                ),
                flow_usage=FlowUsage.RTCP,
            ),
        ),
    )


def test_audio_becomes_qci1_gbr_equal_mbr_with_rtcp_budget() -> None:
    (rule,) = derive_rules("pcscf;1;call", [audio()])
    assert rule.qos.qci == 1
    assert rule.qos.arp == Arp(2, preemption_capability=True, preemption_vulnerability=False)
    # 41 kbit/s (b=AS) + RS 600 + RR 2000 (RFC 3556) on both directions; Min = Max → GBR = MBR.
    assert (rule.qos.mbr_ul, rule.qos.mbr_dl) == (43_600, 43_600)
    assert (rule.qos.gbr_ul, rule.qos.gbr_dl) == (43_600, 43_600)
    assert rule.flow_status == FlowStatus.ENABLED
    assert rule.flow_numbers == (1, 2)
    assert rule.name == rule_name("pcscf;1;call", 1)


def test_permit_in_is_rewritten_as_permit_out_with_swapped_endpoints() -> None:
    (rule,) = derive_rules("s", [audio()])
    assert [(f.description, f.direction) for f in rule.flows] == [
        (f"permit out 17 from {REMOTE} 50000 to {UE} 49152", FlowDirection.DOWNLINK),
        (f"permit out 17 from {REMOTE} 50000 to {UE} 49152", FlowDirection.UPLINK),
        (f"permit out 17 from {REMOTE} 50001 to {UE} 49153", FlowDirection.DOWNLINK),
        (f"permit out 17 from {REMOTE} 50001 to {UE} 49153", FlowDirection.UPLINK),
    ]
    assert all(f.description.startswith("permit out ") for f in rule.flows)


def test_min_below_max_gives_gbr_below_mbr() -> None:
    (rule,) = derive_rules("s", [audio(max_bw=64_000, min_bw=30_000)])
    assert (rule.qos.mbr_ul, rule.qos.gbr_ul) == (66_600, 32_600)


def test_bandwidth_from_the_codec_when_the_af_sends_none() -> None:
    (rule,) = derive_rules("s", [audio(max_bw=None, min_bw=None)])
    # AMR-WB 23.85 kbit/s + (IPv4 20 + UDP 8 + RTP 12 + 2 payload header) octets / 20 ms = 40.65
    # → 41 kbit/s, the b=AS:41 MTSI clients use; plus RTCP.
    assert rule.qos.gbr_dl == 41_000 + 2_600


def test_codec_bitrates() -> None:
    assert codec_bitrate(AMR_WB_ANSWER) == 41_000
    assert codec_bitrate(AMR_WB_ANSWER, ipv6=True) == 49_000
    restricted = AMR_WB_ANSWER.replace("max-red=0", "max-red=0;mode-set=0,1,2")
    assert codec_bitrate(restricted) == 30_000  # 12.65 + 16.8 → 29.45 → 30
    pcma = "downlink\nanswer\nm=audio 4000 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000"
    assert codec_bitrate(pcma) == 80_000  # 64 + 16 kbit/s
    assert codec_bitrate("uplink\noffer\nm=audio 4000 RTP/AVP 101\na=rtpmap:101 foo/8000") is None


def test_video_is_qci2_and_signalling_qci5_non_gbr() -> None:
    video = MediaComponent(
        number=2,
        media_type=MediaType.VIDEO,
        max_ul=384_000,
        max_dl=384_000,
        sub_components=(MediaSubComponent(1, (f"permit out 17 from {REMOTE} 6000 to {UE} 6002",)),),
    )
    control = MediaComponent(
        number=0,
        media_type=MediaType.CONTROL,
        sub_components=(
            MediaSubComponent(
                1,
                (
                    f"permit out 17 from {REMOTE} 5060 to {UE} 5060",
                    f"permit in 17 from {UE} 5060 to {REMOTE} 5060",
                ),
                flow_usage=FlowUsage.AF_SIGNALLING,
            ),
        ),
    )
    sig, vid = derive_rules("s", [video, control])
    assert (vid.qos.qci, vid.qos.gbr_dl, vid.qos.mbr_dl) == (2, 384_000, 384_000)
    assert (sig.qos.qci, sig.qos.gbr_ul, sig.qos.mbr_ul) == (5, None, None)
    assert sig.af_signalling and sig.precedence < vid.precedence


@pytest.mark.parametrize(
    "rule",
    [
        "deny out 17 from 1.2.3.4 to 5.6.7.8",
        "permit both 17 from 1.2.3.4 to 5.6.7.8",
        "permit out 17 from 1.2.3.4 5000 to 5.6.7.8 6000 frag",
        "permit out 17 1.2.3.4 to 5.6.7.8",
    ],
)
def test_filters_outside_ts29214_restrictions_are_5062(rule: str) -> None:
    with pytest.raises(ServiceInformationError) as err:
        parse_filter(rule)
    assert err.value.result_code == 5062


def test_gbr_limit_and_disallowed_media_are_5063() -> None:
    with pytest.raises(ServiceInformationError) as err:
        derive_rules("s", [audio()], QosConfig(max_gbr_dl=40_000))
    assert err.value.result_code == 5063
    no_video = QosConfig(allowed_media=frozenset({MediaType.AUDIO}))
    video = MediaComponent(
        2,
        MediaType.VIDEO,
        1,
        1,
        sub_components=(MediaSubComponent(1, ("permit out 17 from any to any",)),),
    )
    with pytest.raises(ServiceInformationError):
        derive_rules("s", [video], no_video)


def test_audio_without_any_rate_is_5061() -> None:
    bare = MediaComponent(1, MediaType.AUDIO, sub_components=audio().sub_components)
    with pytest.raises(ServiceInformationError) as err:
        derive_rules("s", [bare])
    assert err.value.result_code == 5061


def test_modification_merges_and_removes() -> None:
    current = {1: audio()}
    update = MediaComponent(1, flow_status=FlowStatus.DISABLED)
    merged = merge_components(current, [update])
    assert merged[1].flow_status == FlowStatus.DISABLED
    assert merged[1].max_dl == 41_000 and len(merged[1].sub_components) == 2
    (rule,) = derive_rules("s", merged.values())
    assert rule.flow_status == FlowStatus.DISABLED
    assert merge_components(merged, [MediaComponent(1, flow_status=FlowStatus.REMOVED)]) == {}


ports = st.integers(1, 65535)
octet = st.integers(0, 255)


@settings(max_examples=150, deadline=None)
@given(octet, octet, ports, ports)
def test_rewrite_keeps_both_endpoints(a: int, b: int, p1: int, p2: int) -> None:
    ue, remote = f"10.0.{a}.{b}", f"198.51.{b}.{a}"
    rule = parse_filter(f"permit in 17 from {ue} {p1} to {remote} {p2}")
    flow = rule.as_gx()
    assert flow.direction == FlowDirection.UPLINK
    assert flow.description == f"permit out 17 from {remote} {p2} to {ue} {p1}"
    back = parse_filter(flow.description).as_gx()
    assert back.direction == FlowDirection.DOWNLINK and back.description == flow.description
