"""Reading CCRs (RFC 4006 §3.1) and writing CCA parts (Final-Unit-Indication, Cost-Information)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from charging.answers import FinalUnit, ServiceAnswer, cost_information
from charging.ccr import RequestType, parse
from charging.grants import UnitKind
from diam.errors import AnswerError
from diam.message import Avp, Message
from schemas.provisioning import FinalUnitAction, RedirectAddressType


def ccr(*avps: object) -> Message:
    base = [("Session-Id", "s;1"), ("Origin-Host", "c.test"), ("Origin-Realm", "test")]
    return Message.request(272, 4, [*base, *avps])  # type: ignore[list-item]


def test_parse_mscc_units_and_ims_information() -> None:
    request = ccr(
        ("CC-Request-Type", 2),
        ("CC-Request-Number", 7),
        Avp.new("Multiple-Services-Credit-Control", [
            ("Requested-Service-Unit", []),
            ("Used-Service-Unit", [("Tariff-Change-Usage", 0), ("CC-Input-Octets", 10),
                                   ("CC-Output-Octets", 32)]),
            ("Used-Service-Unit", [("Tariff-Change-Usage", 1), ("CC-Total-Octets", 8)]),
            ("Rating-Group", 10),
        ]),
        Avp.new("Service-Information", [("IMS-Information", [
            ("Called-Party-Address", "tel:+4930123"), ("Role-Of-Node", 0),
            ("Event-Type", [("SIP-Method", "INVITE")]),
        ])]),
    )  # fmt: skip
    parsed = parse(request)
    assert parsed.request_type is RequestType.UPDATE and parsed.request_number == 7
    [service] = parsed.services
    assert service.rating_group == 10 and service.key == "rg10/si"
    assert service.requested is not None and service.requested.is_empty
    assert [u.octets for u in service.used] == [42, 8]
    assert parsed.info.called_party == "tel:+4930123" and parsed.info.sip_method == "INVITE"
    assert parsed.multiple_services


def test_single_service_request_uses_top_level_units() -> None:
    parsed = parse(ccr(("CC-Request-Type", 1), ("CC-Request-Number", 0),
                       Avp.new("Subscription-Id", [("Subscription-Id-Type", 0),
                                                   ("Subscription-Id-Data", "49170")]),
                       Avp.new("Requested-Service-Unit", [("CC-Time", 90)])))  # fmt: skip
    assert not parsed.multiple_services
    assert parsed.services[0].requested.time == 90  # type: ignore[union-attr]
    assert parsed.subscription_ids == ((0, "49170"),)


@pytest.mark.parametrize(
    ("avps", "code", "failed"),
    [
        ([("CC-Request-Number", 0)], 5005, "CC-Request-Type"),
        ([("CC-Request-Type", 1)], 5005, "CC-Request-Number"),
        ([("CC-Request-Type", 9), ("CC-Request-Number", 0)], 5004, "CC-Request-Type"),
        ([("CC-Request-Type", 1), ("CC-Request-Number", 0)], 5005, "Subscription-Id"),
        ([("CC-Request-Type", 4), ("CC-Request-Number", 0), ("Requested-Action", 7)], 5004,
         "Requested-Action"),
    ],
)  # fmt: skip
def test_bad_requests_name_the_failed_avp(avps: list[tuple[str, int]], code: int,
                                          failed: str) -> None:  # fmt: skip
    with pytest.raises(AnswerError) as caught:
        parse(ccr(*avps))
    assert caught.value.result_code == code
    assert caught.value.failed_avp is not None and caught.value.failed_avp.name == failed


def test_service_answer_with_redirect_and_tariff_change() -> None:
    change = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    answer = ServiceAnswer(
        rating_group=10, service_id=None, kind=UnitKind.OCTETS, granted=1000, validity_time=60,
        final_unit=FinalUnit(FinalUnitAction.REDIRECT, RedirectAddressType.URL, "http://x/"),
        quota_holding_time=30, tariff_time_change=change,
    )  # fmt: skip
    avp = answer.avp()
    gsu = avp.first("Granted-Service-Unit")
    assert gsu.get("CC-Total-Octets") == 1000 and gsu.get("Tariff-Time-Change") == change
    fui = avp.first("Final-Unit-Indication")
    assert fui.get("Final-Unit-Action") == 1
    assert fui.first("Redirect-Server").get("Redirect-Server-Address") == "http://x/"
    assert avp.get("Validity-Time") == 60 and avp.get("Result-Code") == 2001
    assert avp.get("Quota-Holding-Time") == 30


def test_cost_information_is_exact_minor_units() -> None:
    cost = cost_information(1234, "EUR", 2)
    unit_value = cost.first("Unit-Value")
    assert (unit_value.get("Value-Digits"), unit_value.get("Exponent")) == (1234, -2)
    assert cost.get("Currency-Code") == 978
    assert cost_information(5, "JPY", 0).first("Unit-Value").get("Exponent") == 0
