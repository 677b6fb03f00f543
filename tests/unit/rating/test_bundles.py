"""Bundles: which buckets cover a usage, in what order; renewal and rollover."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rating.bundles import Bucket, consume, period_bounds, renew, usable
from rating.engine import Data, Events, Voice
from rating.plan import Plan


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


NOW = at("2026-11-24T10:00:00+01:00")
LATER = at("2026-12-24T00:00:00+01:00")


def test_priority_then_rollover_then_expiry(basic: Plan) -> None:
    buckets = [
        Bucket("main", "mins", 100, LATER),
        Bucket("roll", "mins", 20, at("2026-12-01T00:00:00+01:00"), rollover=True),
        Bucket("promo", "promo", 30, None),
    ]
    split = consume(basic, buckets, Voice("+4930123", 140), NOW)
    assert [(d.ref, d.units) for d in split.draws] == [("promo", 30), ("roll", 20), ("main", 90)]
    assert (split.covered, split.uncovered) == (140, 0)


def test_only_matching_live_buckets_cover(basic: Plan) -> None:
    buckets = [
        Bucket("expired", "promo", 30, at("2026-11-24T09:59:59+01:00")),
        Bucket("fixed-only", "mins", 100, LATER),
        Bucket("empty", "promo", 0, None),
    ]
    mobile = consume(basic, buckets, Voice("+491511234", 60), NOW)
    assert (mobile.draws, mobile.covered, mobile.uncovered) == ((), 0, 60)
    world = consume(basic, buckets, Voice("+12125550100", 60), NOW)
    assert world.uncovered == 60


def test_data_bundle_covers_octets_of_its_rating_group(basic: Plan) -> None:
    buckets = [Bucket("d", "data", 5 * 10**9, LATER)]
    split = consume(basic, buckets, Data(10, 6 * 10**9), NOW)
    assert (split.covered, split.uncovered) == (5 * 10**9, 10**9)
    assert consume(basic, buckets, Data(11, 100), NOW).covered == 0
    assert consume(basic, buckets, Events(2000, 1), NOW).covered == 0


def test_example_plan_sms_and_data_bundles(example: Plan) -> None:
    buckets = [
        Bucket("sms", "sms_100", 2, LATER),
        Bucket("welcome", "welcome_data", 10**9, None),
        Bucket("monthly", "data_5gb", 5 * 10**9, LATER),
    ]
    assert [(d.ref, d.units) for d in consume(example, buckets, Events(2000, 3), NOW).draws] == [
        ("sms", 2)
    ]
    draws = consume(example, buckets, Data(30, 2 * 10**9), NOW).draws
    assert [(d.ref, d.units) for d in draws] == [("welcome", 10**9), ("monthly", 10**9)]


def test_monthly_period_clamps_to_short_months() -> None:
    anchor = at("2026-01-31T00:00:00+01:00")
    assert period_bounds("monthly", anchor, at("2026-02-15T12:00:00+01:00")) == (
        at("2026-01-31T00:00:00+01:00"),
        at("2026-02-28T00:00:00+01:00"),
    )
    assert period_bounds("monthly", anchor, at("2026-03-01T00:00:00+01:00")) == (
        at("2026-02-28T00:00:00+01:00"),
        at("2026-03-31T00:00:00+01:00"),
    )
    assert period_bounds("monthly", anchor, at("2026-12-31T23:00:00+01:00"))[1] == at(
        "2027-01-31T00:00:00+01:00"
    )


def test_weekly_daily_once_periods(basic: Plan) -> None:
    anchor = datetime(2026, 11, 2, 15, 30, tzinfo=basic.tz)  # a Monday
    start, end = period_bounds("weekly", anchor, datetime(2026, 11, 24, 10, tzinfo=basic.tz))
    assert (start, end) == (
        datetime(2026, 11, 23, tzinfo=basic.tz),
        datetime(2026, 11, 30, tzinfo=basic.tz),
    )
    # A daily period across the autumn DST switch is 25 hours long but still one local day.
    start, end = period_bounds("daily", anchor, datetime(2026, 10, 25, 12, tzinfo=basic.tz))
    assert (start, end) == (
        datetime(2026, 10, 25, tzinfo=basic.tz),
        datetime(2026, 10, 26, tzinfo=basic.tz),
    )
    assert end.timestamp() - start.timestamp() == 25 * 3600
    assert period_bounds("once", anchor, NOW) == (anchor, None)


def test_renewal_with_capped_rollover(basic: Plan) -> None:
    anchor = datetime(2026, 1, 1, tzinfo=basic.tz)
    ending = [
        Bucket("m-nov", "mins", 80, datetime(2026, 12, 1, tzinfo=basic.tz)),
        Bucket("r-nov", "mins", 40, datetime(2026, 12, 1, tzinfo=basic.tz), rollover=True),
    ]
    new = renew(basic, "mins", ending, anchor, datetime(2026, 12, 1, 0, 0, 5, tzinfo=basic.tz))
    main, carried = new
    assert (main.remaining, main.expires_at, main.rollover) == (
        100,
        datetime(2027, 1, 1, tzinfo=basic.tz),
        False,
    )
    # 80 unused main seconds, cap 50; rolled-over seconds never roll again; valid 2 periods.
    assert (carried.remaining, carried.rollover) == (50, True)
    assert carried.expires_at == datetime(2027, 2, 1, tzinfo=basic.tz)
    assert main.ref == "mins@2026-12-01T00:00:00+01:00" and carried.ref == main.ref + "#rollover"
    # Renewing again in the same period gives the same refs (idempotent in the ledger).
    assert renew(basic, "mins", ending, anchor, datetime(2026, 12, 20, tzinfo=basic.tz)) == new


def test_renewal_without_rollover(basic: Plan) -> None:
    anchor = datetime(2026, 1, 1, tzinfo=basic.tz)
    new = renew(basic, "data", [Bucket("x", "data", 10**9, None)], anchor, NOW)
    assert [(b.remaining, b.rollover) for b in new] == [(5 * 10**9, False)]
    assert renew(basic, "mins", [], anchor, NOW)[1:] == []


bucket_lists = st.lists(
    st.tuples(
        st.sampled_from(["mins", "promo", "data"]),
        st.integers(0, 500),
        st.booleans(),
        st.integers(-3, 3),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(
    bucket_lists, st.integers(0, 2000), st.sampled_from(["+4930123", "+491511234", "+12125550100"])
)
def test_consume_conserves_units(basic: Plan, specs, seconds, number) -> None:
    buckets = [
        Bucket(f"b{i}", name, left, NOW + timedelta(days=days), rollover)
        for i, (name, left, rollover, days) in enumerate(specs)
    ]
    split = consume(basic, buckets, Voice(number, seconds), NOW)
    assert split.covered + split.uncovered == seconds and split.uncovered >= 0
    by_ref = {b.ref: b for b in buckets}
    for draw in split.draws:
        bucket = by_ref[draw.ref]
        assert 0 < draw.units <= bucket.remaining and bucket.expires_at > NOW
    assert len({d.ref for d in split.draws}) == len(split.draws)
    if split.uncovered:  # everything usable was used up
        assert split.covered == sum(
            b.remaining for b in usable(basic, buckets, Voice(number, 1), NOW)
        )
