"""Volume (data octets) and event (SMS, ...) pricing: tiers by cumulative usage in the period.

``C_b(n)``: the price of a period's first ``n`` units in band ``b`` — ``n`` rounded up to the
increment, split over the tiers, each tier line rounded once to minor units. A chunk of ``used``
units after ``already`` in the period costs ``C_b(already + used) − C_b(already)``, with ``b`` the
band in force at the chunk's start (a volume has no duration to split; the OCS cuts a report at a
band switch with Tariff-Time-Change, RFC 4006 §8.20).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rating.money import SUB, divide, max_within
from rating.result import Line
from rating.search import largest_fitting
from rating.timebands import Schedule


@dataclass(frozen=True, slots=True)
class TieredTariff:
    """A compiled data or event rate; ``rates[band][tier]`` in sub-minor units per ``unit``."""

    kind: str
    key: str
    unit: int
    increment: int
    lowers: tuple[int, ...]  # first unit of each tier
    uppers: tuple[int | None, ...]  # end of each tier (None: open)
    rates: tuple[tuple[int, ...], ...]
    decimals: tuple[tuple[Decimal, ...], ...]
    bands: tuple[str | None, ...]
    per: str
    schedule: Schedule | None

    def charged(self, units: int) -> int:
        """Units billed for ``units``: rounded up to the increment."""
        step = self.increment
        return -(-units // step) * step if units > 0 else 0

    def band_at(self, t: int) -> int:
        return 0 if self.schedule is None else self.schedule.band_at(t)

    def cumulative(self, band: int, billed: int, mode: int) -> int:
        """``C_b``: the price of the period's first ``billed`` units."""
        total, den = 0, self.unit * SUB
        for lo, hi, rate in zip(self.lowers, self.uppers, self.rates[band], strict=True):
            if billed <= lo:
                break
            inside = (billed if hi is None or billed < hi else hi) - lo
            total += divide(rate * inside, den, mode)
        return total


def price_chunk(
    tariff: TieredTariff, start: int, units: int, already: int, mode: int
) -> tuple[int, int, list[Line]]:
    """``(total, billed units, lines)`` for ``units`` used at epoch ``start`` after ``already``
    units in the period; one line per tier touched."""
    before = tariff.charged(already)
    after = tariff.charged(already + units)
    if after <= before:
        return 0, 0, []
    band = tariff.band_at(start)
    den = tariff.unit * SUB
    lines: list[Line] = []
    total = 0
    rates, decimals, name = tariff.rates[band], tariff.decimals[band], tariff.bands[band]
    for i, (lo, hi) in enumerate(zip(tariff.lowers, tariff.uppers, strict=True)):
        if after <= lo:
            break
        if hi is not None and before >= hi:
            continue
        end = after if hi is None or after < hi else hi
        begin = before if before > lo else lo
        amount = divide(rates[i] * (end - lo), den, mode) - divide(
            rates[i] * (begin - lo), den, mode
        )
        total += amount
        lines.append(Line("usage", end - begin, amount, name, i + 1, decimals[i], tariff.per))
    return total, after - before, lines


def _affordable(tariff: TieredTariff, band: int, target: int, mode: int) -> int:
    """Largest billed total ``T`` with ``C_b(T) <= target`` (closed form, tier by tier)."""
    den = tariff.unit * SUB
    spent = 0
    for lo, hi, rate in zip(tariff.lowers, tariff.uppers, tariff.rates[band], strict=True):
        if hi is not None:
            full = divide(rate * (hi - lo), den, mode)
            if spent + full <= target:
                spent += full
                continue
        if not rate:
            return 1 << 62  # a free open tier: unlimited
        return lo + max_within(rate, den, target - spent, mode)
    raise AssertionError("the last tier is open-ended")  # guaranteed by schemas.tariff_checks


def grant_units(
    tariff: TieredTariff, start: int, cap: int, already: int, available: int, mode: int
) -> tuple[int, int, bool]:
    """``(units, cost, capped)``: the most units (<= ``cap``) after ``already`` whose price fits
    ``available``; one more increment would not fit unless ``capped``."""
    band = tariff.band_at(start)
    step = tariff.increment
    base = tariff.charged(already)
    paid = tariff.cumulative(band, base, mode)
    top = max(0, -(-(already + cap - base) // step))

    def cost(k: int) -> int:
        return tariff.cumulative(band, base + k * step, mode) - paid

    guess = (_affordable(tariff, band, paid + available, mode) - base) // step
    k = largest_fitting(cost, 0, top, available, guess)
    if k == top:
        return cap, cost(k), True
    return base + k * step - already, cost(k), False
