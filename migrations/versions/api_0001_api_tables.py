"""API: api_keys (hashed bearer keys), api_audit (audit log of writes), api_tariffs (uploads).

Revision ID: api_0001
Revises: charging_0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "api_0001"
down_revision: str | None = "charging_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("revoked_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.UniqueConstraint("key_sha256", name="uq_api_keys_key_sha256"),
    )
    op.create_table(
        "api_audit",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("at", Time, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_audit"),
    )
    op.create_index("ix_api_audit_resource_id", "api_audit", ["resource", "id"])
    op.create_table(
        "api_tariffs",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("uploaded_at", Time, nullable=False),
        sa.Column("activate_at", Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tariffs"),
    )
    op.create_index("ix_api_tariffs_name_activate_at", "api_tariffs", ["name", "activate_at"])


def downgrade() -> None:
    op.drop_index("ix_api_tariffs_name_activate_at", table_name="api_tariffs")
    op.drop_table("api_tariffs")
    op.drop_index("ix_api_audit_resource_id", table_name="api_audit")
    op.drop_table("api_audit")
    op.drop_table("api_keys")
