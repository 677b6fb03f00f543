"""Charging: no foreign-key checks on the ledger's hot insert tables.

``balance_journal`` (balance_id, account_id) and ``reservations`` (balance_id, ro_session_id) get
several rows per CCR, and each foreign key costs PostgreSQL a referential-integrity trigger (a
``SELECT … FOR KEY SHARE`` of the referenced row) per row: about 5 per CCR, ~35 µs of database
CPU. Their rows are written only by the ledger, inside the transaction that holds the
referenced balance's row lock (and updates it) or opened the session, and no code path deletes
balances, accounts or sessions; ``openpcc ledger verify`` checks that every journal row and
reservation points at an existing balance of the right account and at an open session.

Revision ID: charging_0004
Revises: api_0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "charging_0004"
down_revision: str | None = "api_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, referenced table) of the foreign keys dropped here.
_KEYS = (
    ("balance_journal", "balance_id", "balances"),
    ("balance_journal", "account_id", "accounts"),
    ("reservations", "balance_id", "balances"),
    ("reservations", "ro_session_id", "ro_sessions"),
)


def upgrade() -> None:
    for table in ("balance_journal", "reservations"):
        with op.batch_alter_table(table) as batch:
            for name, column, referenced in _KEYS:
                if name == table:
                    batch.drop_constraint(f"fk_{table}_{column}_{referenced}", type_="foreignkey")


def downgrade() -> None:
    for table in ("balance_journal", "reservations"):
        with op.batch_alter_table(table) as batch:
            for name, column, referenced in _KEYS:
                if name == table:
                    batch.create_foreign_key(
                        f"fk_{table}_{column}_{referenced}", referenced, [column], ["id"]
                    )
