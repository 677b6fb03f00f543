"""Tables of the management API: API keys (hashed), the audit log, uploaded tariffs and the
outcomes of idempotent money writes.

Its own ``MetaData`` (DESIGN.md §2); ``migrations/versions/api_000*.py`` create the tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schemas.sql import BigId, UTCDateTime, new_metadata, utcnow


class Base(DeclarativeBase):
    metadata = new_metadata()


metadata = Base.metadata


class ApiKey(Base):
    """A bearer key: only its SHA-256 is stored (the key itself is shown once, at creation)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: read-only, operator or admin.
    role: Mapped[str] = mapped_column(String(16))
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One write through the API: who, what, on which resource, the state before and after."""

    __tablename__ = "api_audit"
    __table_args__ = (Index(None, "resource", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    #: e.g. "subscriber.create", "balance.topup", "session.terminate".
    action: Mapped[str] = mapped_column(String(48))
    #: e.g. "subscriber:alice", "account:alice".
    resource: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(255))
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)


class TariffUpload(Base):
    """A tariff file uploaded through the API; the newest with ``activate_at <= now`` is live."""

    __tablename__ = "api_tariffs"
    __table_args__ = (Index(None, "name", "activate_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The plan name inside the file (TariffPlan.name).
    name: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activate_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdempotentRequest(Base):
    """A money write made with an ``Idempotency-Key``: its outcome, stored in the write's own
    transaction so a retry is answered from here instead of crediting again.

    The key is scoped to the API key (``principal``) that sent it; the unique constraint makes
    one of two racing duplicates lose (draft-ietf-httpapi-idempotency-key-header §2).
    """

    __tablename__ = "api_idempotency"
    __table_args__ = (UniqueConstraint("principal", "key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    #: The API key's name.
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the operation, the resource and the canonical JSON body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    #: The answer; NULL only inside the claiming transaction, before the write completes.
    status: Mapped[int | None] = mapped_column(SmallInteger)
    body: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
