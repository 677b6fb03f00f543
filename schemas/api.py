"""Request and response bodies of the management REST API (published in its OpenAPI at /docs).

Money is always an integer in minor units of the account currency (``amount: 500`` = 5.00 EUR).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.cdr import ChargingDataRecord
from schemas.provisioning import BalanceSpec, SubscriberStatus

T = TypeVar("T")
Name = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@+-]+$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Role(StrEnum):
    READ_ONLY = "read-only"
    OPERATOR = "operator"
    ADMIN = "admin"


class Problem(BaseModel):
    """Every 4xx/5xx body: a human-readable reason (and, for 422, the offending fields)."""

    detail: str | list[dict[str, Any]]


class Page(BaseModel, Generic[T]):
    """A page of a list; ``next_offset`` is null on the last page."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


# -- subscribers -----------------------------------------------------------------------------


class Identities(_In):
    imsi: list[str] = Field(default_factory=list, max_length=8)
    msisdn: list[str] = Field(default_factory=list, max_length=8)
    sip_uris: list[str] = Field(default_factory=list, max_length=8)
    nai: list[str] = Field(default_factory=list, max_length=8)


class SubscriberCreate(Identities):
    name: str = Name
    account: str = Name
    plan: str = Name
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    policy_profile: str | None = Field(default=None, min_length=1, max_length=64)


class SubscriberUpdate(_In):
    """Only the given fields change; an identity list replaces the stored one."""

    account: str | None = Field(default=None, min_length=1, max_length=64)
    plan: str | None = Field(default=None, min_length=1, max_length=64)
    status: SubscriberStatus | None = None
    imsi: list[str] | None = Field(default=None, max_length=8)
    msisdn: list[str] | None = Field(default=None, max_length=8)
    sip_uris: list[str] | None = Field(default=None, max_length=8)
    nai: list[str] | None = Field(default=None, max_length=8)
    policy_profile: str | None = Field(default=None, min_length=1, max_length=64)


class Subscriber(BaseModel):
    id: int
    name: str
    account: str
    plan: str
    status: str
    imsi: list[str]
    msisdn: list[str]
    sip_uris: list[str]
    nai: list[str]
    policy_profile: str | None
    created_at: datetime
    updated_at: datetime


# -- accounts and balances -------------------------------------------------------------------


class AccountCreate(_In):
    name: str = Name
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    balances: list[BalanceSpec] = Field(default_factory=list, max_length=32)


class BalanceOut(BaseModel):
    name: str
    kind: str
    unit: str
    bundle: str | None
    amount: int
    reserved: int
    credit_limit: int
    available: int
    priority: int
    valid_from: datetime | None
    valid_until: datetime | None
    valid_now: bool


class AccountOut(BaseModel):
    name: str
    currency: str
    created_at: datetime
    balances: list[BalanceOut]


class TopUp(_In):
    amount: int = Field(gt=0, le=10**12, description="minor units of the account currency")
    reason: str = Field(min_length=1, max_length=255)
    balance: str | None = Field(default=None, min_length=1, max_length=64)


class Adjustment(_In):
    amount: int = Field(ge=-(10**12), le=10**12, description="signed minor units; not zero")
    reason: str = Field(min_length=1, max_length=255)
    balance: str | None = Field(default=None, min_length=1, max_length=64)


class BalanceChange(BaseModel):
    """The balance after a top-up or adjustment and who was told to re-request credit."""

    account: str
    balance: BalanceOut
    reauthorized_ro_sessions: list[str]
    reevaluated_subscribers: list[str]


class JournalOut(BaseModel):
    id: int
    balance: str
    cause: str
    delta_amount: int
    delta_reserved: int
    amount_after: int
    reserved_after: int
    session_id: str | None
    request_number: int | None
    reference: str | None
    created_at: datetime


# -- tariffs ---------------------------------------------------------------------------------


class TariffUpload(_In):
    source: str = Field(min_length=1, max_length=2_000_000, description="tariff YAML text")


class TariffCheck(BaseModel):
    valid: bool
    name: str | None = None
    versions: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class TariffOut(BaseModel):
    id: int
    name: str
    uploaded_by: str
    uploaded_at: datetime
    activate_at: datetime | None
    active: bool


class TariffActivate(_In):
    at: AwareDatetime | None = Field(default=None, description="when it goes live; null = now")


class PriceQuery(_In):
    """Exactly one of destination (voice), rating_group (data) or service_id (events)."""

    destination: str | None = Field(default=None, min_length=1, max_length=32)
    rating_group: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    service_id: int | None = Field(default=None, ge=0, le=0xFFFFFFFF)
    units: int = Field(gt=0, le=10**15, description="seconds, octets or events")
    start: AwareDatetime | None = None


class PriceOut(BaseModel):
    tariff: str
    currency: str
    amount: int
    lines: list[dict[str, Any]]


# -- sessions, CDRs, peers -------------------------------------------------------------------


class GxSessionOut(BaseModel):
    session_id: str
    imsi: str | None
    msisdn: str | None
    apn: str
    ue_ipv4: str | None
    pcef_host: str
    qci: int | None
    ambr_ul: int | None
    ambr_dl: int | None
    rules: list[str]
    reasons: list[str]
    rx_sessions: list[str]


class RxSessionOut(BaseModel):
    session_id: str
    gx_session_id: str
    af_host: str
    rules: list[dict[str, Any]]


class RoSessionOut(BaseModel):
    session_id: str
    subscriber: str
    charging_type: str
    origin_host: str
    opened_at: datetime
    expires_at: datetime
    request_number: int
    subscription_ids: list[str]
    calling_party: str | None
    called_party: str | None
    reservations: list[dict[str, Any]]
    charged: int
    currency: str


class Sessions(BaseModel):
    gx: list[GxSessionOut]
    rx: list[RxSessionOut]
    ro: list[RoSessionOut]
    limit: int
    offset: int


class Terminated(BaseModel):
    session_id: str
    application: str
    command: str
    result_code: int | None


class CdrOut(BaseModel):
    id: int
    cdr_id: str
    partition_key: str
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    #: The record as published (TS 32.298 field names; docs/cdr.schema.json).
    record: ChargingDataRecord


class OutboxStatus(BaseModel):
    unsent: int
    oldest_unsent_at: datetime | None
    oldest_unsent_age_seconds: float
    claimed: int
    total: int


class PeerOut(BaseModel):
    listener: str
    origin_host: str | None
    origin_realm: str | None
    state: str
    remote_address: str | None
    applications: list[int]
    pending_requests: int


class Check(BaseModel):
    name: str
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: list[Check]


class Summary(BaseModel):
    """The console dashboard in one call."""

    node: str
    peers_open: int
    gx_sessions: int
    rx_sessions: int
    ro_sessions: int
    requests_total: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    outbox_unsent: int
    outbox_oldest_age_seconds: float
