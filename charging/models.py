"""Charging tables: subscribers and identities, accounts, balances, plans, Ro sessions,
reservations, stored CCR outcomes, the balance journal and the CDR outbox.

Money and units are ``BigInteger`` minor units (cents, seconds, octets, events): never floats.
The tables are declared here once; ``migrations/versions/charging_0001_*.py`` creates them and a
test checks that the migration and these declarations never drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schemas.sql import BigId, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata


class Account(Base):
    """Who pays: owns the balances; several subscribers may share one account."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Plan(Base):
    """A commercial plan: which tariff rates the usage and what to do when credit runs out."""

    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    tariff: Mapped[str] = mapped_column(String(64))
    #: Final-Unit-Action (RFC 4006 §8.35): TERMINATE, REDIRECT or RESTRICT_ACCESS.
    final_unit_action: Mapped[str] = mapped_column(String(24), default="TERMINATE")
    #: Redirect-Address-Type (RFC 4006 §8.38): IPV4_ADDRESS, IPV6_ADDRESS, URL or SIP_URI.
    redirect_address_type: Mapped[str | None] = mapped_column(String(16))
    redirect_server: Mapped[str | None] = mapped_column(String(255))
    restriction_filter_rules: Mapped[list[str] | None] = mapped_column(JSON)
    #: Credit-Control-Failure-Handling (RFC 4006 §8.14) sent to the client; None = omit.
    failure_handling: Mapped[str | None] = mapped_column(String(32))


class Subscriber(Base):
    """A user of the network; resolved from any of its identities."""

    __tablename__ = "subscribers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    #: "active" or "barred" (barred subscribers get 4010 END_USER_SERVICE_DENIED).
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SubscriberIdentity(Base):
    """One identity of a subscriber, normalised (see charging.identities)."""

    __tablename__ = "subscriber_identities"
    __table_args__ = (UniqueConstraint("kind", "value"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    #: imsi, msisdn (E.164 digits; tel: URIs are stored here), sip_uri or nai.
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))


class Balance(Base):
    """A bucket of money (``kind='monetary'``, minor units of the account currency) or of units
    (``kind='unit'``: seconds, octets or events of a tariff bundle). Consumed by ``priority``
    (lowest number first, like tariff bundles) within its validity window.
    ``available = amount - reserved + credit_limit``.
    """

    __tablename__ = "balances"
    __table_args__ = (
        UniqueConstraint("account_id", "name"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("credit_limit >= 0", name="credit_limit_non_negative"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    #: money, seconds, octets or events (service-specific units).
    unit: Mapped[str] = mapped_column(String(16))
    #: For unit buckets: the tariff bundle whose services draw on this bucket.
    bundle: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    credit_limit: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class JournalEntry(Base):
    """Append-only: one row per change of a balance's ``amount`` or ``reserved``, with its cause.
    Replaying the deltas of a balance gives its current amount and reservation.

    No foreign keys (migration charging_0004): rows come only from the ledger, under the lock of
    the balance they change, and balances/accounts are never deleted; a referential check per
    row would cost the database more than the insert. ``openpcc ledger verify`` checks them.
    """

    __tablename__ = "balance_journal"
    __table_args__ = (Index(None, "balance_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    balance_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[int] = mapped_column(BigId, index=True)
    #: provision, topup, adjust, reserve, debit, release, refund, expire.
    cause: Mapped[str] = mapped_column(String(16))
    delta_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    delta_reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_after: Mapped[int] = mapped_column(BigInteger)
    reserved_after: Mapped[int] = mapped_column(BigInteger)
    session_id: Mapped[str | None] = mapped_column(String(255))
    request_number: Mapped[int | None] = mapped_column(BigInteger)
    reference: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoSession(Base):
    """A credit-control session (SCUR or ECUR) from CCR-INITIAL to CCR-TERMINATION or the sweep."""

    __tablename__ = "ro_sessions"
    __table_args__ = (Index(None, "state", "expires_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(255), unique=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    #: open or closed.
    state: Mapped[str] = mapped_column(String(16), default="open")
    charging_type: Mapped[str] = mapped_column(String(8), default="SCUR")
    last_request_number: Mapped[int] = mapped_column(BigInteger)
    origin_host: Mapped[str] = mapped_column(String(255))
    origin_realm: Mapped[str] = mapped_column(String(255))
    service_context_id: Mapped[str | None] = mapped_column(String(255))
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    #: Service-Information read from the CCRs (IMS-Information, ...), kept for the CDR.
    service_information: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: The OpenPCC node that holds the client's connection (for Re-Auth-Request).
    node_id: Mapped[str | None] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: When the sweep may close the session (latest grant's Validity-Time + grace).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_cause: Mapped[str | None] = mapped_column(String(32))
    cdr_sequence: Mapped[int] = mapped_column(Integer, default=0)


class SessionUsage(Base):
    """Usage and charge accumulated per service (rating group / service id) of a session."""

    __tablename__ = "session_usage"
    __table_args__ = (UniqueConstraint("ro_session_id", "service_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ro_session_id: Mapped[int] = mapped_column(ForeignKey("ro_sessions.id", ondelete="CASCADE"))
    service_key: Mapped[str] = mapped_column(String(64))
    rating_group: Mapped[int | None] = mapped_column(BigInteger)
    service_id: Mapped[int | None] = mapped_column(BigInteger)
    time_usage: Mapped[int] = mapped_column(BigInteger, default=0)
    volume_uplink: Mapped[int] = mapped_column(BigInteger, default=0)
    volume_downlink: Mapped[int] = mapped_column(BigInteger, default=0)
    service_units: Mapped[int] = mapped_column(BigInteger, default=0)
    charge: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Units priced in money so far (voice: the call's seconds for connect fee/increments).
    priced_units: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    first_usage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_usage_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PeriodUsage(Base):
    """Units a subscriber was charged for per service and billing period (calendar month in
    the tariff's time zone): the ``already_used`` of tiered data and event rates."""

    __tablename__ = "period_usage"
    __table_args__ = (UniqueConstraint("subscriber_id", "service", "period"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    #: "data:<rating group>" or "events:<service id>".
    service: Mapped[str] = mapped_column(String(64))
    #: "YYYY-MM".
    period: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(BigInteger, default=0)


class Reservation(Base):
    """Credit held on one balance for one granted quota of a session's service.

    No foreign keys, as for the journal (written with the balance locked and the session open;
    neither is ever deleted); ``openpcc ledger verify`` checks both references.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        Index(None, "ro_session_id", "service_key"),
        CheckConstraint("amount >= 0", name="amount_non_negative"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ro_session_id: Mapped[int] = mapped_column(BigId)
    service_key: Mapped[str] = mapped_column(String(64))
    balance_id: Mapped[int] = mapped_column(BigId, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    #: Granted units and what they count (seconds/octets/events) this reservation covers.
    granted_units: Mapped[int] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(16))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class CcrOutcome(Base):
    """The answer first given to a CCR, stored in the same transaction as its effect: a
    retransmission (RFC 6733 §5.5.4, RFC 4006 §5.1) on any node is answered from here."""

    __tablename__ = "ccr_outcomes"
    session_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    request_type: Mapped[int] = mapped_column(Integer)
    result_code: Mapped[int] = mapped_column(Integer)
    answer: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CdrOutbox(Base):
    """CDRs waiting for export, written in the same transaction as the final debit."""

    __tablename__ = "cdr_outbox"
    __table_args__ = (Index(None, "sent_at", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cdr_id: Mapped[str] = mapped_column(String(64), unique=True)
    partition_key: Mapped[str] = mapped_column(String(128))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
