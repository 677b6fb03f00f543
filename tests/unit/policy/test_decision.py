"""The policy decision: time of day, fair use and charging state stack; most restrictive wins."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from zoneinfo import ZoneInfo

from policy.decision import (
    Ambr,
    ApnPolicy,
    ChargingState,
    ExhaustionAction,
    MonitoringGrant,
    TimeVariant,
    UsageAllowance,
    bearer_changed,
    decide,
    next_boundary,
    rule_changes,
)
from policy.qos import Arp

TZ = ZoneInfo("Europe/Paris")
MB = 1_000_000
NIGHT = TimeVariant("night", time(23, 0), time(6, 0), Ambr(2 * MB, 4 * MB))
INTERNET = ApnPolicy(
    apn="internet",
    qci=9,
    arp=Arp(8),
    ambr=Ambr(50 * MB, 100 * MB),
    predefined_rules=frozenset({"default-internet"}),
    rule_bases=frozenset({"zero-rated"}),
    allowances=(UsageAllowance("fair-use", 10 * 10**9, Ambr(1 * MB, 1 * MB)),),
    time_variants=(NIGHT,),
    exhaustion_action=ExhaustionAction.THROTTLE,
    exhaustion_ambr=Ambr(64_000, 64_000),
    redirect_rules=frozenset({"redirect-topup"}),
)
NOON = datetime(2026, 11, 25, 12, 0, tzinfo=TZ)  # a Wednesday


def test_plain_day_gets_the_apn_policy_and_the_remaining_allowance() -> None:
    d = decide(INTERNET, {"fair-use": 4 * 10**9}, ChargingState(), NOON)
    assert (d.qci, d.arp, d.ambr) == (9, Arp(8), Ambr(50 * MB, 100 * MB))
    assert d.predefined_rules == {"default-internet"} and d.rule_bases == {"zero-rated"}
    assert d.monitoring == (MonitoringGrant("fair-use", 6 * 10**9),)
    assert d.reasons == ()
    assert d.next_change == datetime(2026, 11, 25, 23, 0, tzinfo=TZ)


def test_spent_allowance_throttles_and_stops_monitoring() -> None:
    d = decide(INTERNET, {"fair-use": 10 * 10**9}, ChargingState(), NOON)
    assert d.ambr == Ambr(1 * MB, 1 * MB)
    assert d.monitoring == ()
    assert d.reasons == ("fair-use:fair-use",)


def test_night_window_wraps_midnight() -> None:
    late = NOON.replace(hour=23, minute=30)
    early = datetime(2026, 11, 26, 5, 59, tzinfo=TZ)
    morning = early.replace(hour=6, minute=0)
    assert decide(INTERNET, {}, ChargingState(), late).ambr == Ambr(2 * MB, 4 * MB)
    assert decide(INTERNET, {}, ChargingState(), early).ambr == Ambr(2 * MB, 4 * MB)
    assert decide(INTERNET, {}, ChargingState(), morning).ambr == INTERNET.ambr
    assert next_boundary((NIGHT,), late) == early.replace(hour=6, minute=0)


def test_weekday_restricted_window() -> None:
    weekend = TimeVariant("weekend", time(0, 0), time(23, 59), Ambr(5, 5), frozenset({5, 6}))
    assert not weekend.active(NOON)
    assert weekend.active(datetime(2026, 11, 28, 12, 0, tzinfo=TZ))


def test_credit_exhaustion_throttle_and_redirect() -> None:
    broke = ChargingState(exhausted=True)
    throttled = decide(INTERNET, {}, broke, NOON)
    assert throttled.ambr == Ambr(64_000, 64_000)
    assert throttled.reasons == ("credit:throttle",)
    redirecting = replace(INTERNET, exhaustion_action=ExhaustionAction.REDIRECT)
    redirected = decide(redirecting, {}, broke, NOON)
    assert redirected.predefined_rules == {"redirect-topup"} and redirected.rule_bases == set()
    assert redirected.ambr == INTERNET.ambr
    # Top-up: state back to normal, the deltas restore the plan's rules.
    restored = decide(redirecting, {}, ChargingState(), NOON)
    install, remove, bases_in, bases_out = rule_changes(redirected, restored)
    assert install == {"default-internet"} and remove == {"redirect-topup"}
    assert bases_in == {"zero-rated"} and bases_out == set()
    assert not bearer_changed(redirected, restored)
    assert bearer_changed(throttled, restored)


def test_most_restrictive_wins() -> None:
    d = decide(
        INTERNET, {"fair-use": 11 * 10**9}, ChargingState(exhausted=True), NOON.replace(hour=23)
    )
    assert d.ambr == Ambr(64_000, 64_000)
    assert d.reasons == ("time:night", "fair-use:fair-use", "credit:throttle")
