"""Charging: session_usage.priced_units (money-priced units per service, for per-call pricing).

Revision ID: charging_0002
Revises: policy_0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "charging_0002"
down_revision: str | None = "policy_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("session_usage") as batch_op:
        batch_op.add_column(
            sa.Column("priced_units", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("session_usage") as batch_op:
        batch_op.drop_column("priced_units")
