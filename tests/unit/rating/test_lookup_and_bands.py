"""Prefix lookup, number normalisation, band schedules, price enquiry, the no-float rule."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rating.engine import Data, Events, Voice, enquire, price, resolve
from rating.errors import NoRate, UnknownNumber
from rating.plan import Plan
from rating.prefixes import PrefixTable, normalize

ROOT = Path(__file__).resolve().parents[3]


def test_longest_prefix_wins(example: Plan) -> None:
    assert resolve(example, "+4930123456") == ("4930", "DE_FIXED")
    assert resolve(example, "+4917612345") == ("49176", "DE_MOBILE")
    assert resolve(example, "+491511234") == ("491511", "DE_MOBILE")
    assert resolve(example, "+49800123") == ("49800", "DE_FREEPHONE")
    assert resolve(example, "+4921234") == ("49", "DE_FIXED")
    assert resolve(example, "+447700900123") == ("447", "EUROPE_OTHER")
    assert resolve(example, "+81312345678") == ("*", "WORLD")


@pytest.mark.parametrize(
    "written",
    [
        "+49301234",
        "tel:+49301234",
        "sip:+49301234@ims.example;user=phone",
        "+49 30 12-34",
        "49301234",
    ],
)
def test_number_forms(written: str) -> None:
    assert normalize(written) == "49301234"


def test_bad_numbers_and_no_fallback() -> None:
    with pytest.raises(UnknownNumber):
        normalize("sip:alice@example.com")
    with pytest.raises(UnknownNumber, match="matches no destination prefix"):
        PrefixTable({"49": "DE"}).lookup("33123")


def test_no_rate_errors(basic: Plan) -> None:
    with pytest.raises(NoRate, match="rating group 99"):
        price(basic, Data(99, 1), datetime.fromisoformat("2026-11-24T10:00:00+01:00"))
    with pytest.raises(NoRate, match="service id 7"):
        price(basic, Events(7, 1), datetime.fromisoformat("2026-11-24T10:00:00+01:00"))
    with pytest.raises(NoRate, match="no version"):
        price(basic, Voice("+4930", 1), datetime.fromisoformat("2025-06-01T10:00:00+01:00"))
    with pytest.raises(ValueError, match="timezone"):
        price(basic, Voice("+4930", 1), datetime(2026, 11, 24, 10))


def test_enquiry_shows_rates_in_force(example: Plan) -> None:
    sheet = enquire(
        example, Voice("+4917012345", 0), datetime.fromisoformat("2026-11-24T19:00:00+01:00")
    )
    assert (sheet.key, sheet.band, sheet.increments) == ("DE_MOBILE", "peak", (60, 1))
    assert type(sheet.connect_fee) is int and type(sheet.minimum_charge) is int
    assert all(type(rate) is Decimal for rate in sheet.rates.values())
    assert sheet.rates == {"peak": Decimal("0.19"), "offpeak": Decimal("0.09")}
    assert sheet.next_switch == datetime.fromisoformat("2026-11-24T20:00:00+01:00")
    later = enquire(
        example, Voice("+4917012345", 0), datetime.fromisoformat("2027-02-01T12:00:00+01:00")
    )
    assert later.rates["peak"] == Decimal("0.15")
    data = enquire(example, Data(10, 0), datetime.fromisoformat("2026-11-24T03:00:00+01:00"))
    assert (data.band, data.per, data.rates["night"]) == ("night", "MB", Decimal("0.005"))
    assert [t[0] for t in data.tiers] == [10**9, 10**10, None]


def test_long_call_spans_several_bands(basic: Plan) -> None:
    # Friday 19:00 for 14 h: 1 h peak, then off-peak until Saturday (weekend stays off-peak).
    charge = price(
        basic, Voice("+4930123", 14 * 3600), datetime.fromisoformat("2026-11-27T19:00:00+01:00")
    )
    assert [(line.band, line.units) for line in charge.lines[1:]] == [
        ("peak", 3600),
        ("offpeak", 13 * 3600),
    ]
    # Thursday 19:00 for 14 h: peak, off-peak overnight, peak again from 08:00 Friday.
    charge = price(
        basic, Voice("+4930123", 14 * 3600), datetime.fromisoformat("2026-11-26T19:00:00+01:00")
    )
    assert [(line.band, line.units) for line in charge.lines[1:]] == [
        ("peak", 3600),
        ("offpeak", 12 * 3600),
        ("peak", 3600),
    ]


def test_no_binary_floating_point_in_rating_sources() -> None:
    files = [
        *sorted((ROOT / "rating").glob("*.py")),
        ROOT / "schemas" / "tariff.py",
        ROOT / "schemas" / "tariff_checks.py",
    ]
    offenders = [f.name for f in files if re.search(r"\bfloat\b", f.read_text(encoding="utf-8"))]
    assert offenders == []


@pytest.mark.parametrize(
    ("utc", "band"),
    [
        ("2026-10-25T04:59:59+00:00", "night"),  # 05:59:59 CET, the day clocks went back
        ("2026-10-25T05:00:00+00:00", "day"),  # 06:00 CET
        ("2026-03-29T03:59:59+00:00", "night"),  # 05:59:59 CEST, the day clocks went forward
        ("2026-03-29T04:00:00+00:00", "day"),  # 06:00 CEST
    ],
)
def test_band_switch_follows_local_time_on_dst_days(basic: Plan, utc: str, band: str) -> None:
    assert enquire(basic, Data(11, 0), datetime.fromisoformat(utc)).band == band
