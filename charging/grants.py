"""Quota grants and their settlement, per service, against an account's wallet.

A grant draws first on the unit buckets (bundles) that cover the service, lowest priority
number first (as tariff bundles), then on money: the rating engine's reverse rating
(``rating.engine.grant``) says how many units the spendable money buys. Every hold is an atomic
conditional reservation in the ledger.
Settlement debits the reported usage (buckets first, then money priced by ``rating.engine.price``
at the time the usage happened) and releases the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from charging.bulk import Prebuilt
from charging.ccr import ServiceInformation, ServiceRequest, TariffChangeUsage, Units
from charging.ledger import Cause, Ledger
from charging.models import Balance
from rating import engine as rating
from rating.errors import RatingError
from rating.plan import Plan
from rating.timebands import epoch_seconds

balances_t = Balance.__table__

#: Role-Of-Node (TS 32.299 §7.2.182): the served user receives the call.
ROLE_TERMINATING = 1


class UnitKind(StrEnum):
    """What a service is counted in (the same names as tariff bundle units)."""

    SECONDS = "seconds"
    OCTETS = "octets"
    EVENTS = "events"


class NotRated(Exception):
    """The service cannot be priced: ``result_code`` 5031 (no rate) or 4011 (free / not ours)."""

    def __init__(self, result_code: int, reason: str) -> None:
        super().__init__(reason)
        self.result_code = result_code


def time_rated(services: Iterable[ServiceRequest]) -> bool:
    """Every service states time units first, so is rated by time (as
    :meth:`RatedService.classify` decides): no period counter is involved."""
    for service in services:
        units = [u for u in (service.requested, *service.used) if u is not None and not u.is_empty]
        if not units or units[0].time is None:
            return False
    return True


@dataclass(frozen=True, slots=True)
class RatedService:
    """A service of a CCR bound to its tariff: unit kind and how to express a usage."""

    kind: UnitKind
    usage: Callable[[int], rating.Usage]
    bundles: frozenset[str]
    #: Period counter of tiered data/event rates ("data:10", "events:2000"); None for voice,
    #: whose increments and connect fee are per call.
    counter: str | None = None

    @staticmethod
    def classify(
        plan: Plan, service: ServiceRequest, info: ServiceInformation, now: datetime
    ) -> RatedService:
        """Decide the unit kind from the units the client asks for or reports, else from the
        tariff: events by Service-Identifier, volume by Rating-Group, time by destination."""
        units = [u for u in (service.requested, *service.used) if u is not None and not u.is_empty]
        version = plan.version_at(epoch_seconds(now))
        if units:
            first = units[0]
            kind = (
                UnitKind.SECONDS
                if first.time is not None
                else UnitKind.OCTETS
                if first.octets is not None
                else UnitKind.EVENTS
            )
        elif service.service_id is not None and service.service_id in version.events:
            kind = UnitKind.EVENTS
        elif service.rating_group is not None and service.rating_group in version.data:
            kind = UnitKind.OCTETS
        else:
            kind = UnitKind.SECONDS
        if kind is UnitKind.SECONDS:
            if info.role_of_node == ROLE_TERMINATING:
                raise NotRated(4011, "terminating call legs are not charged")
            destination = info.called_party or info.requested_party
            if not destination:
                raise NotRated(5031, "a time-based service needs Called-Party-Address")
            try:
                _, dest_set = rating.resolve(plan, destination)
            except (RatingError, ValueError) as exc:
                raise NotRated(5031, str(exc)) from None
            covered = frozenset(
                b.name
                for b in plan.bundles.values()
                if b.unit == "seconds" and dest_set in b.applies_to.destinations
            )
            return RatedService(kind, lambda n: rating.Voice(destination, n), covered)
        if kind is UnitKind.OCTETS:
            rg = service.rating_group
            if rg is None:
                raise NotRated(5031, "a volume-based service needs a Rating-Group")
            covered = frozenset(
                b.name
                for b in plan.bundles.values()
                if b.unit == "octets" and rg in b.applies_to.rating_groups
            )
            return RatedService(kind, lambda n: rating.Data(rg, n), covered, f"data:{rg}")
        sid = service.service_id
        if sid is None:
            raise NotRated(5031, "an event-based service needs a Service-Identifier")
        covered = frozenset(
            b.name
            for b in plan.bundles.values()
            if b.unit == "events" and sid in b.applies_to.service_ids
        )
        return RatedService(kind, lambda n: rating.Events(sid, n), covered, f"events:{sid}")

    def amount(self, units: Units | None) -> int | None:
        """The amount of this service's kind in RSU/USU contents (None = not given)."""
        if units is None:
            return None
        if self.kind is UnitKind.SECONDS:
            return units.time
        if self.kind is UnitKind.OCTETS:
            return units.octets
        return units.service_specific


