"""Read side of the policy data: subscriber → profile → APN policy, and fair-use counters.

Profiles are few and change rarely: they are cached as :class:`~policy.decision.ApnPolicy` values
and reloaded with :meth:`PolicyCatalog.reload` (after provisioning). Subscribers are many: looked up
in the database per IP-CAN session establishment.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from policy.decision import (
    Ambr,
    ApnPolicy,
    ExhaustionAction,
    TimeVariant,
    UsageAllowance,
)
from policy.models import PolicyApn, PolicyProfile, PolicySubscriber, PolicyUsage
from policy.qos import Arp
from policy.store import GroupCommitWriter

USAGE = PolicyUsage.__table__
SUBSCRIBER_CACHE = 100_000


@dataclass(frozen=True, slots=True)
class Subscriber:
    id: int
    imsi: str | None
    msisdn: str | None
    profile: str


class PolicyCatalog:
    def __init__(self, engine: Engine, writer: GroupCommitWriter) -> None:
        self.engine = engine
        self.writer = writer
        self._profiles: dict[str, dict[str, ApnPolicy]] = {}
        self._subscribers: dict[tuple[str | None, str | None], Subscriber] = {}

    async def reload(self) -> None:
        """Re-read profiles and forget cached subscribers (after provisioning)."""
        self._profiles = await asyncio.to_thread(self._load_profiles)
        self._subscribers.clear()

    def _load_profiles(self) -> dict[str, dict[str, ApnPolicy]]:
        with Session(self.engine) as session:
            profiles = session.scalars(sa.select(PolicyProfile)).all()
            return {p.name: {a.apn.lower(): _apn_policy(a) for a in p.apns} for p in profiles}

    def apn_policy(self, profile: str, apn: str) -> ApnPolicy | None:
        """The profile's policy for ``apn``, else its "*" policy."""
        apns = self._profiles.get(profile, {})
        return apns.get(apn.lower()) or apns.get("*")

    async def subscriber(self, imsi: str | None, msisdn: str | None) -> Subscriber | None:
        """Find by IMSI first, then MSISDN (digits only: a tel: or + prefix is dropped); found
        subscribers are cached until :meth:`reload`."""
        key = (imsi, msisdn)
        cached = self._subscribers.get(key)
        if cached is not None:
            return cached

        def read() -> Subscriber | None:
            with Session(self.engine) as session:
                for column, value in (
                    (PolicySubscriber.imsi, imsi),
                    (PolicySubscriber.msisdn, normalise_msisdn(msisdn)),
                ):
                    if not value:
                        continue
                    sub = session.scalars(
                        sa.select(PolicySubscriber).where(column == value)
                    ).first()
                    if sub is not None:
                        return Subscriber(sub.id, sub.imsi, sub.msisdn, sub.profile.name)
            return None

        found = await asyncio.to_thread(read)
        if found is not None:
            if len(self._subscribers) >= SUBSCRIBER_CACHE:
                self._subscribers.clear()
            self._subscribers[key] = found
        return found

    async def used(self, policy: ApnPolicy, subscriber_id: int, now: datetime) -> dict[str, int]:
        """Octets used per monitoring key in the current period (none read when the policy has
        no fair-use allowance)."""
        if not policy.allowances:
            return {}

        def read() -> dict[str, int]:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(USAGE.c.monitoring_key, USAGE.c.octets).where(
                        USAGE.c.subscriber_id == subscriber_id, USAGE.c.period == period(now)
                    )
                )
                return {key: octets for key, octets in rows}

        return await asyncio.to_thread(read)

    async def add_usage(self, subscriber_id: int, used: dict[str, int], now: datetime) -> None:
        """Add reported octets to the period's counters, durably (group commit)."""
        month = period(now)

        def write(conn: Connection) -> None:
            stmt = usage_upsert(conn.dialect.name)
            for key, octets in used.items():
                values = {"subscriber_id": subscriber_id, "monitoring_key": key}
                conn.execute(stmt, {**values, "period": month, "octets": octets})

        if used:
            await self.writer.run(write)


@functools.cache
def usage_upsert(dialect: str) -> Any:
    """Add to the counter, creating it at the first report (one statement)."""
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect](USAGE)
    keys = [USAGE.c.subscriber_id, USAGE.c.monitoring_key, USAGE.c.period]
    return insert.on_conflict_do_update(
        index_elements=keys, set_={"octets": USAGE.c.octets + insert.excluded.octets}
    )


def period(now: datetime) -> str:
    """The fair-use period: the calendar month of the policy's local time."""
    return f"{now.year:04d}-{now.month:02d}"


def normalise_msisdn(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    for prefix in ("tel:", "sip:"):
        if value.lower().startswith(prefix):
            value = value[len(prefix) :]
    value = value.split("@", 1)[0].split(";", 1)[0]
    return value.lstrip("+") or None


def _apn_policy(row: PolicyApn) -> ApnPolicy:
    exhaustion_ambr = None
    if row.exhaustion_ambr_ul is not None and row.exhaustion_ambr_dl is not None:
        exhaustion_ambr = Ambr(row.exhaustion_ambr_ul, row.exhaustion_ambr_dl)
    return ApnPolicy(
        apn=row.apn,
        qci=row.qci,
        arp=Arp(row.arp_priority, row.arp_preemption_capability, row.arp_preemption_vulnerability),
        ambr=Ambr(row.ambr_ul, row.ambr_dl),
        predefined_rules=frozenset(row.predefined_rules),
        rule_bases=frozenset(row.rule_bases),
        allowances=tuple(
            UsageAllowance(
                a.monitoring_key, a.octets, Ambr(a.throttled_ambr_ul, a.throttled_ambr_dl)
            )
            for a in row.allowances
        ),
        time_variants=tuple(
            TimeVariant(
                v.name,
                v.start,
                v.end,
                Ambr(v.ambr_ul, v.ambr_dl),
                frozenset(v.weekdays),
                frozenset(v.rules),
            )
            for v in row.time_variants
        ),
        exhaustion_action=ExhaustionAction(row.exhaustion_action),
        exhaustion_ambr=exhaustion_ambr,
        redirect_rules=frozenset(row.redirect_rules),
        online=row.online,
        offline=row.offline,
    )
