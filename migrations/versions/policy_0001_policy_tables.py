"""Policy tables: profiles, APN policies, allowances, time-of-day variants, subscribers, usage
counters, and the persisted Gx/Rx sessions (see policy/models.py).

Revision ID: policy_0001
Revises: charging_0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "policy_0001"
down_revision: str | None = "charging_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_profiles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_profiles")),
        sa.UniqueConstraint("name", name=op.f("uq_policy_profiles_name")),
    )
    op.create_table(
        "policy_apns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("apn", sa.String(length=100), nullable=False),
        sa.Column("qci", sa.Integer(), nullable=False),
        sa.Column("arp_priority", sa.Integer(), nullable=False),
        sa.Column("arp_preemption_capability", sa.Boolean(), nullable=False),
        sa.Column("arp_preemption_vulnerability", sa.Boolean(), nullable=False),
        sa.Column("ambr_ul", sa.BigInteger(), nullable=False),
        sa.Column("ambr_dl", sa.BigInteger(), nullable=False),
        sa.Column("predefined_rules", sa.JSON(), nullable=False),
        sa.Column("rule_bases", sa.JSON(), nullable=False),
        sa.Column("exhaustion_action", sa.String(length=16), nullable=False),
        sa.Column("exhaustion_ambr_ul", sa.BigInteger(), nullable=True),
        sa.Column("exhaustion_ambr_dl", sa.BigInteger(), nullable=True),
        sa.Column("redirect_rules", sa.JSON(), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["policy_profiles.id"],
            name=op.f("fk_policy_apns_profile_id_policy_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_apns")),
        sa.UniqueConstraint("profile_id", "apn", name=op.f("uq_policy_apns_profile_id_apn")),
    )
    with op.batch_alter_table("policy_apns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_policy_apns_profile_id"), ["profile_id"], unique=False)

    op.create_table(
        "policy_subscribers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("imsi", sa.String(length=15), nullable=True),
        sa.Column("msisdn", sa.String(length=32), nullable=True),
        sa.Column(
            "profile_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["policy_profiles.id"],
            name=op.f("fk_policy_subscribers_profile_id_policy_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_subscribers")),
        sa.UniqueConstraint("imsi", name=op.f("uq_policy_subscribers_imsi")),
        sa.UniqueConstraint("msisdn", name=op.f("uq_policy_subscribers_msisdn")),
    )
    with op.batch_alter_table("policy_subscribers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_subscribers_profile_id"), ["profile_id"], unique=False
        )

    op.create_table(
        "policy_allowances",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("apn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("monitoring_key", sa.String(length=64), nullable=False),
        sa.Column("octets", sa.BigInteger(), nullable=False),
        sa.Column("throttled_ambr_ul", sa.BigInteger(), nullable=False),
        sa.Column("throttled_ambr_dl", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["apn_id"],
            ["policy_apns.id"],
            name=op.f("fk_policy_allowances_apn_id_policy_apns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_allowances")),
        sa.UniqueConstraint(
            "apn_id", "monitoring_key", name=op.f("uq_policy_allowances_apn_id_monitoring_key")
        ),
    )
    op.create_table(
        "policy_gx_sessions",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column(
            "subscriber_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("apn", sa.String(length=100), nullable=False),
        sa.Column("ue_ipv4", sa.String(length=15), nullable=True),
        sa.Column("ue_ipv6_prefix", sa.String(length=64), nullable=True),
        sa.Column("pcef_host", sa.String(length=255), nullable=False),
        sa.Column("pcef_realm", sa.String(length=255), nullable=False),
        sa.Column("served_by", sa.String(length=255), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["policy_subscribers.id"],
            name=op.f("fk_policy_gx_sessions_subscriber_id_policy_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_policy_gx_sessions")),
    )
    with op.batch_alter_table("policy_gx_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_gx_sessions_subscriber_id"), ["subscriber_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_gx_sessions_ue_ipv4"), ["ue_ipv4"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_policy_gx_sessions_ue_ipv6_prefix"), ["ue_ipv6_prefix"], unique=False
        )

    op.create_table(
        "policy_time_variants",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("apn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("ambr_ul", sa.BigInteger(), nullable=False),
        sa.Column("ambr_dl", sa.BigInteger(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["apn_id"],
            ["policy_apns.id"],
            name=op.f("fk_policy_time_variants_apn_id_policy_apns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_time_variants")),
        sa.UniqueConstraint("apn_id", "name", name=op.f("uq_policy_time_variants_apn_id_name")),
    )
    op.create_table(
        "policy_usage",
        sa.Column(
            "subscriber_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("monitoring_key", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("octets", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["policy_subscribers.id"],
            name=op.f("fk_policy_usage_subscriber_id_policy_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subscriber_id", "monitoring_key", "period", name=op.f("pk_policy_usage")
        ),
    )
    op.create_table(
        "policy_rx_sessions",
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("gx_session_id", sa.String(length=255), nullable=False),
        sa.Column("af_host", sa.String(length=255), nullable=False),
        sa.Column("af_realm", sa.String(length=255), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["gx_session_id"],
            ["policy_gx_sessions.session_id"],
            name=op.f("fk_policy_rx_sessions_gx_session_id_policy_gx_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_policy_rx_sessions")),
    )
    with op.batch_alter_table("policy_rx_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_policy_rx_sessions_gx_session_id"), ["gx_session_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("policy_rx_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_rx_sessions_gx_session_id"))

    op.drop_table("policy_rx_sessions")
    op.drop_table("policy_usage")
    op.drop_table("policy_time_variants")
    with op.batch_alter_table("policy_gx_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_gx_sessions_ue_ipv6_prefix"))
        batch_op.drop_index(batch_op.f("ix_policy_gx_sessions_ue_ipv4"))
        batch_op.drop_index(batch_op.f("ix_policy_gx_sessions_subscriber_id"))

    op.drop_table("policy_gx_sessions")
    op.drop_table("policy_allowances")
    with op.batch_alter_table("policy_subscribers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_subscribers_profile_id"))

    op.drop_table("policy_subscribers")
    with op.batch_alter_table("policy_apns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_policy_apns_profile_id"))

    op.drop_table("policy_apns")
    op.drop_table("policy_profiles")
