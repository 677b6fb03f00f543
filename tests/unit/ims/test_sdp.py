"""SDP parse/serialize and the offer/answer → Rx media component mapping (TS 29.213 §6.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ims.media import (
    RxFlowStatus,
    RxFlowUsage,
    RxMediaType,
    media_components,
    signalling_component,
    ue_address,
)
from ims.sdp import SdpError, make_answer, parse_sdp

OFFER = """v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
b=AS:64
t=0 0
a=x-unknown:kept
m=audio 40000 RTP/AVP 97 98 0 8 101
b=AS:49
b=RS:0
b=RR:2000
a=rtpmap:97 AMR-WB/16000/1
a=fmtp:97 mode-change-capability=2;max-red=0
a=rtpmap:98 AMR/8000
a=fmtp:98 mode-set=7
a=rtpmap:101 telephone-event/16000
a=fmtp:101 0-15
a=ptime:20
a=maxptime:240
a=sendrecv
m=video 0 RTP/AVP 99
a=rtpmap:99 H264/90000
"""


def test_parse_codecs_bandwidth_directions() -> None:
    sdp = parse_sdp(OFFER.replace("\n", "\r\n").encode())
    audio, video = sdp.media
    assert [c.name for c in audio.codecs] == ["AMR-WB", "AMR", "PCMU", "PCMA", "telephone-event"]
    amrwb = audio.codecs[0]
    assert (amrwb.payload_type, amrwb.clock_rate, amrwb.channels) == (97, 16000, 1)
    assert amrwb.fmtp == "mode-change-capability=2;max-red=0"
    assert audio.codecs[2].clock_rate == 8000  # static PCMU without rtpmap
    assert audio.bandwidths == {"AS": 49, "RS": 0, "RR": 2000}
    assert audio.ptime == 20 and audio.direction == "sendrecv"
    assert video.rejected and not audio.rejected
    assert sdp.connection_for(audio).ip == "127.0.0.1"  # type: ignore[union-attr]
    assert sdp.bandwidths == {"AS": 64}


def test_serialize_round_trip_keeps_lines() -> None:
    sdp = parse_sdp(OFFER)
    text = sdp.encode().decode()
    assert text.replace("\r\n", "\n") == OFFER
    assert parse_sdp(text).encode() == sdp.encode()


def test_ipv6_evs_and_errors() -> None:
    sdp = parse_sdp(
        "v=0\no=- 1 1 IN IP6 ::1\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 96\n"
        "c=IN IP6 2001:db8::5\nb=TIAS:13200\na=rtpmap:96 EVS/16000\n"
        "a=fmtp:96 br=13.2;bw=swb\n"
    )
    assert sdp.media[0].connection.ip == "2001:db8::5"  # type: ignore[union-attr]
    assert sdp.media[0].codecs[0].name == "EVS"
    for bad in (
        "",
        "v=1\n",
        "v=0\ns=-\nt=0 0\n",
        "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n",  # no c=
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 300.1.1.1\nt=0 0\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP6 1.1.1.1\nt=0 0\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 1.1.1.1\nt=0 0\nm=audio x RTP/AVP 0\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 1.1.1.1\nt=0 0\nb=AS:x\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 1.1.1.1\nt=0 0\nm=audio 1 RTP/AVP 96\n"
        "a=rtpmap:96 AMR\n",
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 1.1.1.1\nt=0 0\nm=audio 1 RTP/AVP 0\nt=0 0\n",
        b"v=0\n\xff\n",
    ):
        with pytest.raises(SdpError):
            parse_sdp(bad)


def test_make_answer_picks_first_supported_codec_and_rejects_video() -> None:
    offer = parse_sdp(OFFER)
    answer = make_answer(offer, "127.0.0.2", 50000, supported=("AMR", "PCMU"))
    audio, video = answer.media
    assert audio.port == 50000 and audio.formats == ["98", "101"]
    assert [c.name for c in audio.codecs] == ["AMR", "telephone-event"]
    assert audio.bandwidths == {"AS": 49, "RS": 0, "RR": 2000}
    assert video.port == 0
    assert parse_sdp(answer.encode()).media[0].codecs[0].fmtp == "mode-set=7"


def test_media_components_originating_side() -> None:
    offer = parse_sdp(OFFER)
    answer = parse_sdp(
        OFFER.replace("127.0.0.1", "127.0.0.2")
        .replace("40000", "50000")
        .replace("b=AS:49", "b=AS:38")
        .replace("b=RR:2000", "b=RR:1500")
    )
    audio, video = media_components(offer, answer, ue_is_offerer=True)
    assert audio.number == 1 and audio.media_type == RxMediaType.AUDIO
    # UL = what the remote side can receive (its b=AS), DL = the UE's b=AS; kbit/s → bit/s
    assert (audio.max_ul, audio.max_dl) == (38_000, 49_000)
    assert (audio.min_ul, audio.min_dl) == (38_000, 49_000)
    assert (audio.rr, audio.rs) == (2000, 0)
    assert audio.flow_status == RxFlowStatus.ENABLED
    assert audio.codec_data[0].startswith("uplink\noffer\nm=audio 40000 RTP/AVP 97 98 0 8 101\n")
    assert audio.codec_data[1].startswith("downlink\nanswer\nm=audio 50000")
    assert "a=rtpmap:97 AMR-WB/16000/1" in audio.codec_data[0].split("\n")
    rtp, rtcp = audio.sub_components
    assert rtp.flow_descriptions == (
        "permit out 17 from 127.0.0.2 50000 to 127.0.0.1 40000",
        "permit in 17 from 127.0.0.1 40000 to 127.0.0.2 50000",
    )
    assert rtp.flow_usage == RxFlowUsage.NO_INFORMATION
    assert rtcp.flow_descriptions == (
        "permit out 17 from 127.0.0.2 50001 to 127.0.0.1 40001",
        "permit in 17 from 127.0.0.1 40001 to 127.0.0.2 50001",
    )
    assert rtcp.flow_usage == RxFlowUsage.RTCP and rtcp.flow_number == 2
    assert video.flow_status == RxFlowStatus.REMOVED and video.sub_components == ()
    assert ue_address(offer, answer, True) == "127.0.0.1"


def test_media_components_terminating_side_direction_tias_and_rtcp_mux() -> None:
    offer = parse_sdp(
        "v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\n"
        "m=audio 4000 RTP/AVP 96\nb=TIAS:13200\na=maxprate:50\n"
        "a=rtpmap:96 EVS/16000\na=rtcp-mux\na=sendonly\n"
    )
    answer = parse_sdp(
        "v=0\no=- 1 1 IN IP6 ::2\ns=-\nc=IN IP6 2001:db8::2\nt=0 0\n"
        "m=audio 6000 RTP/AVP 96\nb=AS:41\na=rtpmap:96 EVS/16000\na=rtcp-mux\n"
        "a=recvonly\n"
    )
    (comp,) = media_components(offer, answer, ue_is_offerer=False)
    # the UE answered: its SDP is the uplink one; recvonly UE → downlink only
    assert comp.flow_status == RxFlowStatus.ENABLED_DOWNLINK
    # UL from the offer's TIAS + IPv6/UDP/RTP overhead (60 octets × 8 × 50 pkt/s = 24 kbit/s)
    assert comp.max_ul == 13_200 + 24_000 and comp.max_dl == 41_000
    assert comp.codec_data[0].startswith("downlink\noffer\n")
    assert comp.codec_data[1].startswith("uplink\nanswer\n")
    (rtp,) = comp.sub_components  # rtcp-mux on both sides: no separate RTCP flows
    assert rtp.flow_descriptions[0] == "permit out 17 from 2001:db8::1 4000 to 2001:db8::2 6000"
    assert ue_address(offer, answer, False) == "2001:db8::2"


def test_signalling_component() -> None:
    comp = signalling_component("127.0.0.1", 5070, "127.0.0.9", 5060)
    assert comp.media_type == RxMediaType.CONTROL and comp.number == 0
    assert comp.sub_components[0].flow_usage == RxFlowUsage.AF_SIGNALLING
    assert (
        comp.sub_components[0].flow_descriptions[1]
        == "permit in 17 from 127.0.0.1 5070 to 127.0.0.9 5060"
    )


_SDP_LINES = OFFER.splitlines()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    st.lists(st.sampled_from(_SDP_LINES), max_size=25),
    st.text(max_size=30),
    st.integers(min_value=0, max_value=len(OFFER)),
)
def test_fuzz_sdp_only_sdp_error(lines: list[str], junk: str, cut: int) -> None:
    for text in ("\n".join(["v=0", *lines]), OFFER[:cut] + junk + OFFER[cut:]):
        try:
            sdp = parse_sdp(text)
            assert parse_sdp(sdp.encode()).encode() == sdp.encode()  # round trip is stable
            if len(sdp.media) == len(parse_sdp(OFFER).media):
                media_components(parse_sdp(OFFER), sdp, ue_is_offerer=True)
        except SdpError:
            pass
