"""Tariff plan definition (what an operator writes in a tariff YAML file).

Money is ``Decimal`` in the currency's major unit (``"0.09"`` EUR), parsed from quoted strings or
integers only: an unquoted ``0.09`` is a binary floating-point number in YAML and is refused with
a message telling the operator to quote it. Rates may be finer than the minor unit (``"0.005"``
per MB); each charged line is rounded to minor units by the plan's ``rounding`` rule.

Structure checks live here (types, ranges, syntax); cross-references (unknown destination set,
band coverage, duplicate keys) live in :mod:`schemas.tariff_checks`. ``rating.loader`` turns
both into messages naming file, line and key.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.currencies import MINOR_UNIT_EXPONENT

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "hol")
HOLIDAY = 7  # day index of "hol": a date in the band set's holiday calendar


class InexactNumber(str):
    """An unquoted YAML number with a fraction or exponent, kept as its source text.

    The tariff loader builds these instead of binary floating-point values so that the schema can
    refuse them with a precise message (see :func:`parse_money`).
    """


def _reject_inexact(value: object, what: str) -> None:
    if isinstance(value, InexactNumber):
        raise ValueError(
            f"{what} {value} is an unquoted YAML number, which YAML reads as binary floating "
            f"point and may change; quote it: '{value}'"
        )


def parse_money(value: object) -> Decimal:
    """A non-negative exact amount from a quoted decimal string, an int or a ``Decimal``."""
    _reject_inexact(value, "amount")
    if isinstance(value, bool):
        raise ValueError("amount must be a number such as '0.09', not true/false")
    if isinstance(value, int | Decimal):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"amount {value!r} is not a decimal number such as '0.09'") from None
    else:
        raise ValueError(f"amount must be a quoted decimal string such as '0.09', got {value!r}")
    if not amount.is_finite():
        raise ValueError(f"amount {value!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"amount {value} is negative; rates and fees must be >= 0")
    return amount


def parse_price(value: object) -> Decimal | dict[str, Decimal]:
    """One amount for every time band, or a mapping ``{band name: amount}``."""
    if isinstance(value, dict):
        out: dict[str, Decimal] = {}
        for band, amount in value.items():
            try:
                out[str(band)] = parse_money(amount)
            except ValueError as exc:
                raise ValueError(f"band {band!r}: {exc}") from None
        if not out:
            raise ValueError("price per band must name at least one band")
        return out
    return parse_money(value)


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_TIME_UNITS = {"": 1, "s": 1, "sec": 1, "min": 60, "h": 3600}
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def _quantity(value: object, units: dict[str, int], example: str) -> int:
    _reject_inexact(value, "quantity")
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number or a size such as {example!r}")
    if isinstance(value, int):
        number, unit = Decimal(value), ""
    elif isinstance(value, str) and (m := _QUANTITY.match(value)):
        number, unit = Decimal(m.group(1)), m.group(2).lower()
    else:
        raise ValueError(
            f"expected a whole number or a quantity such as {example!r}, got {value!r}"
        )
    if unit not in units:
        raise ValueError(
            f"unknown unit {unit!r} in {value!r}; use one of {sorted(set(units) - {''})}"
        )
    total = number * units[unit]
    if total < 0 or total != total.to_integral_value():
        raise ValueError(f"{value!r} is not a whole, non-negative number of units")
    return int(total)


def parse_octets(value: object) -> int:
    """Octets from an int or a size such as ``"5GB"`` (SI) or ``"512KiB"`` (binary)."""
    return _quantity(value, _SIZE_UNITS, "5GB")


def parse_count(value: object) -> int:
    """A whole number of events."""
    return _quantity(value, {"": 1}, "100")


def parse_seconds(value: object) -> int:
    """Seconds from an int or a duration such as ``"90s"``, ``"100min"``, ``"2h"``."""
    return _quantity(value, _TIME_UNITS, "100min")


def parse_clock(value: object) -> int:
    """Seconds after local midnight from ``"HH:MM"`` or ``"HH:MM:SS"``; ``"24:00"`` is midnight."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", value.strip()):
        raise ValueError(f"time of day must be 'HH:MM' (quoted), got {value!r}")
    parts = [int(p) for p in value.strip().split(":")] + [0]
    hours, minutes, seconds = parts[0], parts[1], parts[2]
    total = hours * 3600 + minutes * 60 + seconds
    if minutes > 59 or seconds > 59 or total > 86400:
        raise ValueError(f"time of day {value!r} is out of range 00:00..24:00")
    return total