@dataclass(slots=True)
class Pocket:
    """One spendable balance: its available credit as loaded under the account lock, or as
    the ledger last left it in this transaction."""

    balance_id: int
    loaded: int
    bundle: str | None
    latest: dict[int, int]

    @property
    def available(self) -> int:
        return self.latest.get(self.balance_id, self.loaded)


#: Balance columns a wallet is built from.
WALLET_COLUMNS = (
    balances_t.c.account_id,
    balances_t.c.id,
    balances_t.c.kind,
    balances_t.c.bundle,
    balances_t.c.amount,
    balances_t.c.reserved,
    balances_t.c.credit_limit,
)


#: The valid balances of the accounts ``ids`` at ``now`` in consumption order.
WALLETS = Prebuilt(
    lambda member: (
        sa.select(*WALLET_COLUMNS)
        .where(
            member(balances_t.c.account_id, "ids"),
            sa.or_(
                balances_t.c.valid_from.is_(None), balances_t.c.valid_from <= sa.bindparam("now")
            ),
            sa.or_(
                balances_t.c.valid_until.is_(None), balances_t.c.valid_until > sa.bindparam("now")
            ),
        )
        .order_by(balances_t.c.priority, balances_t.c.id)
    )
)


@dataclass(slots=True)
class Wallet:
    """An account's balances valid now: money pockets and unit buckets, by priority."""

    money: list[Pocket]
    buckets: list[Pocket]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], ledger: Ledger) -> Wallet:
        """A wallet from balance rows (:data:`WALLET_COLUMNS`) read under the account lock;
        the ledger tracks them."""
        wallet = cls([], [])
        for account_id, balance_id, kind, bundle, amount, reserved, credit_limit in rows:
            ledger.track(balance_id, account_id, amount, reserved, credit_limit)
            pocket = Pocket(balance_id, amount - reserved + credit_limit, bundle, ledger.latest)
            (wallet.money if kind == "monetary" else wallet.buckets).append(pocket)
        return wallet

    @classmethod
    def load(cls, conn: Connection, account_id: int, now: datetime, ledger: Ledger) -> Wallet:
        """The account's wallet (its row must be locked by ``ledger.lock_accounts``)."""
        return cls.from_rows(
            conn.execute(WALLETS(conn), {"ids": [account_id], "now": now}).all(), ledger
        )

    @property
    def money_available(self) -> int:
        return sum(max(p.available, 0) for p in self.money)

    def buckets_for(self, rated: RatedService) -> list[Pocket]:
        return [p for p in self.buckets if p.bundle in rated.bundles and p.available > 0]


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation made for a grant: ``amount`` on ``balance_id`` covering ``units``."""

    balance_id: int
    amount: int
    units: int
    bucket: bool


@dataclass(slots=True)
class GrantResult:
    units: int = 0
    holds: list[Hold] = field(default_factory=list)
    #: Money limited the grant: these are the final units (Final-Unit-Indication).
    exhausted: bool = False
    tariff_change_at: datetime | None = None
    #: The service costs nothing: no credit control applies (4011).
    free: bool = False


def grant(
    ledger: Ledger,
    wallet: Wallet,
    plan: Plan,
    rated: RatedService,
    requested: int,
    now: datetime,
    already_used: int,
    cause: Cause,
    horizon: int,
) -> GrantResult:
    """Reserve up to ``requested`` units: buckets first, then what the money buys."""
    result = GrantResult()
    remaining = requested
    for pocket in wallet.buckets_for(rated):
        take = min(remaining, pocket.available)
        if take <= 0:
            continue
        _hold(ledger, pocket, take, cause)
        result.holds.append(Hold(pocket.balance_id, take, take, bucket=True))
        result.units += take
        remaining -= take
        if remaining == 0:
            return result
    start = _money_start(rated, now, result.units)
    try:
        quote = rating.grant(
            plan,
            rated.usage(remaining),
            start,
            wallet.money_available,
            already_used=already_used,
            horizon=horizon,
        )
    except (RatingError, ValueError) as exc:
        raise NotRated(5031, str(exc)) from None
    if quote.cost == 0 and quote.units == remaining and not result.holds:
        free = rating.price(plan, rated.usage(max(remaining, 1)), start, already_used=already_used)
        result.free = free.total == 0
    if not result.free and wallet.money_available <= 0:
        # Rounding may price a few units at zero; an empty account still gets none (4012).
        result.exhausted = True
        return result
    result.units += quote.units
    result.exhausted = not quote.capped
    result.tariff_change_at = quote.tariff_change_at
    cost = quote.cost
    for pocket in wallet.money:
        if cost == 0:
            break
        take = min(cost, max(pocket.available, 0))
        if take <= 0:
            continue
        _hold(ledger, pocket, take, cause)
        # Units are attributed to the first money hold; the others only add money.
        units = quote.units if not any(not h.bucket for h in result.holds) else 0
        result.holds.append(Hold(pocket.balance_id, take, units, bucket=False))
        cost -= take
    if cost:
        raise RuntimeError("wallet could not hold the quoted cost")
    return result


def _hold(ledger: Ledger, pocket: Pocket, amount: int, cause: Cause) -> None:
    if not ledger.reserve(pocket.balance_id, amount, cause):
        raise RuntimeError(f"balance {pocket.balance_id} changed under the account lock")


def _money_start(rated: RatedService, now: datetime, bucket_units: int) -> datetime:
    """Money-paid seconds of a call begin after the bundle seconds."""
    if rated.kind is UnitKind.SECONDS:
        return now + timedelta(seconds=bucket_units)
    return now


@dataclass(frozen=True, slots=True)
class Held:
    """A stored reservation being settled."""

    reservation_id: int
    balance_id: int
    amount: int
    units: int
    bucket: bool


@dataclass(slots=True)
class Settlement:
    units: int = 0
    priced_units: int = 0
    charge: int = 0
    bucket_units: int = 0


@dataclass(frozen=True, slots=True)
class UsedPart:
    """Reported units and when they began (Tariff-Change-Usage splits a report in two)."""

    units: int
    start: datetime


def used_parts(
    rated: RatedService,
    used: tuple[Units, ...],
    granted_at: datetime,
    tariff_change_at: datetime | None,
) -> list[UsedPart]:
    """USU contents as priced parts: before/after a tariff change at each side's time."""
    parts: list[UsedPart] = []
    for units in used:
        amount = rated.amount(units) or 0
        if amount <= 0:
            continue
        after = units.tariff_change_usage == TariffChangeUsage.UNIT_AFTER_TARIFF_CHANGE
        start = tariff_change_at if after and tariff_change_at is not None else granted_at
        parts.append(UsedPart(amount, start))
    return parts


