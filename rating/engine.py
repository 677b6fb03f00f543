"""Public pricing API used by the OCS (pure functions; no I/O).

* :func:`price` — what a usage chunk costs (voice seconds to a number, data octets in a rating
  group, events of a service), as lines and a total in integer minor units.
* :func:`grant` — reverse rating: the most units an amount of money buys (quota grant).
* :func:`enquire` — the rates in force, without charging (price enquiry).

``already_used`` is what was priced earlier in the same accumulation scope: seconds of this call
(voice: connect fee, minimum and increments are per call), or units of the billing period (data
and events: tiers are by period usage). ``already_used == 0`` marks a call's first chunk. Pricing a
usage in chunks — ``price(u1)``, then ``price(u2, already_used=u1)`` from ``start + u1`` — sums
exactly to pricing it whole. A call is priced by the plan version in force when it began.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rating import tiered, voice
from rating.errors import NoRate
from rating.plan import Plan, Version
from rating.prefixes import normalize
from rating.result import Charge, Grant, RateSheet
from rating.tiered import TieredTariff
from rating.timebands import epoch_seconds, from_epoch
from rating.voice import VoiceTariff


@dataclass(frozen=True, slots=True)
class Voice:
    """``seconds`` of a call to ``destination`` (E.164, ``tel:``/``sip:`` URI accepted)."""

    destination: str
    seconds: int


@dataclass(frozen=True, slots=True)
class Data:
    """``octets`` (uplink + downlink) in a rating group."""

    rating_group: int
    octets: int


@dataclass(frozen=True, slots=True)
class Events:
    """``count`` events (SMS, MMS, ...) of a service identifier."""

    service_id: int
    count: int


Usage = Voice | Data | Events


def _units(usage: Usage, already_used: int) -> int:
    kind = type(usage)
    if kind is Voice:
        units = usage.seconds
    elif kind is Data:
        units = usage.octets
    elif kind is Events:
        units = usage.count
    else:
        raise TypeError(f"unsupported usage {usage!r}")
    if units < 0 or already_used < 0:
        raise ValueError(f"usage units and already_used must be >= 0, got {units}, {already_used}")
    return units


def resolve(plan: Plan, number: str) -> tuple[str, str]:
    """``(matched prefix, destination set)`` of a number by longest prefix."""
    return plan.prefixes.lookup(normalize(number))


def _tariff(
    plan: Plan, version: Version, usage: Usage
) -> tuple[VoiceTariff | TieredTariff, str | None]:
    if type(usage) is Voice:
        prefix, name = plan.prefixes.lookup(normalize(usage.destination))
        rate = version.voice.get(name)
        if rate is None:
            raise NoRate(f"no voice rate for destination set {name!r} ({usage.destination})")
        return rate, prefix
    if type(usage) is Data:
        rate = version.data.get(usage.rating_group)
        if rate is None:
            raise NoRate(f"no data rate for rating group {usage.rating_group}")
        return rate, None
    if type(usage) is Events:
        rate = version.events.get(usage.service_id)
        if rate is None:
            raise NoRate(f"no event rate for service id {usage.service_id}")
        return rate, None
    raise TypeError(f"unsupported usage {usage!r}")


def price(plan: Plan, usage: Usage, start: datetime, *, already_used: int = 0) -> Charge:
    """Price ``usage`` that began at ``start`` (aware) after ``already_used`` units in scope.

    Raises :class:`~rating.errors.RatingError` (unknown number, no rate) or ``ValueError``.
    """
    units = _units(usage, already_used)
    t = epoch_seconds(start)
    is_voice = type(usage) is Voice
    version = plan.version_at(t - already_used if is_voice else t)
    rate, prefix = _tariff(plan, version, usage)
    module = voice if is_voice else tiered
    total, billed, lines = module.price_chunk(rate, t, units, already_used, plan.rounding)
    return Charge(
        rate.kind,
        rate.key,
        plan.currency,
        total,
        billed,
        tuple(lines),
        prefix,
        version.effective_from,
    )


def grant(
    plan: Plan,
    request: Usage,
    start: datetime,
    available: int,
    *,
    already_used: int = 0,
    horizon: int = 86400,
) -> Grant:
    """The largest usage (<= the request's units) from ``start`` that ``available`` minor units
    pay for: ``price(g) <= available < price(g + one increment)`` unless capped by the request.

    ``horizon``: look-ahead in seconds for ``tariff_change_at`` of data/event grants.
    """
    cap = _units(request, already_used)
    t = epoch_seconds(start)
    is_voice = type(request) is Voice
    version = plan.version_at(t - already_used if is_voice else t)
    rate, _ = _tariff(plan, version, request)
    budget = max(0, available)
    if is_voice:
        units, cost, capped = voice.grant_seconds(rate, t, cap, already_used, budget, plan.rounding)
        window = units
    else:
        units, cost, capped = tiered.grant_units(rate, t, cap, already_used, budget, plan.rounding)
        window = horizon
    switch = (
        rate.schedule.next_switch(t, window) if rate.schedule is not None and window > 0 else None
    )
    return Grant(units, cost, capped, from_epoch(switch, plan.tz) if switch is not None else None)


def enquire(plan: Plan, usage: Usage, at: datetime, *, horizon: int = 7 * 86400) -> RateSheet:
    """The rates in force at ``at`` for a destination / rating group / service (units ignored)."""
    t = epoch_seconds(at)
    version = plan.version_at(t)
    rate, prefix = _tariff(plan, version, usage)
    schedule = rate.schedule
    band = schedule.band_at(t) if schedule is not None else 0
    switch = schedule.next_switch(t, horizon) if schedule is not None else None
    when = from_epoch(switch, plan.tz) if switch is not None else None
    if isinstance(rate, VoiceTariff):
        rates = dict(zip(rate.bands, rate.decimals, strict=True))
        return RateSheet(
            "voice",
            rate.name,
            plan.currency,
            prefix,
            rate.bands[band],
            rates,
            "min",
            ((None, rates),),
            rate.connect,
            rate.minimum,
            (rate.first, rate.next),
            when,
            version.effective_from,
        )
    tiers = tuple(
        (upper, {name: rate.decimals[b][i] for b, name in enumerate(rate.bands)})
        for i, upper in enumerate(rate.uppers)
    )
    return RateSheet(
        rate.kind,
        rate.key,
        plan.currency,
        None,
        rate.bands[band],
        tiers[0][1],
        rate.per,
        tiers,
        0,
        0,
        (rate.increment, rate.increment),
        when,
        version.effective_from,
    )
