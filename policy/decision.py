"""The policy decision for one IP-CAN session: pure, no I/O.

Inputs are the APN policy of the subscriber's profile, the octets used per monitoring key in the
current fair-use period, the subscriber's charging state (what TS 29.219 Sy would carry, here taken
from the OCS in the same process through :class:`ChargingStateSource`) and the local time. The
output says what the PCEF must enforce on the default bearer and which predefined rules and usage
monitoring grants apply. Restrictions stack, the most restrictive wins:
time-of-day variant → fair-use throttle (allowance spent) → credit exhaustion (throttle/redirect).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Protocol

from policy.qos import Arp


class ExhaustionAction(StrEnum):
    """What the plan does to the default bearer when the OCS reports final units spent."""

    NONE = "none"
    THROTTLE = "throttle"
    REDIRECT = "redirect"


@dataclass(frozen=True, slots=True)
class ChargingState:
    """The subscriber's credit as the OCS sees it: ``exhausted`` once a Final-Unit-Indication was
    reached (RFC 4006 §5.6) and no top-up has happened since."""

    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class SubscriberRef:
    """How the PCRF names a subscriber to the charging side (digits only)."""

    imsi: str | None
    msisdn: str | None


class ChargingStateSource(Protocol):
    """Implemented by openpcc/ wiring over charging/; policy never imports charging. When the
    state changes (final units reached, top-up), the wiring calls ``Pcrf.subscriber_changed``."""

    async def charging_state(self, subscriber: SubscriberRef) -> ChargingState: ...


class NoCharging:
    """The source used when no OCS is wired in: credit never runs out."""

    async def charging_state(self, subscriber: SubscriberRef) -> ChargingState:
        return ChargingState()


@dataclass(frozen=True, slots=True)
class Ambr:
    """APN-AMBR in bit/s (TS 29.212 §5.3.39/40)."""

    ul: int
    dl: int

    def cap(self, other: Ambr) -> Ambr:
        return Ambr(min(self.ul, other.ul), min(self.dl, other.dl))


@dataclass(frozen=True, slots=True)
class UsageAllowance:
    """Fair use: ``octets`` per period on ``monitoring_key``; spent → ``throttled`` AMBR."""

    monitoring_key: str
    octets: int
    throttled: Ambr


@dataclass(frozen=True, slots=True)
class TimeVariant:
    """A time-of-day variant: between ``start`` and ``end`` (local time, may wrap midnight) on
    ``weekdays`` (0 = Monday) the AMBR is capped and extra predefined rules apply."""

    name: str
    start: time
    end: time
    ambr: Ambr
    weekdays: frozenset[int] = frozenset(range(7))
    rules: frozenset[str] = frozenset()

    def active(self, now: datetime) -> bool:
        t = now.time().replace(tzinfo=None)
        if self.start <= self.end:
            return now.weekday() in self.weekdays and self.start <= t < self.end
        # Wraps midnight: the part after midnight belongs to the previous day's window.
        if t >= self.start:
            return now.weekday() in self.weekdays
        return t < self.end and (now.weekday() - 1) % 7 in self.weekdays


@dataclass(frozen=True, slots=True)
class ApnPolicy:
    apn: str
    qci: int
    arp: Arp
    ambr: Ambr
    predefined_rules: frozenset[str] = frozenset()
    rule_bases: frozenset[str] = frozenset()
    allowances: tuple[UsageAllowance, ...] = ()
    time_variants: tuple[TimeVariant, ...] = ()
    exhaustion_action: ExhaustionAction = ExhaustionAction.NONE
    exhaustion_ambr: Ambr | None = None
    redirect_rules: frozenset[str] = frozenset()
    online: bool = False
    offline: bool = True


@dataclass(frozen=True, slots=True)
class MonitoringGrant:
    monitoring_key: str
    octets: int


@dataclass(frozen=True, slots=True)
class Decision:
    qci: int
    arp: Arp
    ambr: Ambr
    predefined_rules: frozenset[str]
    rule_bases: frozenset[str]
    monitoring: tuple[MonitoringGrant, ...]
    reasons: tuple[str, ...] = ()
    next_change: datetime | None = field(default=None, compare=False)
    online: bool = False
    offline: bool = True


def decide(
    apn: ApnPolicy,
    used: Mapping[str, int],
    charging: ChargingState,
    now: datetime,
) -> Decision:
    """The QoS and rules for the default bearer now; ``next_change`` is the next time-of-day
    boundary, when the scheduler must decide again."""
    ambr = apn.ambr
    rules = set(apn.predefined_rules)
    bases = set(apn.rule_bases)
    reasons: list[str] = []
    for variant in apn.time_variants:
        if variant.active(now):
            ambr = ambr.cap(variant.ambr)
            rules |= variant.rules
            reasons.append(f"time:{variant.name}")
    grants = []
    for allowance in apn.allowances:
        remaining = allowance.octets - used.get(allowance.monitoring_key, 0)
        if remaining > 0:
            grants.append(MonitoringGrant(allowance.monitoring_key, remaining))
        else:
            ambr = ambr.cap(allowance.throttled)
            reasons.append(f"fair-use:{allowance.monitoring_key}")
    if charging.exhausted and apn.exhaustion_action != ExhaustionAction.NONE:
        if apn.exhaustion_action == ExhaustionAction.THROTTLE and apn.exhaustion_ambr:
            ambr = ambr.cap(apn.exhaustion_ambr)
        elif apn.exhaustion_action == ExhaustionAction.REDIRECT:
            rules, bases = set(apn.redirect_rules), set()
        reasons.append(f"credit:{apn.exhaustion_action}")
    return Decision(
        qci=apn.qci,
        arp=apn.arp,
        ambr=ambr,
        predefined_rules=frozenset(rules),
        rule_bases=frozenset(bases),
        monitoring=tuple(grants),
        reasons=tuple(reasons),
        next_change=next_boundary(apn.time_variants, now),
        online=apn.online,
        offline=apn.offline,
    )


def next_boundary(variants: tuple[TimeVariant, ...], now: datetime) -> datetime | None:
    """The first start or end of any variant strictly after ``now`` (within a week)."""
    best: datetime | None = None
    for variant in variants:
        for edge in (variant.start, variant.end):
            candidate = now.replace(
                hour=edge.hour, minute=edge.minute, second=edge.second, microsecond=0
            )
            if candidate <= now:
                candidate += timedelta(days=1)
            if best is None or candidate < best:
                best = candidate
    return best


def rule_changes(
    old: Decision | None, new: Decision
) -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """(rules to install, rules to remove, bases to install, bases to remove)."""
    old_rules = old.predefined_rules if old else frozenset()
    old_bases = old.rule_bases if old else frozenset()
    return (
        new.predefined_rules - old_rules,
        old_rules - new.predefined_rules,
        new.rule_bases - old_bases,
        old_bases - new.rule_bases,
    )


def bearer_changed(old: Decision | None, new: Decision) -> bool:
    """Whether the default bearer QoS or APN-AMBR must be pushed again."""
    return old is None or (old.qci, old.arp, old.ambr) != (new.qci, new.arp, new.ambr)
