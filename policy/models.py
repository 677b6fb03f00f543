"""Policy tables: profiles, per-APN policy (default bearer QoS, APN-AMBR, predefined rules and
rule bases, fair-use allowances, time-of-day variants, credit-exhaustion action), the policy view
of subscribers, fair-use counters, and the persisted Gx/Rx sessions with their binding.

Own ``MetaData`` (domains never share declarations); ``migrations/versions/policy_0001_*.py``
creates these tables and a test checks the two never drift apart. Bit rates are bit/s, volumes
octets, both ``BigInteger``.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from schemas.sql import BigId, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata


class PolicyProfile(Base):
    """A named policy (e.g. "volte-basic"): the APN policies subscribers on it get."""

    __tablename__ = "policy_profiles"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    apns: Mapped[list[PolicyApn]] = relationship(
        back_populates="profile", cascade="all, delete-orphan", lazy="selectin"
    )


class PolicyApn(Base):
    """Default bearer policy of one APN in a profile; apn "*" matches any APN."""

    __tablename__ = "policy_apns"
    __table_args__ = (UniqueConstraint("profile_id", "apn"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    profile_id: Mapped[int] = mapped_column(
        ForeignKey("policy_profiles.id", ondelete="CASCADE"), index=True
    )
    apn: Mapped[str] = mapped_column(String(100))
    qci: Mapped[int] = mapped_column(Integer)
    arp_priority: Mapped[int] = mapped_column(Integer)
    arp_preemption_capability: Mapped[bool] = mapped_column(Boolean, default=False)
    arp_preemption_vulnerability: Mapped[bool] = mapped_column(Boolean, default=True)
    ambr_ul: Mapped[int] = mapped_column(BigInteger)
    ambr_dl: Mapped[int] = mapped_column(BigInteger)
    predefined_rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    rule_bases: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: "none", "throttle" or "redirect" when the OCS reports final units spent.
    exhaustion_action: Mapped[str] = mapped_column(String(16), default="none")
    exhaustion_ambr_ul: Mapped[int | None] = mapped_column(BigInteger)
    exhaustion_ambr_dl: Mapped[int | None] = mapped_column(BigInteger)
    redirect_rules: Mapped[list[str]] = mapped_column(JSON, default=list)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    offline: Mapped[bool] = mapped_column(Boolean, default=True)
    profile: Mapped[PolicyProfile] = relationship(back_populates="apns")
    allowances: Mapped[list[PolicyAllowance]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    time_variants: Mapped[list[PolicyTimeVariant]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class PolicyAllowance(Base):
    """Fair use: ``octets`` per calendar month on a monitoring key, then the throttled AMBR."""

    __tablename__ = "policy_allowances"
    __table_args__ = (UniqueConstraint("apn_id", "monitoring_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    apn_id: Mapped[int] = mapped_column(ForeignKey("policy_apns.id", ondelete="CASCADE"))
    monitoring_key: Mapped[str] = mapped_column(String(64))
    octets: Mapped[int] = mapped_column(BigInteger)
    throttled_ambr_ul: Mapped[int] = mapped_column(BigInteger)
    throttled_ambr_dl: Mapped[int] = mapped_column(BigInteger)


class PolicyTimeVariant(Base):
    """A time-of-day window (local time of the policy timezone) capping the AMBR."""

    __tablename__ = "policy_time_variants"
    __table_args__ = (UniqueConstraint("apn_id", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    apn_id: Mapped[int] = mapped_column(ForeignKey("policy_apns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    weekdays: Mapped[list[int]] = mapped_column(JSON, default=lambda: list(range(7)))
    ambr_ul: Mapped[int] = mapped_column(BigInteger)
    ambr_dl: Mapped[int] = mapped_column(BigInteger)
    rules: Mapped[list[str]] = mapped_column(JSON, default=list)


class PolicySubscriber(Base):
    """The policy view of a subscriber: identities (IMSI, MSISDN) → profile."""

    __tablename__ = "policy_subscribers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    imsi: Mapped[str | None] = mapped_column(String(15), unique=True)
    msisdn: Mapped[str | None] = mapped_column(String(32), unique=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("policy_profiles.id"), index=True)
    profile: Mapped[PolicyProfile] = relationship(lazy="joined")


class PolicyUsage(Base):
    """Octets used per subscriber, monitoring key and period ("YYYY-MM")."""

    __tablename__ = "policy_usage"
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("policy_subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    monitoring_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    octets: Mapped[int] = mapped_column(BigInteger, default=0)


class GxSession(Base):
    """A live IP-CAN session (Gx, PCRF side). ``state`` holds what was last pushed to the PCEF
    (the decision and installed dynamic rules) so a restarted PCRF computes the right deltas."""

    __tablename__ = "policy_gx_sessions"
    session_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("policy_subscribers.id", ondelete="CASCADE"), index=True
    )
    apn: Mapped[str] = mapped_column(String(100))
    ue_ipv4: Mapped[str | None] = mapped_column(String(15), index=True)
    ue_ipv6_prefix: Mapped[str | None] = mapped_column(String(64), index=True)
    pcef_host: Mapped[str] = mapped_column(String(255))
    pcef_realm: Mapped[str] = mapped_column(String(255))
    #: Origin-Host of the OpenPCC node that holds the PCEF's connection.
    served_by: Mapped[str] = mapped_column(String(255))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RxSession(Base):
    """An AF session bound to a Gx session; ``state`` keeps its media components (for AAR
    modifications), installed rule names and Specific-Action subscriptions."""

    __tablename__ = "policy_rx_sessions"
    session_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    gx_session_id: Mapped[str] = mapped_column(
        ForeignKey("policy_gx_sessions.session_id", ondelete="CASCADE"), index=True
    )
    af_host: Mapped[str] = mapped_column(String(255))
    af_realm: Mapped[str] = mapped_column(String(255))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
