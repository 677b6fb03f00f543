"""Cross-reference checks of a parsed :class:`~schemas.tariff.TariffPlan`.

Each problem is ``(key path, message)``; the tariff loader maps the key path to a file line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from schemas.tariff import DAY_NAMES, HOLIDAY, TariffPlan, TimeBandSet

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

SUB_MINOR_DIGITS = 6  # rates may be this many digits finer than the minor unit


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def check_band_set(loc: Loc, bands: TimeBandSet, holidays: Iterable[str]) -> list[Problem]:
    """Every day type is covered from 00:00 to 24:00 exactly once."""
    problems: list[Problem] = []
    if bands.holidays is not None and bands.holidays not in holidays:
        problems.append(((*loc, "holidays"), f"unknown holiday calendar {bands.holidays!r}"))
    for i, band in enumerate(bands.bands):
        if band.start >= band.end:
            problems.append(
                (
                    (*loc, "bands", i),
                    f"band {band.band!r} starts at {_clock(band.start)}, not before its end "
                    f"{_clock(band.end)}; split a band that crosses midnight into two entries "
                    "(…-24:00 and 00:00-…)",
                )
            )
        if HOLIDAY in band.days and bands.holidays is None:
            problems.append(
                (
                    (*loc, "bands", i, "days"),
                    "'hol' is used but the band set has no holidays calendar",
                )
            )
    if problems:
        return problems
    day_types = range(8) if bands.holidays is not None else range(7)
    found: dict[str, list[str]] = defaultdict(list)  # message -> day names
    for day in day_types:
        entries = sorted((b.start, b.end, i) for i, b in enumerate(bands.bands) if day in b.days)
        pos, last = 0, None
        for start, end, i in entries:
            if start > pos:
                found[f"gap {_clock(pos)}-{_clock(start)} (no band)"].append(DAY_NAMES[day])
            elif start < pos and last is not None:
                found[
                    f"bands #{last} {bands.bands[last].band!r} and #{i} {bands.bands[i].band!r} "
                    f"overlap {_clock(start)}-{_clock(min(pos, end))}"
                ].append(DAY_NAMES[day])
            if end > pos:
                pos, last = end, i
        if pos < 86400:
            found[f"gap {_clock(pos)}-24:00 (no band)"].append(DAY_NAMES[day])
    problems.extend(((*loc, "bands"), f"{msg} on {', '.join(days)}") for msg, days in found.items())
    return problems


def _check_amount(loc: Loc, amount: Decimal, exponent: int) -> list[Problem]:
    digits = -int(amount.as_tuple().exponent)
    if digits > exponent + SUB_MINOR_DIGITS:
        return [
            (loc, f"amount {amount} has more than {exponent + SUB_MINOR_DIGITS} decimal places")
        ]
    return []


def _check_price(
    loc: Loc, price: Decimal | dict[str, Decimal], band_set: str | None, plan: TariffPlan
) -> list[Problem]:
    if isinstance(price, Decimal):
        return _check_amount(loc, price, plan.exponent)
    problems = [
        p for band, a in price.items() for p in _check_amount((*loc, band), a, plan.exponent)
    ]
    if band_set is None:
        return [*problems, (loc, "a price per band needs 'time_bands' naming a band set")]
    if band_set not in plan.time_bands:
        return problems  # reported as an unknown band set
    names = {b.band for b in plan.time_bands[band_set].bands}
    if missing := sorted(names - price.keys()):
        problems.append(
            (loc, f"no price for band(s) {', '.join(missing)} of band set {band_set!r}")
        )
    if extra := sorted(price.keys() - names):
        problems.append((loc, f"band(s) {', '.join(extra)} not in band set {band_set!r}"))
    return problems


def _check_band_ref(loc: Loc, band_set: str | None, plan: TariffPlan) -> list[Problem]:
    if band_set is not None and band_set not in plan.time_bands:
        return [((*loc, "time_bands"), f"unknown time band set {band_set!r}")]
    return []


def _check_tiers(loc: Loc, tiers: list, band_set: str | None, plan: TariffPlan) -> list[Problem]:
    problems: list[Problem] = []
    previous = 0
    for i, tier in enumerate(tiers):
        last = i == len(tiers) - 1
        if last and tier.up_to is not None:
            problems.append(
                ((*loc, i, "up_to"), "the last tier must have no 'up_to' (it is open-ended)")
            )
        elif not last and tier.up_to is None:
            problems.append(((*loc, i), "only the last tier may omit 'up_to'"))
        elif tier.up_to is not None and tier.up_to <= previous:
            problems.append(
                (
                    (*loc, i, "up_to"),
                    f"up_to {tier.up_to} must be above the previous tier's {previous}",
                )
            )
        previous = tier.up_to or previous
        problems += _check_price((*loc, i, "price"), tier.price, band_set, plan)
    return problems


def _check_unique(loc: Loc, seen: dict, key: object, what: str, entry: int) -> list[Problem]:
    if key in seen:
        return [(loc, f"{what} {key!r} is already priced by entry #{seen[key]}")]
    seen[key] = entry
    return []


def check_plan(plan: TariffPlan, csv_sets: Iterable[str] = ()) -> list[Problem]:
    """All cross-reference problems of ``plan`` (``csv_sets``: set names loaded from CSV files)."""
    sets = set(plan.destinations.sets) | set(csv_sets)
    known = ", ".join(sorted(sets)) or "none"
    problems: list[Problem] = []
    for name, band_set in plan.time_bands.items():
        problems += check_band_set(("time_bands", name), band_set, plan.holidays)
    seen_from: dict[object, int] = {}
    for v, version in enumerate(plan.versions):
        vloc: Loc = ("versions", v)
        if version.effective_from in seen_from:
            problems.append(
                (
                    (*vloc, "effective_from"),
                    f"same effective_from as version #{seen_from[version.effective_from]}",
                )
            )
        seen_from.setdefault(version.effective_from, v)
        priced: dict[object, object] = {}
        for j, rate in enumerate(version.voice):
            loc: Loc = (*vloc, "voice", j)
            problems += _check_band_ref(loc, rate.time_bands, plan)
            for k, dest in enumerate(rate.destinations):
                dloc = (*loc, "destinations", k)
                if dest not in sets:
                    problems.append(
                        (dloc, f"unknown destination set {dest!r}; defined sets: {known}")
                    )
                problems += _check_unique(dloc, priced, dest, "destination set", j)
            problems += _check_price((*loc, "per_minute"), rate.per_minute, rate.time_bands, plan)
            problems += _check_amount((*loc, "connect_fee"), rate.connect_fee, plan.exponent)
            problems += _check_amount((*loc, "minimum_charge"), rate.minimum_charge, plan.exponent)
        for kind, rates, key in (
            ("data", version.data, "rating_groups"),
            ("events", version.events, "service_ids"),
        ):
            seen: dict[object, object] = {}
            for j, rate in enumerate(rates):
                loc = (*vloc, kind, j)
                problems += _check_band_ref(loc, rate.time_bands, plan)
                for k, ident in enumerate(getattr(rate, key)):
                    problems += _check_unique(
                        (*loc, key, k), seen, ident, key[:-1].replace("_", " "), j
                    )
                problems += _check_tiers((*loc, "tiers"), rate.tiers, rate.time_bands, plan)
    problems += _check_bundles(plan, sets, known)
    return problems


_FILTER_FOR_UNIT = {"seconds": "destinations", "octets": "rating_groups", "events": "service_ids"}


def _check_bundles(plan: TariffPlan, sets: set[str], known: str) -> list[Problem]:
    problems: list[Problem] = []
    names: dict[str, int] = {}
    for i, bundle in enumerate(plan.bundles):
        loc: Loc = ("bundles", i)
        if bundle.name in names:
            problems.append(
                (
                    (*loc, "name"),
                    f"bundle name {bundle.name!r} is already used by bundle #{names[bundle.name]}",
                )
            )
        names.setdefault(bundle.name, i)
        wanted = _FILTER_FOR_UNIT[bundle.unit]
        for field in _FILTER_FOR_UNIT.values():
            values = getattr(bundle.applies_to, field)
            if field == wanted and not values:
                problems.append(
                    ((*loc, "applies_to"), f"a bundle of {bundle.unit} needs applies_to.{field}")
                )
            elif field != wanted and values:
                problems.append(
                    (
                        (*loc, "applies_to", field),
                        f"a bundle of {bundle.unit} cannot filter on {field}",
                    )
                )
        for k, dest in enumerate(bundle.applies_to.destinations):
            if dest not in sets:
                problems.append(
                    (
                        (*loc, "applies_to", "destinations", k),
                        f"unknown destination set {dest!r}; defined sets: {known}",
                    )
                )
        if bundle.rollover is not None and bundle.period == "once":
            problems.append(
                ((*loc, "rollover"), "rollover needs a recurring period (monthly, weekly, daily)")
            )
    return problems
