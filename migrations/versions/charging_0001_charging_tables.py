"""Charging tables: subscribers, accounts, balances, plans, journal, Ro sessions, reservations,
CCR outcomes and the CDR outbox (see charging/models.py).

Revision ID: charging_0001
Revises: (none)
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "charging_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_accounts_name")),
    )
    op.create_table(
        "ccr_outcomes",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("request_number", sa.BigInteger(), nullable=False),
        sa.Column("request_type", sa.Integer(), nullable=False),
        sa.Column("result_code", sa.Integer(), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id", "request_number", name=op.f("pk_ccr_outcomes")),
    )
    op.create_table(
        "cdr_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("cdr_id", sa.String(length=64), nullable=False),
        sa.Column("partition_key", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdr_outbox")),
        sa.UniqueConstraint("cdr_id", name=op.f("uq_cdr_outbox_cdr_id")),
    )
    with op.batch_alter_table("cdr_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cdr_outbox_sent_at_id"), ["sent_at", "id"], unique=False
        )

    op.create_table(
        "plans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tariff", sa.String(length=64), nullable=False),
        sa.Column("final_unit_action", sa.String(length=24), nullable=False),
        sa.Column("redirect_address_type", sa.String(length=16), nullable=True),
        sa.Column("redirect_server", sa.String(length=255), nullable=True),
        sa.Column("restriction_filter_rules", sa.JSON(), nullable=True),
        sa.Column("failure_handling", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_plans_name")),
    )
    op.create_table(
        "balances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("bundle", sa.String(length=64), nullable=True),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reserved", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("credit_limit >= 0", name=op.f("ck_balances_credit_limit_non_negative")),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_balances_reserved_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_balances_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balances")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_balances_account_id_name")),
    )
    with op.batch_alter_table("balances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_balances_account_id"), ["account_id"], unique=False)

    op.create_table(
        "subscribers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("plan_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_subscribers_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_subscribers_plan_id_plans")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("name", name=op.f("uq_subscribers_name")),
    )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscribers_account_id"), ["account_id"], unique=False)

    op.create_table(
        "balance_journal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "balance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("delta_amount", sa.BigInteger(), nullable=False),
        sa.Column("delta_reserved", sa.BigInteger(), nullable=False),
        sa.Column("amount_after", sa.BigInteger(), nullable=False),
        sa.Column("reserved_after", sa.BigInteger(), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=True),
        sa.Column("request_number", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_balance_journal_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["balance_id"], ["balances.id"], name=op.f("fk_balance_journal_balance_id_balances")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_journal")),
    )
    with op.batch_alter_table("balance_journal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_balance_journal_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_balance_journal_balance_id_id"), ["balance_id", "id"], unique=False
        )

    op.create_table(
        "ro_sessions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column(
            "subscriber_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("charging_type", sa.String(length=8), nullable=False),
        sa.Column("last_request_number", sa.BigInteger(), nullable=False),
        sa.Column("origin_host", sa.String(length=255), nullable=False),
        sa.Column("origin_realm", sa.String(length=255), nullable=False),
        sa.Column("service_context_id", sa.String(length=255), nullable=True),
        sa.Column("subscription_id", sa.String(length=255), nullable=True),
        sa.Column("service_information", sa.JSON(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("close_cause", sa.String(length=32), nullable=True),
        sa.Column("cdr_sequence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ro_sessions_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_ro_sessions_subscriber_id_subscribers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ro_sessions")),
        sa.UniqueConstraint("session_id", name=op.f("uq_ro_sessions_session_id")),
    )
    with op.batch_alter_table("ro_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ro_sessions_state_expires_at"), ["state", "expires_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ro_sessions_subscriber_id"), ["subscriber_id"], unique=False
        )

    op.create_table(
        "subscriber_identities",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "subscriber_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_identities_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_identities")),
        sa.UniqueConstraint("kind", "value", name=op.f("uq_subscriber_identities_kind_value")),
    )
    with op.batch_alter_table("subscriber_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscriber_identities_subscriber_id"), ["subscriber_id"], unique=False
        )

    op.create_table(
        "reservations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ro_session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column(
            "balance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("granted_units", sa.BigInteger(), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_reservations_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["balance_id"], ["balances.id"], name=op.f("fk_reservations_balance_id_balances")
        ),
        sa.ForeignKeyConstraint(
            ["ro_session_id"],
            ["ro_sessions.id"],
            name=op.f("fk_reservations_ro_session_id_ro_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reservations_balance_id"), ["balance_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reservations_ro_session_id_service_key"),
            ["ro_session_id", "service_key"],
            unique=False,
        )

    op.create_table(
        "session_usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "ro_session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("rating_group", sa.BigInteger(), nullable=True),
        sa.Column("service_id", sa.BigInteger(), nullable=True),
        sa.Column("time_usage", sa.BigInteger(), nullable=False),
        sa.Column("volume_uplink", sa.BigInteger(), nullable=False),
        sa.Column("volume_downlink", sa.BigInteger(), nullable=False),
        sa.Column("service_units", sa.BigInteger(), nullable=False),
        sa.Column("charge", sa.BigInteger(), nullable=False),
        sa.Column("first_usage_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_usage_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["ro_session_id"],
            ["ro_sessions.id"],
            name=op.f("fk_session_usage_ro_session_id_ro_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_usage")),
        sa.UniqueConstraint(
            "ro_session_id", "service_key", name=op.f("uq_session_usage_ro_session_id_service_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("session_usage")
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reservations_ro_session_id_service_key"))
        batch_op.drop_index(batch_op.f("ix_reservations_balance_id"))

    op.drop_table("reservations")
    with op.batch_alter_table("subscriber_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriber_identities_subscriber_id"))

    op.drop_table("subscriber_identities")
    with op.batch_alter_table("ro_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ro_sessions_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_ro_sessions_state_expires_at"))

    op.drop_table("ro_sessions")
    with op.batch_alter_table("balance_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balance_journal_balance_id_id"))
        batch_op.drop_index(batch_op.f("ix_balance_journal_account_id"))

    op.drop_table("balance_journal")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscribers_account_id"))

    op.drop_table("subscribers")
    with op.batch_alter_table("balances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balances_account_id"))

    op.drop_table("balances")
    op.drop_table("plans")
    with op.batch_alter_table("cdr_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cdr_outbox_sent_at_id"))

    op.drop_table("cdr_outbox")
    op.drop_table("ccr_outcomes")
    op.drop_table("accounts")
