"""Binary array parameters (charging.pgarrays) read back by PostgreSQL as the values sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from charging import pgarrays
from openpcc.database import create_engine

pytestmark = pytest.mark.postgres

COLUMNS = {
    "n": (sa.BigInteger(), [1, None, -(2**63), 2**63 - 1, 0]),
    "t": (sa.String(255), ["a", None, "", "é–✓", "x" * 300]),
    "b": (sa.LargeBinary(), [b"\x00\xff", None, b""]),
    "f": (sa.Boolean(), [True, None, False]),
    "d": (
        sa.DateTime(timezone=True),
        [
            datetime(2026, 11, 25, 17, 0, 0, 123456, tzinfo=UTC),
            None,
            datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))),
        ],
    ),
    "j": (sa.JSON(), [{"a": [1, "b"]}, None, [1, 2]]),
}


def test_arrays_round_trip_every_type_with_nulls(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            pgarrays.register(raw)
            for name, (kind, values) in COLUMNS.items():
                codec = pgarrays.codec(sa.Column(name, kind))
                cast = "::JSON" if isinstance(kind, sa.JSON) else ""
                rows = raw.execute(
                    f"SELECT v{cast} FROM unnest(%b::{codec.sql_type}[]) WITH ORDINALITY"
                    " AS u(v, i) ORDER BY i",
                    (codec.array(values),),
                ).fetchall()
                assert [r[0] for r in rows] == values, name
    finally:
        engine.dispose()


def test_naive_datetimes_are_refused() -> None:
    codec = pgarrays.codec(sa.Column("d", sa.DateTime(timezone=True)))
    with pytest.raises(ValueError, match="naive"):
        codec.array([datetime(2026, 1, 1)])
