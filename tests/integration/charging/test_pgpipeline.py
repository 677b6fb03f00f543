"""Statements run through libpq's pipeline mode (charging.pgpipeline) on a real PostgreSQL:
the rows psycopg would return, in the connection's transaction, committed in the same round
trip, and errors raised as psycopg's own with the transaction left to roll back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.engine import Engine

from charging import pgpipeline
from openpcc.database import create_engine

pytestmark = pytest.mark.postgres

READ = pgpipeline.statement(
    "SELECT id, name, at FROM pipe_t WHERE id = ANY(%(ids)s::BIGINT[]) "
    "AND name = ANY(%(names)s::VARCHAR(20)[]) AND at < %(before)s ORDER BY id"
)
INSERT = pgpipeline.statement("INSERT INTO pipe_t (id, name, at) VALUES (%s, %s, %s) RETURNING id")
COUNT = pgpipeline.statement("SELECT count(*) FROM pipe_t")
AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS pipe_t")
        conn.exec_driver_sql(
            "CREATE TABLE pipe_t (id BIGINT PRIMARY KEY, name VARCHAR(20), at TIMESTAMPTZ)"
        )
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pipe_t")
    engine.dispose()


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM pipe_t").scalar_one())


def test_rows_come_back_as_psycopg_returns_them(engine: Engine) -> None:
    with engine.connect() as conn:
        inserted = pgpipeline.run(
            conn,
            [(INSERT, (1, "a", AT)), (INSERT, (2, "é✓", AT)), (INSERT, (3, None, AT))],
        )
        assert inserted == [[(1,)], [(2,)], [(3,)]]
        ids = {"ids": [1, 2, 3, 4], "names": ["a", "é✓"], "before": datetime.now(UTC)}
        (rows,) = pgpipeline.run(conn, [(READ, ids)])
        assert rows == [(1, "a", AT), (2, "é✓", AT)]
        assert pgpipeline.run(conn, [(READ, {**ids, "ids": []})]) == [[]]
        conn.rollback()


def test_statements_run_in_the_transaction_and_commit_in_the_same_round_trip(
    engine: Engine,
) -> None:
    with engine.connect() as conn:
        pgpipeline.run(conn, [(INSERT, (1, "a", AT))])
        assert count(engine) == 0  # not committed: the run opened a transaction
        conn.rollback()
        assert count(engine) == 0
        pgpipeline.run(conn, [(INSERT, (2, "b", AT))], commit=True)
        assert count(engine) == 1
        raw = conn.connection.driver_connection
        assert raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
        conn.commit()  # SQLAlchemy's own commit finds nothing left to do


def test_an_error_is_psycopgs_and_leaves_the_transaction_to_roll_back(engine: Engine) -> None:
    with engine.connect() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            pgpipeline.run(
                conn,
                [(INSERT, (1, "a", AT)), (INSERT, (1, "again", AT)), (INSERT, (2, "b", AT))],
                commit=True,
            )
        raw = conn.connection.driver_connection
        assert raw.pgconn.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert count(engine) == 0  # nothing of it committed, the COMMIT included
        assert pgpipeline.run(conn, [(INSERT, (5, "e", AT))], commit=True) == [[(5,)]]
        assert count(engine) == 1


def test_statements_lost_to_deallocate_all_are_prepared_again(engine: Engine) -> None:
    with engine.connect() as conn:
        pgpipeline.run(conn, [(INSERT, (1, "a", AT))], commit=True)
        conn.commit()
        # What psycopg sends on its own after running a DROP, ALTER, ROLLBACK…
        conn.exec_driver_sql("DEALLOCATE ALL")
        conn.commit()
        # First in its transaction: rolled back and run again, transparently (the statement
        # prepared on the way, before the lost one failed, is prepared again too).
        calls = [(COUNT, ()), (INSERT, (2, "b", AT))]
        assert pgpipeline.run(conn, calls, commit=True) == [[(1,)], [(2,)]]
        conn.commit()
        pgpipeline.run(conn, [(INSERT, (3, "c", AT))])
        conn.exec_driver_sql("DEALLOCATE ALL")
        with pytest.raises(pgpipeline.StatementsLost):  # after other work: the caller re-runs
            pgpipeline.run(conn, [(INSERT, (4, "d", AT))])
        conn.rollback()
        assert count(engine) == 2
        conn.exec_driver_sql("DEALLOCATE ALL")
        conn.commit()
        pgpipeline.forget_prepared(conn)  # told: prepared again without a failed round trip
        assert pgpipeline.run(conn, [(INSERT, (5, "e", AT))], commit=True) == [[(5,)]]
        assert count(engine) == 3


def test_a_parameter_type_without_encoder_is_refused(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(TypeError, match="OID 700"):
        pgpipeline.run(conn, [(pgpipeline.statement("SELECT %s::REAL"), (1.5,))])


def test_named_and_positional_parameters_do_not_mix() -> None:
    with pytest.raises(ValueError, match="mixed"):
        pgpipeline.statement("SELECT %(a)s, %s")
