"""Bundles (allowances): which buckets cover a usage, and renewal with rollover. Pure functions.

Bucket balances live in the OCS ledger; rating only computes. A usage is covered by the buckets
whose bundle applies to it (destination set, rating group or service id), lowest ``priority``
first, then rollover buckets, then earliest expiry. What no bucket covers is priced with money:
for a call, price the rest from ``start + covered`` with ``already_used`` increased by ``covered``
(the bundle seconds count as the call's first seconds, so no second connect fee is charged).

Periods are aligned on the subscriber's ``anchor`` (activation time) in the plan's timezone:
monthly on the anchor's day of month (clamped to short months), weekly on its weekday, daily at
local midnight.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rating.engine import Data, Events, Usage, Voice, resolve
from rating.plan import Plan
from schemas.tariff import Bundle

_UNIT_OF = {Voice: "seconds", Data: "octets", Events: "events"}


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket's state as kept by the ledger (``ref`` is the ledger's id for it)."""

    ref: str
    bundle: str
    remaining: int
    expires_at: datetime | None
    rollover: bool = False


@dataclass(frozen=True, slots=True)
class Draw:
    """``units`` taken from bucket ``ref``."""

    ref: str
    bundle: str
    units: int


@dataclass(frozen=True, slots=True)
class Consumption:
    """How a usage splits between buckets (``draws``) and money (``uncovered`` units)."""

    draws: tuple[Draw, ...]
    covered: int
    uncovered: int


def applies(bundle: Bundle, usage: Usage, destination_set: str | None) -> bool:
    """Whether ``bundle`` covers this kind of usage."""
    if _UNIT_OF[type(usage)] != bundle.unit:
        return False
    scope = bundle.applies_to
    if isinstance(usage, Voice):
        return destination_set in scope.destinations
    if isinstance(usage, Data):
        return usage.rating_group in scope.rating_groups
    return usage.service_id in scope.service_ids


def usable(plan: Plan, buckets: Iterable[Bucket], usage: Usage, at: datetime) -> list[Bucket]:
    """Buckets that may cover ``usage`` at ``at``, in consumption order."""
    destination_set = resolve(plan, usage.destination)[1] if isinstance(usage, Voice) else None
    found = [
        b
        for b in buckets
        if b.remaining > 0
        and (b.expires_at is None or b.expires_at > at)
        and b.bundle in plan.bundles
        and applies(plan.bundles[b.bundle], usage, destination_set)
    ]
    far = datetime.max.replace(tzinfo=at.tzinfo)
    found.sort(
        key=lambda b: (plan.bundles[b.bundle].priority, not b.rollover, b.expires_at or far, b.ref)
    )
    return found


def consume(plan: Plan, buckets: Iterable[Bucket], usage: Usage, at: datetime) -> Consumption:
    """Split ``usage`` into draws on ``buckets`` and the units left for money."""
    left = (
        usage.seconds
        if isinstance(usage, Voice)
        else usage.octets
        if isinstance(usage, Data)
        else usage.count
    )
    if left < 0:
        raise ValueError(f"usage units must be >= 0, got {left}")
    draws: list[Draw] = []
    for bucket in usable(plan, buckets, usage, at):
        if not left:
            break
        take = min(left, bucket.remaining)
        draws.append(Draw(bucket.ref, bucket.bundle, take))
        left -= take
    covered = sum(d.units for d in draws)
    return Consumption(tuple(draws), covered, left)


def _month_start(year: int, month: int, anchor: datetime) -> datetime:
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, tzinfo=anchor.tzinfo)


def period_bounds(period: str, anchor: datetime, at: datetime) -> tuple[datetime, datetime | None]:
    """``[start, end)`` of the ``period`` (monthly/weekly/daily/once) that contains ``at``.

    ``anchor`` and ``at`` are aware; bounds are local midnights in ``anchor``'s timezone (give
    the anchor in the plan's timezone). ``once`` runs from the anchor with no end.
    """
    local = at.astimezone(anchor.tzinfo)
    midnight = datetime(anchor.year, anchor.month, anchor.day, tzinfo=anchor.tzinfo)
    if period == "once":
        return anchor, None
    if period == "daily":
        start = datetime(local.year, local.month, local.day, tzinfo=anchor.tzinfo)
        return start, _wall(start, days=1)
    if period == "weekly":
        weeks = (local.replace(tzinfo=None) - midnight.replace(tzinfo=None)).days // 7
        start = _wall(midnight, days=7 * weeks)
        return start, _wall(start, days=7)
    year, month = local.year, local.month
    start = _month_start(year, month, anchor)
    if local < start:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = _month_start(year, month, anchor)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, _month_start(year, month, anchor)


def _wall(moment: datetime, *, days: int) -> datetime:
    """``moment`` plus whole days of wall-clock time (a DST day is still one day)."""
    return moment + timedelta(days=days)


def renew(
    plan: Plan, bundle_name: str, ending: Iterable[Bucket], anchor: datetime, at: datetime
) -> list[Bucket]:
    """Buckets of ``bundle_name`` for the period containing ``at``.

    ``ending``: the bundle's buckets from the period that just ended. Unused units of its main
    (non-rollover) buckets roll over up to ``rollover.cap``, valid for ``rollover.valid_periods``
    periods; rolled-over units never roll again. Refs are deterministic
    (``name@period-start`` and ``…#rollover``), so a repeated renewal is idempotent in the ledger.
    """
    bundle = plan.bundles[bundle_name]
    start, end = period_bounds(bundle.period, anchor, at)
    stamp = start.isoformat()
    fresh = [Bucket(f"{bundle.name}@{stamp}", bundle.name, bundle.amount, end)]
    if bundle.rollover is None or end is None:
        return fresh
    unused = sum(b.remaining for b in ending if b.bundle == bundle.name and not b.rollover)
    carry = min(unused, bundle.rollover.cap)
    if carry <= 0:
        return fresh
    expiry: datetime | None = end
    for _ in range(bundle.rollover.valid_periods - 1):
        assert expiry is not None
        expiry = period_bounds(bundle.period, anchor, expiry)[1]
    return [*fresh, Bucket(f"{bundle.name}@{stamp}#rollover", bundle.name, carry, expiry, True)]
