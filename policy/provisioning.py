"""The ``policy:`` section of the provisioning YAML file: profiles with per-APN policy, and which
profile each subscriber (IMSI and/or MSISDN) gets. Applying is idempotent: profiles are matched by
name (their APN policies replaced), subscribers by IMSI, else MSISDN.

    policy:
      profiles:
        - name: volte
          apns:
            - apn: internet
              qci: 9
              arp: {priority: 8}
              ambr: {ul: 50000000, dl: 100000000}
              allowances: [{monitoring_key: fair-use, octets: 10000000000,
                            throttled: {ul: 1000000, dl: 1000000}}]
              time_variants: [{name: night, start: "23:00", end: "06:00",
                               ambr: {ul: 2000000, dl: 4000000}}]
              on_credit_exhausted: {action: throttle, ambr: {ul: 64000, dl: 64000}}
            - {apn: ims, qci: 5, arp: {priority: 1}, ambr: {ul: 256000, dl: 256000}}
      subscribers:
        - {imsi: "001010000000001", msisdn: "491700000001", profile: volte}
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from policy.decision import ExhaustionAction
from policy.models import (
    PolicyAllowance,
    PolicyApn,
    PolicyProfile,
    PolicySubscriber,
    PolicyTimeVariant,
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmbrSpec(_Model):
    ul: int = Field(ge=0, description="bit/s")
    dl: int = Field(ge=0, description="bit/s")


class ArpSpec(_Model):
    priority: int = Field(ge=1, le=15)
    preemption_capability: bool = False
    preemption_vulnerability: bool = True


class AllowanceSpec(_Model):
    monitoring_key: str = Field(min_length=1, max_length=64)
    octets: int = Field(gt=0, description="per calendar month")
    throttled: AmbrSpec


class TimeVariantSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    start: time
    end: time
    weekdays: list[int] = Field(default_factory=lambda: list(range(7)))
    ambr: AmbrSpec
    rules: list[str] = Field(default_factory=list)


class ExhaustionSpec(_Model):
    action: ExhaustionAction = ExhaustionAction.NONE
    ambr: AmbrSpec | None = None
    redirect_rules: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ExhaustionSpec:
        if self.action is ExhaustionAction.THROTTLE and self.ambr is None:
            raise ValueError("throttle needs ambr")
        if self.action is ExhaustionAction.REDIRECT and not self.redirect_rules:
            raise ValueError("redirect needs redirect_rules (predefined rule names)")
        return self


class ApnSpec(_Model):
    apn: str = Field(min_length=1, max_length=100, description='"*" = any other APN')
    qci: int = Field(ge=1, le=254)
    arp: ArpSpec
    ambr: AmbrSpec
    predefined_rules: list[str] = Field(default_factory=list)
    rule_bases: list[str] = Field(default_factory=list)
    allowances: list[AllowanceSpec] = Field(default_factory=list)
    time_variants: list[TimeVariantSpec] = Field(default_factory=list)
    on_credit_exhausted: ExhaustionSpec = ExhaustionSpec()
    online: bool = False
    offline: bool = True


class ProfileSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    apns: list[ApnSpec]


class PolicySubscriberSpec(_Model):
    imsi: str | None = Field(default=None, pattern=r"^\d{5,15}$")
    msisdn: str | None = Field(default=None, pattern=r"^\d{3,32}$")
    profile: str

    @model_validator(mode="after")
    def _identified(self) -> PolicySubscriberSpec:
        if not (self.imsi or self.msisdn):
            raise ValueError("a policy subscriber needs an imsi or an msisdn")
        return self


class PolicyProvisioning(_Model):
    profiles: list[ProfileSpec] = Field(default_factory=list)
    subscribers: list[PolicySubscriberSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> PolicyProvisioning:
        names = [p.name for p in self.profiles]
        if len(names) != len(set(names)):
            raise ValueError("duplicate profile names")
        for sub in self.subscribers:
            if sub.profile not in names:
                raise ValueError(f"subscriber {sub.imsi or sub.msisdn}: unknown profile")
        return self


def load(path: str | Path) -> PolicyProvisioning:
    """The ``policy:`` section of the file (empty when absent)."""
    data: dict[str, Any] = yaml.safe_load(Path(path).read_text()) or {}
    return PolicyProvisioning.model_validate(data.get("policy") or {})


def apply(engine: Engine, spec: PolicyProvisioning) -> None:
    """Create or update profiles and subscribers (idempotent), in one transaction."""
    with Session(engine) as session, session.begin():
        profiles = {}
        for p in spec.profiles:
            profile = session.scalars(
                sa.select(PolicyProfile).where(PolicyProfile.name == p.name)
            ).first()
            if profile is None:
                profile = PolicyProfile(name=p.name)
                session.add(profile)
            profile.description = p.description
            profile.apns.clear()
            session.flush()
            profile.apns.extend(_apn(a) for a in p.apns)
            profiles[p.name] = profile
        session.flush()
        for s in spec.subscribers:
            sub = None
            if s.imsi:
                sub = session.scalars(
                    sa.select(PolicySubscriber).where(PolicySubscriber.imsi == s.imsi)
                ).first()
            if sub is None and s.msisdn:
                sub = session.scalars(
                    sa.select(PolicySubscriber).where(PolicySubscriber.msisdn == s.msisdn)
                ).first()
            if sub is None:
                sub = PolicySubscriber()
                session.add(sub)
            sub.imsi, sub.msisdn, sub.profile_id = s.imsi, s.msisdn, profiles[s.profile].id


def _apn(a: ApnSpec) -> PolicyApn:
    x = a.on_credit_exhausted
    return PolicyApn(
        apn=a.apn,
        qci=a.qci,
        arp_priority=a.arp.priority,
        arp_preemption_capability=a.arp.preemption_capability,
        arp_preemption_vulnerability=a.arp.preemption_vulnerability,
        ambr_ul=a.ambr.ul,
        ambr_dl=a.ambr.dl,
        predefined_rules=list(a.predefined_rules),
        rule_bases=list(a.rule_bases),
        exhaustion_action=x.action.value,
        exhaustion_ambr_ul=x.ambr.ul if x.ambr else None,
        exhaustion_ambr_dl=x.ambr.dl if x.ambr else None,
        redirect_rules=list(x.redirect_rules),
        online=a.online,
        offline=a.offline,
        allowances=[
            PolicyAllowance(
                monitoring_key=al.monitoring_key,
                octets=al.octets,
                throttled_ambr_ul=al.throttled.ul,
                throttled_ambr_dl=al.throttled.dl,
            )
            for al in a.allowances
        ],
        time_variants=[
            PolicyTimeVariant(
                name=v.name,
                start=v.start,
                end=v.end,
                weekdays=list(v.weekdays),
                ambr_ul=v.ambr.ul,
                ambr_dl=v.ambr.dl,
                rules=list(v.rules),
            )
            for v in a.time_variants
        ],
    )


def profile_of(conn: sa.Connection, imsi: str | None, msisdn: str | None) -> str | None:
    """The profile name of the policy subscriber with this IMSI (else MSISDN), or None."""
    subs, profiles = PolicySubscriber.__table__, PolicyProfile.__table__
    for column, value in ((subs.c.imsi, imsi), (subs.c.msisdn, msisdn)):
        if value:
            name = conn.execute(
                sa.select(profiles.c.name)
                .join(subs, subs.c.profile_id == profiles.c.id)
                .where(column == value)
            ).scalar()
            if name is not None:
                return str(name)
    return None


def assign_profile(
    conn: sa.Connection, imsi: str | None, msisdn: str | None, profile: str | None
) -> None:
    """Give the subscriber (IMSI and/or MSISDN, digits) ``profile``; None removes it from the
    policy view. Call ``Pcrf.reload_policies`` afterwards so cached subscribers are re-read."""
    subs, profiles = PolicySubscriber.__table__, PolicyProfile.__table__
    match = sa.or_(
        *([subs.c.imsi == imsi] if imsi else []), *([subs.c.msisdn == msisdn] if msisdn else [])
    )
    if not (imsi or msisdn):
        raise ValueError("a policy subscriber needs an imsi or an msisdn")
    if profile is None:
        conn.execute(subs.delete().where(match))
        return
    profile_id = conn.execute(sa.select(profiles.c.id).where(profiles.c.name == profile)).scalar()
    if profile_id is None:
        raise LookupError(f"no policy profile {profile!r}")
    existing = conn.execute(sa.select(subs.c.id).where(match)).scalars().all()
    if existing:
        conn.execute(subs.delete().where(subs.c.id.in_(existing[1:])))
        conn.execute(
            subs.update().where(subs.c.id == existing[0])
            .values(imsi=imsi, msisdn=msisdn, profile_id=profile_id)
        )  # fmt: skip
    else:
        conn.execute(subs.insert().values(imsi=imsi, msisdn=msisdn, profile_id=profile_id))
