"""Time bands: which band (peak, off-peak, ...) applies at an instant, and where bands switch.

A band set is compiled into per-day-type intervals of local wall time (Monday..Sunday and
"holiday"). Pricing works on absolute epoch seconds: each local day is laid out once as absolute
intervals (so DST days are 23 or 25 hours long and a boundary at 20:00 local is exact), and the
intervals touching each UTC hour are cached, so the hot path does no timezone arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_SECOND = timedelta(seconds=1)
_ONE_DAY = timedelta(days=1)
_CACHE_LIMIT = 20_000  # cached hours (~2.3 years of distinct hours) before the cache restarts

Segment = tuple[int, int, int]  # (absolute start, absolute end, band index)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since 1970-01-01 UTC of an aware datetime (floored)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no timezone; pass an aware datetime")
    return (moment - EPOCH) // ONE_SECOND


def from_epoch(seconds: int, tz: ZoneInfo) -> datetime:
    """The aware local datetime of an epoch second."""
    return datetime.fromtimestamp(seconds, tz)


class Calendar:
    """A holiday calendar: fixed dates plus (month, day) pairs that recur every year."""

    __slots__ = ("_annual", "_dates")

    def __init__(self, entries: Iterable[date | str]) -> None:
        dates, annual = set(), set()
        for entry in entries:
            if isinstance(entry, date):
                dates.add(entry)
            else:
                month, day = entry.split("-")
                annual.add((int(month), int(day)))
        self._dates, self._annual = frozenset(dates), frozenset(annual)

    def __contains__(self, day: date) -> bool:
        return day in self._dates or (day.month, day.day) in self._annual


class Schedule:
    """A compiled band set in a timezone; band indexes refer to :attr:`names`."""

    __slots__ = ("_cache", "_days", "_holidays", "names", "tz")

    def __init__(
        self,
        names: tuple[str, ...],
        days: Mapping[int, Iterable[tuple[int, int, int]]],
        tz: ZoneInfo,
        holidays: Calendar | None,
    ) -> None:
        self.names = names
        self.tz = tz
        self._days = {d: tuple(sorted(iv)) for d, iv in days.items()}
        self._holidays = holidays
        self._cache: dict[int, tuple[Segment, ...]] = {}

    def _day_segments(self, day: date) -> list[Segment]:
        kind = 7 if self._holidays is not None and day in self._holidays else day.weekday()
        base = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        midnight = epoch_seconds(datetime.combine(day + _ONE_DAY, datetime.min.time(), self.tz))
        out: list[Segment] = []
        previous = epoch_seconds(base)
        for start, end, band in self._days[kind]:
            # Wall-clock arithmetic: boundaries are local times, so DST shifts them correctly.
            # A boundary inside a DST gap can map after the next one; keep them monotone.
            lo = max(previous, epoch_seconds(base + timedelta(seconds=start)))
            hi = midnight if end == 86400 else max(lo, epoch_seconds(base + timedelta(seconds=end)))
            if hi > lo:
                out.append((lo, hi, band))
            previous = hi
        return out

    def _hour(self, hour: int) -> tuple[Segment, ...]:
        cached = self._cache.get(hour)
        if cached is None:
            first = from_epoch(hour * 3600, self.tz).date()
            last = from_epoch(hour * 3600 + 3599, self.tz).date()
            days = [first] if first == last else [first, last]
            lo, hi = hour * 3600, hour * 3600 + 3600
            cached = tuple(
                s for d in days for s in self._day_segments(d) if s[0] < hi and s[1] > lo
            )
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[hour] = cached
        return cached

    def _segment_at(self, t: int) -> Segment:
        for segment in self._hour(t // 3600):
            if segment[0] <= t < segment[1]:
                return segment
        raise AssertionError(f"band set does not cover epoch {t}")  # prevented by validation

    def band_at(self, t: int) -> int:
        """Index of the band in force at epoch second ``t``."""
        return self._segment_at(t)[2]

    def segments(self, t0: int, t1: int) -> list[Segment]:
        """``[t0, t1)`` cut at band switches; adjacent pieces of one band are merged."""
        out: list[Segment] = []
        t = t0
        while t < t1:
            _, end, band = self._segment_at(t)
            end = min(end, t1)
            if out and out[-1][2] == band:
                out[-1] = (out[-1][0], end, band)
            else:
                out.append((t, end, band))
            t = end
        return out

    def next_switch(self, t: int, horizon: int) -> int | None:
        """First epoch second in ``(t, t + horizon)`` at which another band starts, if any."""
        pieces = self.segments(t, t + horizon)
        return pieces[1][0] if len(pieces) > 1 else None
