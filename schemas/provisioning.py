"""The provisioning file (``OPENPCC_PROVISIONING``): plans, accounts with balances, subscribers.

Amounts are integers in minor units (money: cents of the account currency; unit buckets:
seconds, octets or events). Applying a file is idempotent: plans, accounts, balances and
subscribers are matched by ``name`` and updated; a balance's ``amount`` is its opening amount,
applied only when the balance is created (later credit comes from top-ups, never from re-reading
the file, so a restart cannot undo usage).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FinalUnitAction(StrEnum):
    """RFC 4006 §8.35."""

    TERMINATE = "TERMINATE"
    REDIRECT = "REDIRECT"
    RESTRICT_ACCESS = "RESTRICT_ACCESS"


class RedirectAddressType(StrEnum):
    """RFC 4006 §8.38."""

    IPV4_ADDRESS = "IPV4_ADDRESS"
    IPV6_ADDRESS = "IPV6_ADDRESS"
    URL = "URL"
    SIP_URI = "SIP_URI"


class FailureHandling(StrEnum):
    """Credit-Control-Failure-Handling, RFC 4006 §8.14."""

    TERMINATE = "TERMINATE"
    CONTINUE = "CONTINUE"
    RETRY_AND_TERMINATE = "RETRY_AND_TERMINATE"


class PlanSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    tariff: str = Field(min_length=1, max_length=64, description="tariff id in the tariff file")
    final_unit_action: FinalUnitAction = FinalUnitAction.TERMINATE
    redirect_address_type: RedirectAddressType | None = None
    redirect_server: str | None = Field(default=None, max_length=255)
    restriction_filter_rules: list[str] | None = None
    failure_handling: FailureHandling | None = None

    @model_validator(mode="after")
    def _action_complete(self) -> PlanSpec:
        if self.final_unit_action is FinalUnitAction.REDIRECT and not (
            self.redirect_server and self.redirect_address_type
        ):
            raise ValueError("REDIRECT needs redirect_address_type and redirect_server")
        if self.final_unit_action is FinalUnitAction.RESTRICT_ACCESS and not (
            self.restriction_filter_rules
        ):
            raise ValueError("RESTRICT_ACCESS needs restriction_filter_rules")
        return self


class BalanceKind(StrEnum):
    MONETARY = "monetary"
    UNIT = "unit"


class BalanceUnit(StrEnum):
    """What a bucket counts; unit buckets use the tariff bundle units (schemas.tariff)."""

    MONEY = "money"  # minor units of the account currency
    SECONDS = "seconds"
    OCTETS = "octets"
    EVENTS = "events"  # service-specific units (SMS, MMS, ...)


class BalanceSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    kind: BalanceKind = BalanceKind.MONETARY
    unit: BalanceUnit = BalanceUnit.MONEY
    bundle: str | None = Field(default=None, max_length=64, description="tariff bundle name")
    amount: int = Field(default=0, description="opening amount (minor units), on creation only")
    credit_limit: int = Field(default=0, ge=0)
    priority: int = Field(default=0, description="lowest number is consumed first")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BalanceSpec:
        if (self.kind is BalanceKind.MONETARY) != (self.unit is BalanceUnit.MONEY):
            raise ValueError("monetary balances hold money; unit buckets seconds/octets/events")
        if self.kind is BalanceKind.UNIT and not self.bundle:
            raise ValueError("a unit bucket names the tariff bundle it belongs to")
        if self.amount < 0:
            raise ValueError("opening amount must not be negative")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class AccountSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    balances: list[BalanceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_balances(self) -> AccountSpec:
        names = [b.name for b in self.balances]
        if len(names) != len(set(names)):
            raise ValueError(f"account {self.name}: duplicate balance names")
        return self


class SubscriberStatus(StrEnum):
    ACTIVE = "active"
    BARRED = "barred"


class SubscriberSpec(_Model):
    name: str = Field(min_length=1, max_length=64)
    account: str
    plan: str
    status: SubscriberStatus = SubscriberStatus.ACTIVE
    imsi: list[str] = Field(default_factory=list)
    msisdn: list[str] = Field(default_factory=list)
    sip_uris: list[str] = Field(default_factory=list)
    tel_uris: list[str] = Field(default_factory=list)
    nai: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_identity(self) -> SubscriberSpec:
        if not (self.imsi or self.msisdn or self.sip_uris or self.tel_uris or self.nai):
            raise ValueError(f"subscriber {self.name} has no identity")
        return self


class ProvisioningFile(_Model):
    """The charging sections of the file; other domains' sections (``policy:``) are theirs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    plans: list[PlanSpec] = Field(default_factory=list)
    accounts: list[AccountSpec] = Field(default_factory=list)
    subscribers: list[SubscriberSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> ProvisioningFile:
        plans = {p.name for p in self.plans}
        accounts = {a.name for a in self.accounts}
        for kind, names in (
            ("plan", [p.name for p in self.plans]),
            ("account", [a.name for a in self.accounts]),
            ("subscriber", [s.name for s in self.subscribers]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"duplicate {kind} names")
        for sub in self.subscribers:
            if sub.plan not in plans:
                raise ValueError(f"subscriber {sub.name}: unknown plan {sub.plan}")
            if sub.account not in accounts:
                raise ValueError(f"subscriber {sub.name}: unknown account {sub.account}")
        return self
