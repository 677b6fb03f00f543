"""Building the Credit-Control-Answer (RFC 4006 §3.2, TS 32.299 §6.4.3) from an outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from charging.ccr import CreditControlRequest
from charging.grants import UnitKind
from diam.constants import APP_CREDIT_CONTROL, ResultCode
from diam.message import Avp, Message
from schemas.provisioning import FinalUnitAction, RedirectAddressType

FINAL_UNIT_ACTION = {"TERMINATE": 0, "REDIRECT": 1, "RESTRICT_ACCESS": 2}
REDIRECT_ADDRESS_TYPE = {"IPV4_ADDRESS": 0, "IPV6_ADDRESS": 1, "URL": 2, "SIP_URI": 3}
FAILURE_HANDLING = {"TERMINATE": 0, "CONTINUE": 1, "RETRY_AND_TERMINATE": 2}
#: Check-Balance-Result, RFC 4006 §8.6.
ENOUGH_CREDIT, NO_CREDIT = 0, 1

#: ISO 4217 numeric codes for Currency-Code (RFC 4006 §8.11) of the currencies tariffs use most.
CURRENCY_NUMERIC = {
    "EUR": 978, "USD": 840, "GBP": 826, "CHF": 756, "SEK": 752, "NOK": 578, "DKK": 208,
    "PLN": 985, "CZK": 203, "HUF": 348, "RON": 946, "BGN": 975, "ISK": 352, "TRY": 949,
    "JPY": 392, "CNY": 156, "INR": 356, "KRW": 410, "AUD": 36, "NZD": 554, "CAD": 124,
    "BRL": 986, "MXN": 484, "ZAR": 710, "NGN": 566, "KES": 404, "EGP": 818, "AED": 784,
    "SAR": 682, "KWD": 414, "BHD": 48, "OMR": 512, "JOD": 400, "ILS": 376, "RUB": 643,
    "UAH": 980, "SGD": 702, "HKD": 344, "THB": 764, "IDR": 360, "PHP": 608, "MYR": 458,
}  # fmt: skip


#: AVPs of small fixed values, encoded once and shared by every answer that carries them.
_SHARED: dict[tuple[str, int], Avp] = {}
_SHARED_MAX = 4096


def shared(name: str, value: int) -> Avp:
    """AVP ``name`` with integer ``value``, built once per process and reused (its octets are
    appended as they are); callers never modify it."""
    avp = _SHARED.get((name, value))
    if avp is None:
        avp = Avp.from_wire(Avp.new(name, value).wire())
        if len(_SHARED) < _SHARED_MAX:
            _SHARED[(name, value)] = avp
    return avp


@dataclass(frozen=True, slots=True)
class FinalUnit:
    """Final-Unit-Indication (RFC 4006 §8.34) from the subscriber's plan."""

    action: FinalUnitAction = FinalUnitAction.TERMINATE
    redirect_address_type: RedirectAddressType | None = None
    redirect_server: str | None = None
    restriction_filter_rules: tuple[str, ...] = ()

    def avp(self) -> Avp:
        children: list[Any] = [("Final-Unit-Action", FINAL_UNIT_ACTION[self.action.value])]
        if self.action is FinalUnitAction.REDIRECT and self.redirect_server:
            children.append(
                (
                    "Redirect-Server",
                    [
                        (
                            "Redirect-Address-Type",
                            REDIRECT_ADDRESS_TYPE[self.redirect_address_type or "URL"],
                        ),
                        ("Redirect-Server-Address", self.redirect_server),
                    ],
                )
            )
        if self.action is FinalUnitAction.RESTRICT_ACCESS:
            children.extend(("Restriction-Filter-Rule", r) for r in self.restriction_filter_rules)
        return Avp.new("Final-Unit-Indication", children)