def settle(
    ledger: Ledger,
    wallet: Wallet,
    plan: Plan,
    rated: RatedService,
    holds: list[Held],
    parts: list[UsedPart],
    already_used: int,
    cause: Cause,
) -> Settlement:
    """Debit the used parts from the holds (buckets first, then money), release the rest.
    ``already_used`` = money-priced units of this service before (per-call voice scope)."""
    out = Settlement()
    bucket_left = {h.reservation_id: h.amount for h in holds if h.bucket}
    money_due = 0
    priced = already_used
    for part in parts:
        units = part.units
        out.units += units
        for held in holds:
            if not held.bucket or units == 0:
                continue
            take = min(units, bucket_left[held.reservation_id])
            bucket_left[held.reservation_id] -= take
            out.bucket_units += take
            units -= take
        if units:
            try:
                charge = rating.price(plan, rated.usage(units), part.start, already_used=priced)
            except (RatingError, ValueError) as exc:
                raise NotRated(5031, str(exc)) from None
            money_due += charge.total
            priced += units
    out.priced_units = priced - already_used
    for held in holds:
        if held.bucket:
            ledger.settle(
                held.balance_id, held.amount, held.amount - bucket_left[held.reservation_id], cause
            )
    money_holds = [h for h in holds if not h.bucket]
    for i, held in enumerate(money_holds):
        last = i == len(money_holds) - 1
        want = max(money_due, 0) if last else min(max(money_due, 0), held.amount)
        debited = ledger.settle(held.balance_id, held.amount, want, cause)
        out.charge += debited
        money_due -= debited
    if money_due > 0:
        # Usage beyond every hold (the client over-ran a bucket-only grant): debit what the
        # money can still cover (RFC 4006 §5.6: the server charges what was reported).
        for pocket in wallet.money:
            take = min(money_due, max(pocket.available, 0))
            if take > 0 and ledger.debit(pocket.balance_id, take, cause):
                out.charge += take
                money_due -= take
    elif money_due < 0 and wallet.money:
        # A later chunk of a call can lower a minimum charge topped up earlier (rating Line
        # "minimum"): give the difference back.
        ledger.credit(wallet.money[0].balance_id, -money_due, cause)
        out.charge += money_due
    return out


