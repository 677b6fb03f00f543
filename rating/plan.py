"""A compiled tariff plan: prefix table, band schedules and per-version rate objects.

Compiled once when a plan is loaded (:func:`compile_plan`), so pricing only does dict lookups and
integer arithmetic.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating.errors import NoRate
from rating.money import ROUNDING, SUB, divide, scaled
from rating.prefixes import PrefixTable
from rating.tiered import TieredTariff
from rating.timebands import Calendar, Schedule, epoch_seconds
from rating.voice import VoiceTariff
from schemas.tariff import Bundle, PlanVersion, TariffPlan, TimeBandSet


@dataclass(frozen=True, slots=True)
class Version:
    """The rates in force from ``effective_from``."""

    effective_from: datetime
    voice: dict[str, VoiceTariff]
    data: dict[int, TieredTariff]
    events: dict[int, TieredTariff]


@dataclass(frozen=True, slots=True, repr=False)
class Plan:
    """A loaded, validated, compiled tariff plan (immutable; safe to share between tasks)."""

    definition: TariffPlan
    currency: str
    exponent: int
    tz: ZoneInfo
    rounding: int
    prefixes: PrefixTable
    set_sizes: dict[str, int]
    versions: tuple[Version, ...]
    starts: tuple[int, ...]
    bundles: dict[str, Bundle]

    @property
    def name(self) -> str:
        return self.definition.name

    def __repr__(self) -> str:
        size = f"{len(self.prefixes)} prefixes, {len(self.versions)} versions"
        return f"<Plan {self.name!r} {self.currency}, {size}>"

    def version_at(self, t: int) -> Version:
        """The version in force at epoch second ``t`` (the latest ``effective_from`` <= t)."""
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            raise NoRate(
                f"no version of plan {self.name!r} is in force before "
                f"{self.versions[0].effective_from.isoformat()}"
            )
        return self.versions[i]


def _schedule(bands: TimeBandSet, tz: ZoneInfo, calendars: Mapping[str, Calendar]) -> Schedule:
    names: list[str] = []
    days: dict[int, list[tuple[int, int, int]]] = {d: [] for d in range(8)}
    for entry in bands.bands:
        if entry.band not in names:
            names.append(entry.band)
        for day in entry.days:
            days[day].append((entry.start, entry.end, names.index(entry.band)))
    calendar = calendars[bands.holidays] if bands.holidays is not None else None
    return Schedule(tuple(names), days, tz, calendar)


def _by_band(
    price: Decimal | dict[str, Decimal], schedule: Schedule | None
) -> tuple[tuple[str | None, ...], tuple[Decimal, ...]]:
    if schedule is None:
        assert isinstance(price, Decimal)  # guaranteed by schemas.tariff_checks
        return (None,), (price,)
    names = schedule.names
    if isinstance(price, Decimal):
        return names, (price,) * len(names)
    return names, tuple(price[n] for n in names)


def _effective(moment: date | datetime, tz: ZoneInfo) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)
    return datetime(moment.year, moment.month, moment.day, tzinfo=tz)


def _version(
    v: PlanVersion, tz: ZoneInfo, exp: int, mode: int, schedules: Mapping[str, Schedule]
) -> Version:
    def fee(amount: Decimal) -> int:
        return divide(scaled(amount, exp), SUB, mode)

    voice: dict[str, VoiceTariff] = {}
    for rate in v.voice:
        schedule = schedules[rate.time_bands] if rate.time_bands else None
        bands, decimals = _by_band(rate.per_minute, schedule)
        for dest in rate.destinations:
            voice[dest] = VoiceTariff(
                dest,
                fee(rate.connect_fee),
                fee(rate.minimum_charge),
                *rate.increments,
                tuple(scaled(d, exp) for d in decimals),
                decimals,
                bands,
                schedule,
            )
    tiered: dict[str, dict[int, TieredTariff]] = {"data": {}, "events": {}}
    for kind, rates in (("data", v.data), ("events", v.events)):
        for rate in rates:
            schedule = schedules[rate.time_bands] if rate.time_bands else None
            per_tier = [_by_band(t.price, schedule) for t in rate.tiers]
            bands = per_tier[0][0]
            decimals = tuple(tuple(t[1][b] for t in per_tier) for b in range(len(bands)))
            uppers = tuple(t.up_to for t in rate.tiers)
            unit, increment = (rate.unit, rate.increment) if kind == "data" else (1, 1)
            per = "event" if kind == "events" else "MB" if unit == 10**6 else f"{unit} octets"
            keys = rate.rating_groups if kind == "data" else rate.service_ids
            for key in keys:
                tiered[kind][key] = TieredTariff(
                    kind,
                    str(key),
                    unit,
                    increment,
                    (0, *(u or 0 for u in uppers[:-1])),
                    uppers,
                    tuple(tuple(scaled(d, exp) for d in row) for row in decimals),
                    decimals,
                    bands,
                    per,
                    schedule,
                )
    return Version(_effective(v.effective_from, tz), voice, tiered["data"], tiered["events"])


def compile_plan(definition: TariffPlan, prefixes: Mapping[str, str]) -> Plan:
    """Compile a validated plan; ``prefixes`` maps E.164 digits (or ``*``) to destination sets."""
    tz = ZoneInfo(definition.timezone)
    mode = ROUNDING[definition.rounding]
    exp = definition.exponent
    calendars = {name: Calendar(days) for name, days in definition.holidays.items()}
    schedules = {n: _schedule(b, tz, calendars) for n, b in definition.time_bands.items()}
    versions = sorted(
        (_version(v, tz, exp, mode, schedules) for v in definition.versions),
        key=lambda v: v.effective_from,
    )
    sizes: dict[str, int] = {}
    for name in prefixes.values():
        sizes[name] = sizes.get(name, 0) + 1
    return Plan(
        definition,
        definition.currency,
        exp,
        tz,
        mode,
        PrefixTable(prefixes),
        sizes,
        tuple(versions),
        tuple(epoch_seconds(v.effective_from) for v in versions),
        {b.name: b for b in definition.bundles},
    )
