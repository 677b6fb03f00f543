"""Seed or update plans, accounts, balances and subscribers from a provisioning YAML file.

Idempotent (schemas/provisioning.py says what is matched and what is applied once). Everything
happens in one transaction; opening amounts are journalled with cause ``provision`` so the journal
always replays to the balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Engine

from charging import identities
from charging.ledger import Cause, Ledger
from charging.models import Account, Balance, Plan, Subscriber, SubscriberIdentity, utcnow
from schemas.provisioning import AccountSpec, PlanSpec, ProvisioningFile, SubscriberSpec

#: pg_advisory_xact_lock key serialising provisioning runs ("OPCCPROV").
PROVISIONING_LOCK = 0x4F50434350524F56

plans_t = Plan.__table__
accounts_t = Account.__table__
balances_t = Balance.__table__
subscribers_t = Subscriber.__table__
identities_t = SubscriberIdentity.__table__


@dataclass
class ProvisioningReport:
    """What applying a file changed."""

    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    #: Subscribers (ids) whose plan or status changed: live sessions must re-request quota.
    changed_subscribers: list[int] = field(default_factory=list)

    def _count(self, bucket: dict[str, int], kind: str) -> None:
        bucket[kind] = bucket.get(kind, 0) + 1


def load_file(path: str | Path) -> ProvisioningFile:
    """Parse and validate a provisioning YAML file."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return ProvisioningFile.model_validate(data)


def apply(
    engine: Engine, spec: ProvisioningFile, now: datetime | None = None
) -> ProvisioningReport:
    """Apply ``spec`` in one transaction."""
    now = now or utcnow()
    report = ProvisioningReport()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Nodes starting together apply the same file one after the other (transaction-
            # scoped advisory lock), so none fails on a row another has just inserted.
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PROVISIONING_LOCK)))
        ledger = Ledger(conn, now)
        plan_ids = {p.name: _upsert_plan(conn, p, report) for p in spec.plans}
        account_ids = {a.name: _upsert_account(conn, ledger, a, report) for a in spec.accounts}
        for sub in spec.subscribers:
            _upsert_subscriber(conn, sub, plan_ids[sub.plan], account_ids[sub.account], report, now)
        ledger.flush()
    return report


def apply_file(engine: Engine, path: str | Path) -> ProvisioningReport:
    return apply(engine, load_file(path))


def _upsert(
    conn: Connection,
    table: sa.Table,
    key: dict[str, Any],
    values: dict[str, Any],
    report: ProvisioningReport,
    kind: str,
) -> tuple[int, bool]:
    """Insert or update the row matching ``key``; returns (id, changed)."""
    where = [table.c[k] == v for k, v in key.items()]
    row = conn.execute(sa.select(table).where(*where)).mappings().first()
    if row is None:
        new_id = conn.execute(table.insert().values(**key, **values).returning(table.c.id))
        report._count(report.created, kind)
        return int(new_id.scalar_one()), True
    changes = {k: v for k, v in values.items() if row[k] != v}
    if changes:
        conn.execute(table.update().where(table.c.id == row["id"]).values(**changes))
        report._count(report.updated, kind)
    return int(row["id"]), bool(changes)


def _upsert_plan(conn: Connection, plan: PlanSpec, report: ProvisioningReport) -> int:
    values = {
        "tariff": plan.tariff,
        "final_unit_action": plan.final_unit_action.value,
        "redirect_address_type": plan.redirect_address_type and plan.redirect_address_type.value,
        "redirect_server": plan.redirect_server,
        "restriction_filter_rules": plan.restriction_filter_rules,
        "failure_handling": plan.failure_handling and plan.failure_handling.value,
    }
    plan_id, _ = _upsert(conn, plans_t, {"name": plan.name}, values, report, "plan")
    return plan_id


def _upsert_account(
    conn: Connection,
    ledger: Ledger,
    account: AccountSpec,
    report: ProvisioningReport,
) -> int:
    existing = conn.execute(
        sa.select(accounts_t.c.id, accounts_t.c.currency).where(accounts_t.c.name == account.name)
    ).first()
    if existing is not None and existing.currency != account.currency:
        raise ValueError(f"account {account.name}: currency cannot change once created")
    account_id, _ = _upsert(
        conn,
        accounts_t,
        {"name": account.name},
        {"currency": account.currency} if existing is None else {},
        report,
        "account",
    )
    for bal in account.balances:
        values = {
            "kind": bal.kind.value,
            "unit": bal.unit.value,
            "bundle": bal.bundle,
            "credit_limit": bal.credit_limit,
            "priority": bal.priority,
            "valid_from": bal.valid_from,
            "valid_until": bal.valid_until,
        }
        key = {"account_id": account_id, "name": bal.name}
        found = conn.execute(
            sa.select(balances_t.c.id).where(
                balances_t.c.account_id == account_id, balances_t.c.name == bal.name
            )
        ).scalar()
        balance_id, _ = _upsert(conn, balances_t, key, values, report, "balance")
        if found is None and bal.amount:
            ledger.credit(balance_id, bal.amount, Cause("provision", reference=account.name))
    return account_id


def _upsert_subscriber(
    conn: Connection,
    sub: SubscriberSpec,
    plan_id: int,
    account_id: int,
    report: ProvisioningReport,
    now: datetime,
) -> None:
    values = {"account_id": account_id, "plan_id": plan_id, "status": sub.status.value}
    subscriber_id, changed = _upsert(
        conn, subscribers_t, {"name": sub.name}, values, report, "subscriber"
    )
    if changed:
        conn.execute(
            subscribers_t.update().where(subscribers_t.c.id == subscriber_id).values(updated_at=now)
        )
        report.changed_subscribers.append(subscriber_id)
    wanted = {
        *((identities.IMSI, identities.normalise(identities.IMSI, v)) for v in sub.imsi),
        *((identities.MSISDN, identities.normalise(identities.MSISDN, v)) for v in sub.msisdn),
        *((identities.MSISDN, identities.normalise(identities.MSISDN, v)) for v in sub.tel_uris),
        *((identities.SIP_URI, identities.normalise(identities.SIP_URI, v)) for v in sub.sip_uris),
        *((identities.NAI, identities.normalise(identities.NAI, v)) for v in sub.nai),
    }
    have = {
        (row.kind, row.value): row.id
        for row in conn.execute(
            sa.select(identities_t.c.id, identities_t.c.kind, identities_t.c.value).where(
                identities_t.c.subscriber_id == subscriber_id
            )
        )
    }
    stale = [have[k] for k in have.keys() - wanted]
    if stale:
        conn.execute(identities_t.delete().where(identities_t.c.id.in_(stale)))
    for kind, value in sorted(wanted - have.keys()):
        owner = conn.execute(
            sa.select(identities_t.c.subscriber_id).where(
                identities_t.c.kind == kind, identities_t.c.value == value
            )
        ).scalar()
        if owner is not None:
            raise ValueError(f"identity {kind}:{value} already belongs to another subscriber")
        conn.execute(
            identities_t.insert().values(subscriber_id=subscriber_id, kind=kind, value=value)
        )
