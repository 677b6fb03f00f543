"""Partial-record policy: when an intermediate CDR is due, and with which cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charging.cdr.partial import (
    PartialRecordPolicy,
    next_record_sequence_number,
    partial_record_due,
)
from schemas.cdr import CauseForRecordClosing

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_off_by_default() -> None:
    policy = PartialRecordPolicy()
    assert not policy.enabled
    due = partial_record_due(
        policy, record_opened_at=T0, now=T0 + timedelta(days=30), volume_octets=10**15
    )
    assert due is None


def test_interval_and_volume_limits() -> None:
    policy = PartialRecordPolicy(interval_seconds=3600, volume_octets=10_000_000)
    at = T0 + timedelta(seconds=3599)
    assert partial_record_due(policy, record_opened_at=T0, now=at, volume_octets=9_999_999) is None
    hour = T0 + timedelta(hours=1)
    assert partial_record_due(policy, record_opened_at=T0, now=hour) is (
        CauseForRecordClosing.TIME_LIMIT
    )
    assert partial_record_due(policy, record_opened_at=T0, now=T0, volume_octets=10_000_000) is (
        CauseForRecordClosing.VOLUME_LIMIT
    )
    # Both reached: the volume limit is reported.
    both = partial_record_due(policy, record_opened_at=T0, now=hour, volume_octets=10**9)
    assert both is CauseForRecordClosing.VOLUME_LIMIT


def test_sequence_numbers() -> None:
    assert next_record_sequence_number(None) == 1
    assert next_record_sequence_number(1) == 2


def test_rejects_negative_limits() -> None:
    with pytest.raises(ValueError):
        PartialRecordPolicy(interval_seconds=-1)


@settings(max_examples=150, deadline=None)
@given(
    interval=st.integers(0, 10**6),
    volume=st.integers(0, 10**12),
    elapsed=st.integers(0, 2 * 10**6),
    used=st.integers(0, 2 * 10**12),
)
def test_due_exactly_when_a_limit_is_reached(interval, volume, elapsed, used) -> None:
    policy = PartialRecordPolicy(interval, volume)
    cause = partial_record_due(
        policy, record_opened_at=T0, now=T0 + timedelta(seconds=elapsed), volume_octets=used
    )
    volume_hit = bool(volume) and used >= volume
    time_hit = bool(interval) and elapsed >= interval
    assert (cause is not None) == (volume_hit or time_hit)
    if cause is not None:
        assert cause.is_partial
        assert cause is (
            CauseForRecordClosing.VOLUME_LIMIT if volume_hit else CauseForRecordClosing.TIME_LIMIT
        )
