"""Fixtures of the CDR pipeline tests: CDRs, a migrated outbox, enqueueing rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from charging.models import CdrOutbox
from openpcc.database import create_engine, upgrade
from schemas.cdr import ChargingDataRecord, make_cdr_id

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def build_cdr(n: int, subscribers: int = 50, node: str = "ocs-test") -> ChargingDataRecord:
    """The n-th CDR of a synthetic load: a 1..300 s call by one of ``subscribers``."""
    msisdn = f"49171{n % subscribers:07d}"
    session = f"scscf.ims.example;{n};call"
    seconds = 1 + n % 300
    charge = seconds * 2
    return ChargingDataRecord.model_validate(
        {
            "cdrId": make_cdr_id(node, session),
            "recordType": "sCSCFRecord",
            "servedSubscriptionIds": [
                {"subscriptionIDType": "END_USER_E164", "subscriptionIDData": msisdn}
            ],
            "sessionId": session,
            "iMS-Charging-Identifier": f"icid-{n}",
            "callingPartyAddress": f"sip:+{msisdn}@ims.example",
            "calledPartyAddress": "tel:+4930123456",
            "recordOpeningTime": T0 + timedelta(seconds=n),
            "recordClosureTime": T0 + timedelta(seconds=n + seconds),
            "duration": seconds,
            "causeForRecordClosing": "normalRelease",
            "listOfServiceData": [{"ratingGroup": 100, "timeUsage": seconds, "charge": charge}],
            "charge": charge,
            "currency": "EUR",
            "tariffId": "voice-de",
            "tariffVersion": "1",
            "nodeId": node,
            "localRecordSequenceNumber": n,
        }
    )


def enqueue(
    engine: Engine, records: Sequence[ChargingDataRecord], at: datetime | None = None
) -> None:
    """Write outbox rows as charging does (one row per CDR, JSON by alias)."""
    now = at or datetime.now(UTC)
    rows = [
        {
            "cdr_id": r.cdr_id,
            "partition_key": r.partition_key,
            "payload": r.model_dump_json(),
            "created_at": now,
        }
        for r in records
    ]
    with engine.begin() as connection:
        connection.execute(CdrOutbox.__table__.insert(), rows)


@pytest.fixture
def cdr_factory() -> Callable[..., ChargingDataRecord]:
    return build_cdr


@pytest.fixture
def enqueue_cdrs() -> Callable[..., None]:
    return enqueue


@pytest.fixture
def outbox_engine(database_url: str) -> Iterator[Engine]:
    """A migrated database (SQLite, then PostgreSQL) for outbox tests."""
    engine = create_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL database."""
    engine = create_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()