def parse_days(value: object) -> frozenset[int]:
    """Day indexes (0 = Monday .. 6 = Sunday, 7 = holiday) from names and ranges (``mon-fri``)."""
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("days must be a non-empty list such as [mon-fri] or [sat, sun, hol]")
    days: set[int] = set()
    for item in items:
        token = str(item).strip().lower()
        if token in ("all", "daily"):
            days.update(range(7))
            continue
        first, _, last = token.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES[:7]):
            raise ValueError(f"unknown day {item!r}; use {', '.join(DAY_NAMES)} or a range mon-fri")
        lo = DAY_NAMES.index(first)
        hi = DAY_NAMES.index(last) if last else lo
        if hi < lo:
            raise ValueError(f"day range {item!r} runs backwards")
        days.update(range(lo, hi + 1))
    return frozenset(days)


def parse_increments(value: object) -> tuple[int, int]:
    """``"60/1"`` (first/next seconds), a single number for both, or ``{first: 30, next: 6}``."""
    _reject_inexact(value, "increments")
    if isinstance(value, dict):
        parts = [value.get("first"), value.get("next")]
    elif isinstance(value, str):
        parts = value.split("/")
    else:
        parts = [value]
    if len(parts) == 1:
        parts = parts * 2
    try:
        if any(isinstance(p, bool) for p in parts):
            raise ValueError
        first, nxt = (int(str(p).strip()) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(
            f"increments must look like '60/1' (first/next seconds), got {value!r}"
        ) from None
    if first <= 0 or nxt <= 0:
        raise ValueError(f"increments {value!r} must be positive seconds (e.g. '60/1')")
    return first, nxt


def parse_prefix(value: object) -> str:
    """E.164 digits (a leading ``+`` is dropped) or ``*`` for "any other number"."""
    _reject_inexact(value, "prefix")
    text = (
        str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    )
    if text == "*":
        return text
    digits = text[1:] if text.startswith("+") else text
    if not (digits.isascii() and digits.isdigit()) or not 1 <= len(digits) <= 15:
        raise ValueError(
            f"prefix {value!r} must be 1-15 digits with an optional leading '+', or '*'"
        )
    return digits


Money = Annotated[Decimal, BeforeValidator(parse_money)]
Price = Annotated[Decimal | dict[str, Decimal], BeforeValidator(parse_price)]
Octets = Annotated[int, BeforeValidator(parse_octets)]
Clock = Annotated[int, BeforeValidator(parse_clock)]
Days = Annotated[frozenset[int], BeforeValidator(parse_days)]
Increments = Annotated[tuple[int, int], BeforeValidator(parse_increments)]
Prefix = Annotated[str, BeforeValidator(parse_prefix)]


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeBand(_Model):
    """On ``days``, from ``start`` to ``end`` (local time), band ``band`` applies."""

    band: str = Field(min_length=1)
    days: Days
    start: Clock
    end: Clock


class TimeBandSet(_Model):
    """Named schedule of bands that must cover every day type exactly once, without gaps."""

    holidays: str | None = None
    bands: list[TimeBand] = Field(min_length=1)


class VoiceRate(_Model):
    """Voice price for destination sets: connect fee, price per minute, increments, minimum."""

    destinations: Annotated[list[str], BeforeValidator(_as_list)] = Field(min_length=1)
    per_minute: Price
    connect_fee: Money = Decimal(0)
    increments: Increments = (60, 60)
    minimum_charge: Money = Decimal(0)
    time_bands: str | None = None


class Tier(_Model):
    """Price for cumulative usage below ``up_to`` (the last tier has no ``up_to``)."""

    up_to: int | None = None
    price: Price


class DataTier(Tier):
    up_to: Octets | None = None


class _TieredRate(_Model):
    @model_validator(mode="before")
    @classmethod
    def _price_shortcut(cls, data: Any) -> Any:
        """``price: '0.09'`` is short for a single open tier."""
        if isinstance(data, dict) and "price" in data and "tiers" not in data:
            data = {k: v for k, v in data.items() if k != "price"} | {
                "tiers": [{"price": data["price"]}]
            }
        return data


class DataRate(_TieredRate):
    """Volume price for rating groups: ``price`` per ``unit`` octets, tiered by period usage."""

    rating_groups: Annotated[list[int], BeforeValidator(_as_list)] = Field(min_length=1)
    unit: Octets = Field(default=10**6, gt=0)
    increment: Octets = Field(default=1, gt=0)
    tiers: list[DataTier] = Field(min_length=1)
    time_bands: str | None = None


class EventRate(_TieredRate):
    """Per-event price for service identifiers (SMS, MMS, ...), optionally tiered by count."""

    service_ids: Annotated[list[int], BeforeValidator(_as_list)] = Field(min_length=1)
    tiers: list[Tier] = Field(min_length=1)
    time_bands: str | None = None
    name: str | None = None


class BundleFilter(_Model):
    """What a bundle covers: voice to destination sets, data rating groups or event services."""

    destinations: list[str] = []
    rating_groups: list[int] = []
    service_ids: list[int] = []


class Rollover(_Model):
    """Unused units of a period carried into the next, capped, valid for ``valid_periods``."""

    cap: int = Field(gt=0)
    valid_periods: int = Field(default=1, gt=0)


BundleUnit = Literal["seconds", "octets", "events"]
_AMOUNT_PARSERS = {"seconds": parse_seconds, "octets": parse_octets, "events": parse_count}


class Bundle(_Model):
    """A named allowance consumed before money; renewed every ``period`` (``once``: never)."""

    name: str = Field(min_length=1)
    unit: BundleUnit
    amount: int = Field(gt=0)
    applies_to: BundleFilter
    priority: int = 100
    period: Literal["monthly", "weekly", "daily", "once"] = "monthly"
    rollover: Rollover | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: object, info: ValidationInfo) -> int:
        """``amount`` in the bundle's unit (``"300min"``, ``"5GB"``, ``100``)."""
        return _AMOUNT_PARSERS.get(info.data.get("unit"), parse_count)(value)

    @field_validator("rollover", mode="before")
    @classmethod
    def _rollover_cap(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, dict) and "cap" in value:
            parse = _AMOUNT_PARSERS.get(info.data.get("unit"), parse_count)
            return {**value, "cap": parse(value["cap"])}
        return value


