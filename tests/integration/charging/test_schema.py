"""The migrations build exactly the tables charging/models.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import charging.models
from openpcc.database import create_engine, current_revision, upgrade


def test_upgrade_creates_the_declared_schema(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)  # idempotent
        assert current_revision(engine) is not None
        names = set(sa.inspect(engine).get_table_names())
        assert set(charging.models.metadata.tables) <= names
        with engine.connect() as connection:
            ours = set(charging.models.metadata.tables)

            def only_charging(name: str | None, kind: str, parent: dict[str, str]) -> bool:
                if kind == "schema":
                    return True
                table = name if kind == "table" else parent.get("table_name")
                return table in ours or table == "alembic_version"

            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": only_charging}
            )
            diff = compare_metadata(context, charging.models.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_sqlite_is_tuned_for_durability(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_outbox_rows_keep_export_order(database_url: str) -> None:
    engine = create_engine(database_url)
    upgrade(engine)
    outbox = charging.models.CdrOutbox.__table__
    try:
        with engine.begin() as connection:
            for n in range(3):
                connection.execute(
                    outbox.insert().values(
                        cdr_id=f"cdr-{n}",
                        partition_key="sub",
                        payload="{}",
                        created_at=charging.models.utcnow(),
                    )
                )
        with engine.connect() as connection:
            query = sa.select(outbox.c.cdr_id, outbox.c.attempts).order_by(outbox.c.id)
            rows = connection.execute(query).all()
        assert [r.cdr_id for r in rows] == ["cdr-0", "cdr-1", "cdr-2"]
        assert {r.attempts for r in rows} == {0}
    finally:
        engine.dispose()
