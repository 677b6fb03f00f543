"""The api_0001 migration creates exactly the tables api/models.py declares, and chains after
the previous head so one upgrade gives every domain's tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from api.models import metadata
from openpcc.database import create_engine, current_revision, upgrade


def test_migration_matches_models(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    upgrade(engine)
    assert current_revision(engine) is not None
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diff if "api_" in repr(d) and d[0] != "remove_table"]
    assert ours == []
    engine.dispose()
