"""Exact integer money arithmetic for the hot path.

Rates are held as integers in *sub-minor* units: ``SUB`` per minor unit (micro-cents for EUR), so
``"0.005"`` EUR per MB is ``500_000``. A line's amount is ``rate × units / (unit size × SUB)``,
rounded once to minor units with the plan's rule — all in ``int``, never binary floating point.
"""

from __future__ import annotations

from decimal import Decimal

from schemas.tariff_checks import SUB_MINOR_DIGITS

SUB = 10**SUB_MINOR_DIGITS

UP, DOWN, HALF_UP, HALF_EVEN = 0, 1, 2, 3
ROUNDING = {"up": UP, "down": DOWN, "half_up": HALF_UP, "half_even": HALF_EVEN}


def scaled(amount: Decimal, exponent: int) -> int:
    """``amount`` (major units) as an exact int of sub-minor units; raises if it is finer."""
    value = amount.scaleb(exponent + SUB_MINOR_DIGITS)
    if value != value.to_integral_value():
        raise ValueError(f"{amount} is finer than the sub-minor precision")
    return int(value)


def divide(numerator: int, denominator: int, mode: int) -> int:
    """``numerator / denominator`` (both >= 0, denominator > 0) rounded by ``mode``."""
    q, r = divmod(numerator, denominator)
    if not r or mode == DOWN:
        return q
    if mode == UP:
        return q + 1
    twice = 2 * r
    if twice > denominator or (twice == denominator and (mode == HALF_UP or q & 1)):
        return q + 1
    return q


def max_within(rate: int, denominator: int, budget: int, mode: int) -> int:
    """Largest ``x >= 0`` with ``divide(rate * x, denominator, mode) <= budget`` (rate > 0,
    budget >= 0): the closed form behind reverse rating."""
    if mode == UP:
        return budget * denominator // rate
    if mode == DOWN:
        return ((budget + 1) * denominator - 1) // rate
    # Half-way rounding: rate*x/den must stay below budget + 1/2 (or equal it when half-even
    # rounds that tie down to an even budget).
    limit = (2 * budget + 1) * denominator
    x = (limit - 1) // (2 * rate)
    if mode == HALF_EVEN and budget % 2 == 0 and limit % (2 * rate) == 0:
        x = limit // (2 * rate)
    return x


def minor_to_decimal(amount: int, exponent: int) -> Decimal:
    """Minor units as a ``Decimal`` in major units (for display)."""
    return Decimal(amount).scaleb(-exponent)