def debit_now(
    ledger: Ledger,
    wallet: Wallet,
    plan: Plan,
    rated: RatedService,
    units: int,
    now: datetime,
    cause: Cause,
    already_used: int = 0,
) -> tuple[int, int] | None:
    """Immediate event charging (IEC): debit ``units`` at once; None (nothing changed) when the
    wallet cannot pay. Returns (money charged, units priced in money)."""
    remaining = units
    plan_buckets: list[tuple[Pocket, int]] = []
    for pocket in wallet.buckets_for(rated):
        take = min(remaining, pocket.available)
        if take > 0:
            plan_buckets.append((pocket, take))
            remaining -= take
    charge = 0
    if remaining:
        try:
            charge = rating.price(
                plan, rated.usage(remaining), now, already_used=already_used
            ).total
        except (RatingError, ValueError) as exc:
            raise NotRated(5031, str(exc)) from None
        if charge > wallet.money_available:
            return None
    for pocket, take in plan_buckets:
        if not ledger.debit(pocket.balance_id, take, cause):
            raise RuntimeError(f"balance {pocket.balance_id} changed under the account lock")
    due = charge
    for pocket in wallet.money:
        take = min(due, max(pocket.available, 0))
        if take <= 0:
            continue
        if not ledger.debit(pocket.balance_id, take, cause):
            raise RuntimeError(f"balance {pocket.balance_id} changed under the account lock")
        due -= take
    return charge, remaining


def quote(plan: Plan, rated: RatedService, units: int, now: datetime, already_used: int = 0) -> int:
    """Price of ``units`` starting now (CHECK_BALANCE, PRICE_ENQUIRY, REFUND_ACCOUNT)."""
    try:
        return rating.price(plan, rated.usage(units), now, already_used=already_used).total
    except (RatingError, ValueError) as exc:
        raise NotRated(5031, str(exc)) from None
