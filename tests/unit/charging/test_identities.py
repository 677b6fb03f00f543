"""Subscription-Id normalisation: every spelling of one subscriber resolves to one identity."""

from __future__ import annotations

import pytest

from charging.identities import e164_digits, lookup_keys, normalise, sip_uri


@pytest.mark.parametrize(
    "spelling",
    ["491701234567", "+491701234567", "tel:+49-170-1234567", "tel:+491701234567;phone-context=x"],
)
def test_e164_spellings(spelling: str) -> None:
    assert e164_digits(spelling) == "491701234567"
    assert lookup_keys(0, spelling) == [("msisdn", "491701234567")]


def test_sip_uri_is_case_insensitive_in_scheme_and_host_only() -> None:
    assert sip_uri("SIP:Alice@IMS.Example.org;transport=tcp") == "sip:Alice@ims.example.org"
    assert lookup_keys(2, "<sip:bob@IMS.test>") == [("sip_uri", "sip:bob@ims.test")]


def test_sip_uri_with_a_global_number_also_tries_the_msisdn() -> None:
    assert lookup_keys(2, "sip:+491701234567@ims.test;user=phone") == [
        ("sip_uri", "sip:+491701234567@ims.test"),
        ("msisdn", "491701234567"),
    ]
    assert lookup_keys(2, "tel:+491701234567") == [("msisdn", "491701234567")]


def test_imsi_nai_and_garbage() -> None:
    assert lookup_keys(1, "001010000000001") == [("imsi", "001010000000001")]
    assert lookup_keys(3, "Alice@Example.ORG") == [("nai", "alice@example.org")]
    assert lookup_keys(1, "not-an-imsi") == []
    assert lookup_keys(0, "tel:") == []
    assert lookup_keys(9, "x") == []
    with pytest.raises(ValueError):
        normalise("imsi", "12")