@dataclass(slots=True)
class ServiceAnswer:
    """One Multiple-Services-Credit-Control of the answer."""

    rating_group: int | None
    service_id: int | None
    result_code: int = ResultCode.SUCCESS
    kind: UnitKind | None = None
    granted: int | None = None
    validity_time: int | None = None
    threshold: int | None = None
    final_unit: FinalUnit | None = None
    quota_holding_time: int | None = None
    tariff_time_change: datetime | None = None

    def granted_avp(self) -> Avp | None:
        if self.granted is None or self.kind is None:
            return None
        name = {
            UnitKind.SECONDS: "CC-Time",
            UnitKind.OCTETS: "CC-Total-Octets",
            UnitKind.EVENTS: "CC-Service-Specific-Units",
        }[self.kind]
        children: list[Any] = []
        if self.tariff_time_change is not None:
            children.append(("Tariff-Time-Change", self.tariff_time_change))
        children.append(shared(name, self.granted))
        return Avp.new("Granted-Service-Unit", children)

    def threshold_avp(self) -> Avp | None:
        if not self.threshold or self.kind is None:
            return None
        name = {
            UnitKind.SECONDS: "Time-Quota-Threshold",
            UnitKind.OCTETS: "Volume-Quota-Threshold",
            UnitKind.EVENTS: "Unit-Quota-Threshold",
        }[self.kind]
        return shared(name, self.threshold)

    def avp(self) -> Avp:
        children: list[Any] = []
        gsu = self.granted_avp()
        if gsu is not None:
            children.append(gsu)
        if self.service_id is not None:
            children.append(shared("Service-Identifier", self.service_id))
        if self.rating_group is not None:
            children.append(shared("Rating-Group", self.rating_group))
        if self.validity_time is not None:
            children.append(shared("Validity-Time", self.validity_time))
        children.append(shared("Result-Code", int(self.result_code)))
        if self.final_unit is not None:
            children.append(self.final_unit.avp())
        threshold = self.threshold_avp()
        if threshold is not None:
            children.append(threshold)
        if self.quota_holding_time:
            children.append(shared("Quota-Holding-Time", self.quota_holding_time))
        return Avp.new("Multiple-Services-Credit-Control", children)


@dataclass(slots=True)
class Outcome:
    """Everything the answer to one CCR says."""

    result_code: int = ResultCode.SUCCESS
    services: list[ServiceAnswer] = field(default_factory=list)
    failure_handling: str | None = None
    cost: tuple[int, str] | None = None  # (minor units, ISO 4217 alpha) for Cost-Information
    check_balance: int | None = None
    error_message: str | None = None
    failed_avp: Avp | None = None


def cost_information(amount: int, currency: str, exponent: int) -> Avp:
    """Cost-Information (RFC 4006 §8.7): Unit-Value = amount × 10^-exponent."""
    return Avp.new(
        "Cost-Information",
        [
            ("Unit-Value", [("Value-Digits", amount), ("Exponent", -exponent)]),
            ("Currency-Code", CURRENCY_NUMERIC[currency]),
        ],
    )


def build(request: Message, ccr: CreditControlRequest, outcome: Outcome, exponent: int) -> Message:
    """The CCA (without Origin-Host/Realm: the answering node adds its own)."""
    answer = request.answer(
        outcome.result_code,
        shared("Auth-Application-Id", APP_CREDIT_CONTROL),
        shared("CC-Request-Type", int(ccr.request_type)),
        shared("CC-Request-Number", ccr.request_number),
    )
    if outcome.error_message:
        answer.add(("Error-Message", outcome.error_message))
    if outcome.failed_avp is not None:
        answer.add(Avp.new("Failed-AVP", [outcome.failed_avp]))
    if ccr.multiple_services:
        answer.add(*(s.avp() for s in outcome.services))
    elif outcome.services:
        single = outcome.services[0]
        gsu = single.granted_avp()
        if gsu is not None:
            answer.add(gsu)
        if single.final_unit is not None:
            answer.add(single.final_unit.avp())
    if outcome.failure_handling:
        answer.add(shared("Credit-Control-Failure-Handling",
                          FAILURE_HANDLING[outcome.failure_handling]))  # fmt: skip
    if outcome.cost is not None:
        answer.add(cost_information(outcome.cost[0], outcome.cost[1], exponent))
    if outcome.check_balance is not None:
        answer.add(("Check-Balance-Result", outcome.check_balance))
    return answer
