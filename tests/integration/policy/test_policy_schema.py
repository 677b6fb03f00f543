"""policy_0001 builds exactly the tables policy/models.py declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import policy.models
from openpcc.database import create_engine, current_revision, upgrade


def test_policy_migration_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        upgrade(engine)
        assert current_revision(engine) is not None
        with engine.connect() as connection:
            ours = set(policy.models.metadata.tables)
            opts = {
                "compare_type": True,
                "include_name": lambda name, kind, _parent: kind != "table" or name in ours,
            }
            context = MigrationContext.configure(connection, opts=opts)
            diff = compare_metadata(context, policy.models.metadata)
        assert diff == []
    finally:
        engine.dispose()
