"""The IMS core's prebuilt Diameter octets equal what diam's Avp.new/Message.request encode."""

from __future__ import annotations

import pytest

from diam.constants import APP_CREDIT_CONTROL, APP_RX, CMD_AA, CMD_CREDIT_CONTROL
from diam.message import Avp, Message
from diam.octets import avp, group, request
from ims.media import MediaComponentInput, RxFlowStatus, RxFlowUsage, RxMediaType, SubComponent
from ims.pcscf import component_avp


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Session-Id", "pcscf.ims.test;rx;1f;7"),  # UTF8String, padded
        ("Destination-Realm", "ocs.test"),  # DiameterIdentity
        ("Auth-Application-Id", APP_RX),  # Unsigned32
        ("CC-Request-Type", 3),  # Enumerated
        ("AF-Charging-Identifier", b"icid-1"),  # OctetString
        ("Specific-Action", 12),  # 3GPP vendor AVP (V and M bits, 12-octet header)
        ("Codec-Data", "uplink\noffer\nm=audio 6000 RTP/AVP 0"),  # vendor, odd length
        ("Framed-IP-Address", bytes([127, 0, 0, 1])),
        ("Flow-Description", "permit out 17 from 10.0.0.2 6000 to 10.0.0.1 6000"),
    ],
)
def test_avp_octets_equal_avp_new(name: str, value: object) -> None:
    assert avp(name, value) == Avp.new(name, value).wire()


def test_group_and_request_equal_message_request() -> None:
    built = request(
        CMD_CREDIT_CONTROL,
        APP_CREDIT_CONTROL,
        avp("Session-Id", "scscf;ro;1"),
        avp("CC-Request-Number", 0),
        group(
            "Multiple-Services-Credit-Control",
            group("Requested-Service-Unit", avp("CC-Time", 60)),
            avp("Rating-Group", 100),
        ),
    )
    reference = Message.request(
        CMD_CREDIT_CONTROL,
        APP_CREDIT_CONTROL,
        [
            ("Session-Id", "scscf;ro;1"),
            ("CC-Request-Number", 0),
            (
                "Multiple-Services-Credit-Control",
                [("Requested-Service-Unit", [("CC-Time", 60)]), ("Rating-Group", 100)],
            ),
        ],
    )
    assert built.is_request and built.is_proxiable
    assert built.encode() == reference.encode()
    mscc = built.first("Multiple-Services-Credit-Control")
    assert mscc is not None and mscc.first("Requested-Service-Unit").get("CC-Time") == 60
    built.add(("Destination-Realm", "ocs.test"))  # the node may still add AVPs
    assert built.get("Destination-Realm") == "ocs.test"


def test_wrong_kind_and_bad_value_name_the_avp() -> None:
    with pytest.raises(TypeError, match="Grouped"):
        avp("Subscription-Id", [])
    with pytest.raises(TypeError, match="not Grouped"):
        group("Session-Id")
    with pytest.raises(TypeError, match="CC-Time"):
        avp("CC-Time", "sixty")
    with pytest.raises(KeyError):
        avp("No-Such-AVP", 1)


def test_media_component_matches_the_named_avp_build() -> None:
    comp = MediaComponentInput(
        1,
        RxMediaType.AUDIO,
        RxFlowStatus.ENABLED,
        41000,
        49000,
        41000,
        49000,
        2000,
        600,
        ("uplink\noffer\nm=audio 6000 RTP/AVP 96", "downlink\nanswer\nm=audio 7000 RTP/AVP 96"),
        (
            SubComponent(
                1,
                (
                    "permit out 17 from 10.0.0.2 7000 to 10.0.0.1 6000",
                    "permit in 17 from 10.0.0.1 6000 to 10.0.0.2 7000",
                ),
                RxFlowUsage.NO_INFORMATION,
            ),
        ),
    )
    reference = Avp.new(
        "Media-Component-Description",
        [
            ("Media-Component-Number", 1),
            ("Media-Type", 0),
            ("Max-Requested-Bandwidth-UL", 41000),
            ("Max-Requested-Bandwidth-DL", 49000),
            ("Min-Requested-Bandwidth-UL", 41000),
            ("Min-Requested-Bandwidth-DL", 49000),
            ("RR-Bandwidth", 2000),
            ("RS-Bandwidth", 600),
            *(("Codec-Data", d) for d in comp.codec_data),
            ("Flow-Status", 2),
            (
                "Media-Sub-Component",
                [
                    ("Flow-Number", 1),
                    *(("Flow-Description", d) for d in comp.sub_components[0].flow_descriptions),
                    ("Flow-Usage", 0),
                ],
            ),
        ],
    )
    assert component_avp(comp) == reference.wire()
    message = request(CMD_AA, APP_RX, component_avp(comp))
    assert message.first("Media-Component-Description").get("Max-Requested-Bandwidth-UL") == 41000
