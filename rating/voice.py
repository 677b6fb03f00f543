"""Voice pricing: connect fee, per-minute rate by time band, first/next increments, minimum.

A call is priced *cumulatively*: ``C(n)`` is the price of a call's first ``n`` seconds — zero for
``n = 0``, else ``max(minimum, connect fee + Σ band lines)`` where the billed seconds
``charged(n)`` (rounded up to the increments) are laid on the timeline from the call's start and
cut at band switches, each band line rounded once to minor units. A chunk (a CCR-U's used
seconds) costs ``C(already + used) − C(already)``: the connect fee falls in the first chunk, and
pricing a call in any number of chunks sums exactly to pricing it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from rating.money import SUB, divide, max_within
from rating.result import Line
from rating.search import largest_fitting
from rating.timebands import Schedule

_PER_MINUTE = 60 * SUB


@dataclass(frozen=True, slots=True)
class VoiceTariff:
    """A compiled voice rate for one destination set; ``rates`` are sub-minor units per minute."""

    kind: ClassVar[str] = "voice"

    name: str
    connect: int
    minimum: int
    first: int
    next: int
    rates: tuple[int, ...]
    decimals: tuple[Decimal, ...]
    bands: tuple[str | None, ...]
    schedule: Schedule | None

    @property
    def key(self) -> str:
        """The destination set's name."""
        return self.name

    def charged(self, seconds: int) -> int:
        """Seconds billed for a call of ``seconds``: rounded up to the first/next increments."""
        if seconds <= 0:
            return 0
        first = self.first
        if seconds <= first:
            return first
        step = self.next
        return first + -(-(seconds - first) // step) * step

    def pieces(self, begin: int, end: int) -> list[tuple[int, int, int]]:
        """``[begin, end)`` cut at band switches."""
        if self.schedule is None:
            return [(begin, end, 0)]
        return self.schedule.segments(begin, end)

    def cumulative(self, call_start: int, billed: int, mode: int) -> int:
        """``C``: price of the first ``billed`` seconds (already on the increment grid)."""
        if billed <= 0:
            return 0
        rates = self.rates
        usage = 0
        for a, b, band in self.pieces(call_start, call_start + billed):
            usage += divide(rates[band] * (b - a), _PER_MINUTE, mode)
        return max(self.minimum, self.connect + usage)


def price_chunk(
    tariff: VoiceTariff, start: int, seconds: int, already: int, mode: int
) -> tuple[int, int, list[Line]]:
    """``(total, billed seconds, lines)`` for ``seconds`` used from epoch ``start`` after
    ``already`` seconds of the same call."""
    if seconds <= 0:
        return 0, 0, []
    call_start = start - already
    before = tariff.charged(already)
    after = tariff.charged(already + seconds)
    lines: list[Line] = []
    connect = tariff.connect
    if not already and connect:
        lines.append(Line("connect", 0, connect))
    usage_before = usage_after = 0
    if after > before:
        cut = call_start + before
        rates, decimals, bands = tariff.rates, tariff.decimals, tariff.bands
        for a, b, band in tariff.pieces(call_start, call_start + after):
            rate = rates[band]
            full = divide(rate * (b - a), _PER_MINUTE, mode)
            usage_after += full
            if cut >= b:
                usage_before += full
                continue
            part = divide(rate * (cut - a), _PER_MINUTE, mode) if cut > a else 0
            usage_before += part
            begins = cut if cut > a else a
            lines.append(
                Line(
                    "usage",
                    b - begins,
                    full - part,
                    bands[band],
                    None,
                    decimals[band],
                    "min",
                    begins,
                )
            )
    total = usage_after - usage_before + (0 if already else connect)
    minimum = tariff.minimum
    if minimum:
        top_after = max(0, minimum - connect - usage_after)
        top_before = max(0, minimum - connect - usage_before) if already else 0
        if top_after != top_before:
            lines.append(Line("minimum", 0, top_after - top_before))
            total += top_after - top_before
    return total, after - before, lines


def _affordable(tariff: VoiceTariff, call_start: int, limit: int, target: int, mode: int) -> int:
    """Largest call length ``T <= limit`` with ``C(T) <= target`` ignoring increments (closed
    form, band piece by band piece)."""
    spent = tariff.connect
    if max(spent, tariff.minimum) > target:
        return 0
    rates = tariff.rates
    for a, b, band in tariff.pieces(call_start, call_start + limit):
        rate = rates[band]
        full = divide(rate * (b - a), _PER_MINUTE, mode)
        if spent + full <= target:
            spent += full
        else:
            return a - call_start + max_within(rate, _PER_MINUTE, target - spent, mode)
    return limit


def grant_seconds(
    tariff: VoiceTariff, start: int, cap: int, already: int, available: int, mode: int
) -> tuple[int, int, bool]:
    """``(seconds, cost, capped)``: the most seconds (<= ``cap``) after ``already`` whose price
    fits ``available``; one more increment would not fit unless ``capped``."""
    call_start = start - already
    base = tariff.charged(already)
    first, step = tariff.first, tariff.next
    paid = tariff.cumulative(call_start, base, mode)

    def total(k: int) -> int:  # billed seconds after k more increments
        if base == 0:
            return 0 if k == 0 else first + (k - 1) * step
        return base + k * step

    limit = already + cap
    if base == 0:
        top = 0 if limit <= 0 else 1 + max(0, -(-(limit - first) // step))
    else:
        top = max(0, -(-(limit - base) // step))

    def cost(k: int) -> int:
        return tariff.cumulative(call_start, total(k), mode) - paid

    reach = _affordable(tariff, call_start, max(limit, base), paid + available, mode)
    if base == 0:
        guess = 0 if reach < first else (reach - first) // step + 1
    else:
        guess = (reach - base) // step
    k = largest_fitting(cost, 0, top, available, guess)
    if k == top:
        return cap, cost(k), True
    return total(k) - already, cost(k), False