class Destinations(_Model):
    """Destination sets: inline prefix lists and/or CSV files (``set,prefix[,description]``)."""

    files: list[str] = []
    sets: dict[str, Annotated[list[Prefix], BeforeValidator(_as_list)]] = {}


class PlanVersion(_Model):
    """The rates in force from ``effective_from`` (a date is midnight in the plan's timezone)."""

    effective_from: date | datetime
    voice: list[VoiceRate] = []
    data: list[DataRate] = []
    events: list[EventRate] = []


class TariffPlan(_Model):
    """A complete tariff file."""

    name: str = Field(min_length=1)
    currency: str
    timezone: str
    rounding: Literal["up", "down", "half_up", "half_even"] = "up"
    holidays: dict[str, list[date | str]] = {}
    destinations: Destinations = Destinations()
    time_bands: dict[str, TimeBandSet] = {}
    versions: list[PlanVersion] = Field(min_length=1)
    bundles: list[Bundle] = []

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value not in MINOR_UNIT_EXPONENT:
            raise ValueError(f"unknown currency {value!r}; use an ISO 4217 code such as 'EUR'")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as 'Europe/Berlin'"
            ) from None
        return value

    @field_validator("holidays")
    @classmethod
    def _holidays(cls, value: dict[str, list[date | str]]) -> dict[str, list[date | str]]:
        for name, days in value.items():
            for day in days:
                if isinstance(day, str) and not re.fullmatch(r"\d{2}-\d{2}", day):
                    raise ValueError(
                        f"holiday {day!r} in {name!r} must be a date (2026-12-25) "
                        "or MM-DD (every year)"
                    )
                if isinstance(day, str):
                    month, dom = (int(p) for p in day.split("-"))
                    date(2024, month, dom)  # leap year: accepts 02-29; raises on 13-01
        return value

    @property
    def exponent(self) -> int:
        """Digits of the currency's minor unit (2 for EUR: amounts are in cents)."""
        return MINOR_UNIT_EXPONENT[self.currency]
