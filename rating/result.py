"""What pricing returns: a charge broken into lines, a grant, a rate sheet. Money is ``int``
minor units; rates are ``Decimal`` major units per ``per``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a charge.

    ``item`` is ``connect`` (the connect fee), ``usage`` (units in one time band / tier) or
    ``minimum`` (top-up to the minimum charge; negative in a later chunk of a call whose first
    chunk was topped up and whose usage has now passed the minimum).
    """

    item: str
    units: int
    amount: int
    band: str | None = None
    tier: int | None = None
    rate: Decimal | None = None
    per: str | None = None
    begins: int | None = None  # epoch second of the first unit of a voice usage line


@dataclass(frozen=True, slots=True)
class Charge:
    """Price of one usage chunk: ``total`` = sum of the lines' amounts, in minor units."""

    kind: str
    key: str
    currency: str
    total: int
    charged_units: int  # units billed by this chunk once increments are applied
    lines: tuple[Line, ...]
    prefix: str | None
    effective_from: datetime


@dataclass(frozen=True, slots=True)
class Grant:
    """Largest usage that ``available`` pays for: ``cost`` <= available, ``units`` <= request.

    ``capped``: limited by the requested units rather than money. ``tariff_change_at``: next time
    band switch (voice: inside the granted seconds; data/events: within the look-ahead), to send
    as Tariff-Time-Change (RFC 4006 §8.20).
    """

    units: int
    cost: int
    capped: bool
    tariff_change_at: datetime | None


@dataclass(frozen=True, slots=True)
class RateSheet:
    """The rates in force for a destination, rating group or service at an instant."""

    kind: str
    key: str
    currency: str
    prefix: str | None
    band: str | None
    rates: dict[str | None, Decimal]  # price per ``per`` by band, for the first tier
    per: str
    tiers: tuple[tuple[int | None, dict[str | None, Decimal]], ...]
    connect_fee: int
    minimum_charge: int
    increments: tuple[int, int]
    next_switch: datetime | None
    effective_from: datetime
