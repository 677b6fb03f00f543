"""Worked examples, each checked by hand in the comment next to it (plan: conftest.BASIC)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rating.bundles import Bucket, consume
from rating.engine import Data, Events, Voice, grant, price
from rating.plan import Plan

TUE_10 = datetime.fromisoformat("2026-11-24T10:00:00+01:00")  # a Tuesday, peak


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def amounts(charge) -> list[tuple[str, str | None, int, int]]:
    return [(line.item, line.band, line.units, line.amount) for line in charge.lines]


def test_125_seconds_at_60_1_with_connect_fee(basic: Plan) -> None:
    # 60/1: 125 s are billed as 125 s. 125 s × 0.12 €/min = 25 ct; connect fee 10 ct → 35 ct.
    charge = price(basic, Voice("+49301234567", 125), TUE_10)
    assert charge.total == 35
    assert charge.charged_units == 125
    assert amounts(charge) == [("connect", None, 0, 10), ("usage", "peak", 125, 25)]
    assert charge.key == "DE_FIXED" and charge.prefix == "4930"
    assert charge.lines[1].rate == Decimal("0.12")


def test_60_1_first_increment_bills_a_full_minute(basic: Plan) -> None:
    # 7 s at 60/1 are billed as 60 s: 12 ct + 10 ct connect.
    assert price(basic, Voice("+4930999", 7), TUE_10).total == 22


def test_30_6_increments(basic: Plan) -> None:
    # 31 s at 30/6 → 36 s billed × 0.30 €/min = 18 ct.
    charge = price(basic, Voice("+491511234", 31), TUE_10)
    assert (charge.charged_units, charge.total) == (36, 18)


def test_call_crossing_20_00_from_peak_into_off_peak(basic: Plan) -> None:
    # 19:58:00 + 180 s: 120 s peak (24 ct) + 60 s off-peak (6 ct) + connect 10 ct = 40 ct.
    start = at("2026-11-24T19:58:00+01:00")
    charge = price(basic, Voice("+4930123", 180), start)
    assert amounts(charge) == [
        ("connect", None, 0, 10),
        ("usage", "peak", 120, 24),
        ("usage", "offpeak", 60, 6),
    ]
    assert charge.total == 40
    assert charge.lines[2].begins == int(at("2026-11-24T20:00:00+01:00").timestamp())


def test_band_boundary_is_local_time_across_dst(basic: Plan) -> None:
    # Monday after the spring DST switch: 20:00 local is 18:00 UTC (+02:00).
    charge = price(basic, Voice("+4930123", 120), at("2026-03-30T17:59:00+00:00"))
    assert amounts(charge)[1:] == [("usage", "peak", 60, 12), ("usage", "offpeak", 60, 6)]


def test_minimum_charge(basic: Plan) -> None:
    # PREMIUM: 30 s at 60/60 → 60 s × 0.60 = 60 ct, below the 1.00 minimum → +40 ct.
    charge = price(basic, Voice("+49900111", 30), TUE_10)
    assert amounts(charge) == [("usage", None, 60, 60), ("minimum", None, 0, 40)]
    assert charge.total == 100
    # 150 s → 180 s billed = 1.80 €: above the minimum, no top-up line.
    assert amounts(price(basic, Voice("+49900111", 150), TUE_10)) == [("usage", None, 180, 180)]


def test_minimum_charge_across_chunks_is_settled_once(basic: Plan) -> None:
    # Chunk 1 (30 s) pays the 1.00 minimum; chunk 2 (+120 s, total 180 s billed = 1.80) adds
    # 120 s of usage (1.20) minus the 40 ct top-up already paid → 80 ct. 100 + 80 = 180.
    first = price(basic, Voice("+49900111", 30), TUE_10)
    second = price(basic, Voice("+49900111", 120), at("2026-11-24T10:00:30+01:00"), already_used=30)
    assert amounts(second) == [("usage", None, 120, 120), ("minimum", None, 0, -40)]
    assert first.total + second.total == price(basic, Voice("+49900111", 150), TUE_10).total == 180


def test_holiday_is_off_peak(basic: Plan) -> None:
    # Christmas Day 2026 is a Friday: off-peak (6 ct/min). The day before is peak (12 ct/min).
    christmas = price(basic, Voice("+4930123", 120), at("2026-12-25T10:00:00+01:00"))
    eve = price(basic, Voice("+4930123", 120), at("2026-12-24T10:00:00+01:00"))
    assert (christmas.total, christmas.lines[1].band) == (10 + 12, "offpeak")
    assert (eve.total, eve.lines[1].band) == (10 + 24, "peak")
    # A one-off holiday (Good Friday 2026-04-03) too.
    assert (
        price(basic, Voice("+4930123", 60), at("2026-04-03T10:00:00+02:00")).lines[1].band
        == "offpeak"
    )


def test_data_session_crossing_a_tier(basic: Plan) -> None:
    # 900 MB already used this period; 200 MB more: 100 MB × 1 ct + 100 MB × 0.5 ct = 150 ct.
    charge = price(basic, Data(10, 200_000_000), TUE_10, already_used=900_000_000)
    assert [(ln.tier, ln.units, ln.amount) for ln in charge.lines] == [
        (1, 100_000_000, 100),
        (2, 100_000_000, 50),
    ]
    assert charge.total == 150


def test_data_increment_and_rounding_up(basic: Plan) -> None:
    # 1 octet is billed as 1 kB: 0.001 ct, rounded up to 1 ct.
    charge = price(basic, Data(10, 1), TUE_10)
    assert (charge.charged_units, charge.total) == (1000, 1)


def test_data_band_at_chunk_start(basic: Plan) -> None:
    # Rating group 11 is free between 00:00 and 06:00.
    assert price(basic, Data(11, 10**9), at("2026-11-24T03:00:00+01:00")).total == 0
    assert price(basic, Data(11, 10**9), TUE_10).total == 2000


def test_sms_tiers(basic: Plan) -> None:
    # 2 SMS sent, 3 more: one at 9 ct (tier 1 ends at 3), two at 5 ct = 19 ct.
    charge = price(basic, Events(2000, 3), TUE_10, already_used=2)
    assert [(ln.tier, ln.units, ln.amount) for ln in charge.lines] == [(1, 1, 9), (2, 2, 10)]


def test_bundle_covers_part_of_a_call(basic: Plan) -> None:
    # 100 s left in the bundle, 250 s call at peak: 100 s from the bundle, 150 s paid at
    # 12 ct/min = 30 ct, no second connect fee (the bundle seconds are the call's first seconds).
    buckets = [Bucket("b1", "mins", 100, at("2026-12-01T00:00:00+01:00"))]
    split = consume(basic, buckets, Voice("+4930123", 250), TUE_10)
    assert (split.covered, split.uncovered) == (100, 150)
    assert [(d.ref, d.units) for d in split.draws] == [("b1", 100)]
    rest = price(
        basic,
        Voice("+4930123", split.uncovered),
        at("2026-11-24T10:01:40+01:00"),
        already_used=split.covered,
    )
    assert amounts(rest) == [("usage", "peak", 150, 30)]


def test_version_in_force_at_call_start(basic: Plan) -> None:
    # WORLD: 1.50 €/min in 2026, 0.90 €/min from 2027-01-01. 120 s at 1/1.
    assert price(basic, Voice("+12125550100", 120), at("2026-12-31T12:00:00+01:00")).total == 300
    assert price(basic, Voice("+12125550100", 120), at("2027-01-01T00:00:00+01:00")).total == 180
    # Second chunk of a call that began on 2026-12-31 23:59: still the 2026 rate.
    chunk = price(
        basic, Voice("+12125550100", 60), at("2027-01-01T00:00:30+01:00"), already_used=90
    )
    assert chunk.total == 150


def test_grant_fits_money(basic: Plan) -> None:
    # 35 ct at peak: 10 ct connect leaves 25 ct = 125 s at 12 ct/min (60/1).
    g = grant(basic, Voice("+4930123", 3600), TUE_10, 35)
    assert (g.units, g.cost, g.capped) == (125, 35, False)
    assert price(basic, Voice("+4930123", 126), TUE_10).total > 35


def test_grant_capped_and_tariff_change(basic: Plan) -> None:
    g = grant(basic, Voice("+4930123", 600), at("2026-11-24T19:58:00+01:00"), 10_000)
    assert (g.units, g.capped) == (600, True)
    assert g.cost == price(basic, Voice("+4930123", 600), at("2026-11-24T19:58:00+01:00")).total
    assert g.tariff_change_at == at("2026-11-24T20:00:00+01:00")
    assert grant(basic, Voice("+4930123", 60), TUE_10, 10_000).tariff_change_at is None


def test_grant_nothing_when_broke(basic: Plan) -> None:
    # 9 ct does not cover the 10 ct connect fee.
    g = grant(basic, Voice("+4930123", 600), TUE_10, 9)
    assert (g.units, g.cost) == (0, 0)


def test_grant_data_across_tier(basic: Plan) -> None:
    # 950 MB used; 1.00 € buys 50 MB at 1 ct (50 ct) + 100 MB at 0.5 ct (50 ct) = 150 MB.
    g = grant(basic, Data(10, 10**10), TUE_10, 100, already_used=950_000_000)
    assert (g.units, g.cost, g.capped) == (150_000_000, 100, False)
