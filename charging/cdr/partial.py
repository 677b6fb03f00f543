"""When to close a partial record (TS 32.298 / TS 32.250 "partial record generation").

A long session is reported in several CDRs: an intermediate one is closed when the session has
been open ``interval_seconds`` since the previous record, or has used ``volume_octets`` since
then. The charging code asks :func:`partial_record_due` at each CCR-UPDATE and, when it answers a
cause, writes a record with that ``causeForRecordClosing`` and the next ``recordSequenceNumber``
(:func:`next_record_sequence_number`). Pure functions: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from schemas.cdr import CauseForRecordClosing
from schemas.settings import Settings


@dataclass(frozen=True, slots=True)
class PartialRecordPolicy:
    """Limits of one record; 0 disables a limit (both 0: one record per session)."""

    interval_seconds: int = 0
    volume_octets: int = 0

    def __post_init__(self) -> None:
        if self.interval_seconds < 0 or self.volume_octets < 0:
            raise ValueError("partial record limits must be >= 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> PartialRecordPolicy:
        return cls(settings.cdr_partial_interval_seconds, settings.cdr_partial_volume_octets)

    @property
    def enabled(self) -> bool:
        return bool(self.interval_seconds or self.volume_octets)


def partial_record_due(
    policy: PartialRecordPolicy,
    *,
    record_opened_at: datetime,
    now: datetime,
    volume_octets: int = 0,
) -> CauseForRecordClosing | None:
    """The cause to close the current record with now, or None to keep it open.

    ``record_opened_at``: opening time of the current record (session start, or the closure of
    the previous partial); ``volume_octets``: uplink + downlink used since then. When both limits
    are reached the volume limit is reported (it is the one the usage report crossed).
    """
    if volume_octets < 0:
        raise ValueError("volume_octets must be >= 0")
    if policy.volume_octets and volume_octets >= policy.volume_octets:
        return CauseForRecordClosing.VOLUME_LIMIT
    if policy.interval_seconds and (now - record_opened_at).total_seconds() >= (
        policy.interval_seconds
    ):
        return CauseForRecordClosing.TIME_LIMIT
    return None


def next_record_sequence_number(previous: int | None) -> int:
    """``recordSequenceNumber`` of the next record of a session: 1 for the first partial."""
    return 1 if previous is None else previous + 1
