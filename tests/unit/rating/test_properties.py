"""Properties: monotone, never negative, chunks add up, reverse-rating bracket, exact types."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rating.engine import Data, Events, Voice, grant, price
from rating.money import DOWN, HALF_EVEN, HALF_UP, UP, divide, max_within
from rating.plan import Plan

PROPS = settings(max_examples=200, deadline=None)

NUMBERS = [
    "+4930123456",
    "+49401234",
    "+491511234567",
    "+49170999",
    "+49900111",
    "+12125550100",
    "+4989123",
    "+4917612345",
    "+43664123",
    "+33612345678",
    "+447700900123",
    "+81312345678",
]
starts = st.integers(
    int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()),
    int(datetime(2027, 12, 31, tzinfo=UTC).timestamp()),
).map(lambda s: datetime.fromtimestamp(s, UTC))
seconds = st.integers(0, 4 * 3600)
plans = st.sampled_from(["basic", "example"])


@pytest.fixture(scope="module")
def plans_by_name(basic: Plan, example: Plan) -> dict[str, Plan]:
    return {"basic": basic, "example": example}


def exact(charge) -> None:
    assert type(charge.total) is int and type(charge.charged_units) is int
    assert sum(line.amount for line in charge.lines) == charge.total
    for line in charge.lines:
        assert type(line.amount) is int and type(line.units) is int
        assert line.rate is None or type(line.rate) is Decimal


@PROPS
@given(plans, st.sampled_from(NUMBERS), starts, seconds, seconds, st.integers(0, 600))
def test_voice_monotone_and_never_negative(plans_by_name, name, number, start, u, extra, already):
    plan = plans_by_name[name]
    shorter = price(plan, Voice(number, u), start, already_used=already)
    longer = price(plan, Voice(number, u + extra), start, already_used=already)
    exact(shorter)
    exact(longer)
    assert 0 <= shorter.total <= longer.total


@PROPS
@given(
    plans, st.sampled_from(NUMBERS), starts, st.lists(st.integers(0, 2400), min_size=1, max_size=4)
)
def test_voice_chunks_sum_to_the_whole(plans_by_name, name, number, start, parts):
    """Pricing a call in CCR-U chunks (connect fee once) equals pricing it whole."""
    plan = plans_by_name[name]
    used, total = 0, 0
    for part in parts:
        chunk = price(plan, Voice(number, part), start + timedelta(seconds=used), already_used=used)
        exact(chunk)
        assert chunk.total >= 0
        total += chunk.total
        used += part
    assert total == price(plan, Voice(number, used), start).total


@PROPS
@given(
    plans,
    st.sampled_from([10, 30]),
    starts,
    st.lists(st.integers(0, 3 * 10**9), min_size=1, max_size=4),
    st.integers(0, 12 * 10**9),
)
def test_data_chunks_sum_and_monotone(plans_by_name, name, group, start, parts, already):
    plan = plans_by_name[name]
    group = 10 if name == "basic" else group
    used, total = already, 0
    for part in parts:
        chunk = price(plan, Data(group, part), start, already_used=used)
        exact(chunk)
        assert chunk.total >= 0
        total += chunk.total
        used += part
    whole = price(plan, Data(group, used - already), start, already_used=already)
    assert total == whole.total
    assert price(plan, Data(group, parts[0]), start, already_used=already).total <= whole.total


@PROPS
@given(
    plans,
    st.sampled_from(NUMBERS),
    starts,
    st.integers(0, 5000),
    st.integers(0, 7200),
    st.integers(0, 900),
)
def test_voice_grant_bracket(plans_by_name, name, number, start, available, cap, already):
    """price(g) <= available < price(g + one increment), unless the request caps g."""
    plan = plans_by_name[name]
    g = grant(plan, Voice(number, cap), start, available, already_used=already)
    assert type(g.units) is int and type(g.cost) is int
    assert 0 <= g.units <= cap
    cost = price(plan, Voice(number, g.units), start, already_used=already).total
    assert g.cost == cost <= available
    if g.capped:
        assert g.units == cap
    else:
        charge = price(plan, Voice(number, 1), start)
        tariff = plan.version_at(int(start.timestamp()) - already).voice[charge.key]
        step = tariff.first if already + g.units == 0 else tariff.next
        more = price(plan, Voice(number, g.units + step), start, already_used=already).total
        assert more > available


@PROPS
@given(plans, starts, st.integers(0, 10**5), st.integers(0, 2 * 10**10), st.integers(0, 12 * 10**9))
def test_data_grant_bracket(plans_by_name, name, start, available, cap, already):
    plan = plans_by_name[name]
    g = grant(plan, Data(10, cap), start, available, already_used=already)
    assert 0 <= g.units <= cap
    assert g.cost == price(plan, Data(10, g.units), start, already_used=already).total <= available
    if g.capped:
        assert g.units == cap
    else:
        step = plan.version_at(int(start.timestamp())).data[10].increment
        assert price(plan, Data(10, g.units + step), start, already_used=already).total > available


@PROPS
@given(plans, starts, st.integers(0, 3000), st.integers(0, 200), st.integers(0, 2000))
def test_event_grant_bracket(plans_by_name, name, start, available, cap, already):
    plan = plans_by_name[name]
    g = grant(plan, Events(2000, cap), start, available, already_used=already)
    assert (
        g.cost == price(plan, Events(2000, g.units), start, already_used=already).total <= available
    )
    assert (
        g.units == cap
        if g.capped
        else price(plan, Events(2000, g.units + 1), start, already_used=already).total > available
    )


MODES = {UP: ROUND_CEILING, DOWN: ROUND_FLOOR, HALF_UP: ROUND_HALF_UP, HALF_EVEN: ROUND_HALF_EVEN}


@PROPS
@given(st.integers(0, 10**15), st.integers(1, 10**9), st.sampled_from(sorted(MODES)))
def test_integer_rounding_matches_decimal(numerator, denominator, mode):
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(
        Decimal(1), rounding=MODES[mode]
    )
    assert divide(numerator, denominator, mode) == int(expected)


@PROPS
@given(
    st.integers(1, 10**9),
    st.integers(1, 10**9),
    st.integers(0, 10**6),
    st.sampled_from(sorted(MODES)),
)
def test_max_within_is_the_rounding_inverse(rate, denominator, budget, mode):
    x = max_within(rate, denominator, budget, mode)
    assert divide(rate * x, denominator, mode) <= budget < divide(rate * (x + 1), denominator, mode)
