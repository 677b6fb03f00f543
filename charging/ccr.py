"""Reading a Credit-Control-Request (RFC 4006 §3.1, TS 32.299 §6.4.2) into plain data.

Lenient where real peers differ (notes/ims-peers.md): no top-level Auth-Application-Id is
needed, CC-Request-Number may start at 0, a single-service client may put RSU/USU at the top
level instead of in Multiple-Services-Credit-Control. Strict where the money depends on it:
missing session keys are 5005 and impossible values 5004, both with Failed-AVP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from diam.avp import Fields
from diam.constants import ResultCode
from diam.errors import AnswerError
from diam.message import Avp, Message
from diam.router import missing_avp_example


class RequestType(IntEnum):
    """CC-Request-Type, RFC 4006 §8.3."""

    INITIAL = 1
    UPDATE = 2
    TERMINATION = 3
    EVENT = 4


class RequestedAction(IntEnum):
    """Requested-Action, RFC 4006 §8.41."""

    DIRECT_DEBITING = 0
    REFUND_ACCOUNT = 1
    CHECK_BALANCE = 2
    PRICE_ENQUIRY = 3


class TariffChangeUsage(IntEnum):
    """Tariff-Change-Usage, RFC 4006 §8.27."""

    UNIT_BEFORE_TARIFF_CHANGE = 0
    UNIT_AFTER_TARIFF_CHANGE = 1
    UNIT_INDETERMINATE = 2


@dataclass(frozen=True, slots=True)
class Units:
    """Requested-/Used-Service-Unit contents (RFC 4006 §8.18/§8.19); None = AVP absent."""

    time: int | None = None
    total_octets: int | None = None
    input_octets: int | None = None
    output_octets: int | None = None
    service_specific: int | None = None
    tariff_change_usage: int | None = None

    @property
    def octets(self) -> int | None:
        """Total volume: CC-Total-Octets, else input + output when either is given."""
        if self.total_octets is not None:
            return self.total_octets
        if self.input_octets is None and self.output_octets is None:
            return None
        return (self.input_octets or 0) + (self.output_octets or 0)

    @property
    def is_empty(self) -> bool:
        return self.time is None and self.octets is None and self.service_specific is None


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """One Multiple-Services-Credit-Control (or the top-level single service)."""

    rating_group: int | None
    service_id: int | None
    requested: Units | None
    used: tuple[Units, ...]
    reporting_reason: int | None = None

    @property
    def key(self) -> str:
        """Stable key of the service inside its session."""
        rg = "" if self.rating_group is None else str(self.rating_group)
        si = "" if self.service_id is None else str(self.service_id)
        return f"rg{rg}/si{si}"


@dataclass(frozen=True, slots=True)
class ServiceInformation:
    """IMS-Information fields read for rating and kept for the CDR (TS 32.299 §7.2.77)."""

    calling_party: str | None = None
    called_party: str | None = None
    requested_party: str | None = None
    icid: str | None = None
    sip_method: str | None = None
    node_functionality: int | None = None
    role_of_node: int | None = None
    user_session_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class CreditControlRequest:
    session_id: str
    origin_host: str
    origin_realm: str
    request_type: RequestType
    request_number: int
    service_context_id: str | None
    subscription_ids: tuple[tuple[int, str], ...]
    requested_action: RequestedAction | None
    event_timestamp: datetime | None
    services: tuple[ServiceRequest, ...]
    multiple_services: bool
    termination_cause: int | None
    info: ServiceInformation = field(default_factory=ServiceInformation)


# Each level of a CCR read in one pass (diam.avp.Fields), positions as named here.
_TOP = Fields(
    ("Session-Id", "Origin-Host", "Origin-Realm", "CC-Request-Type", "CC-Request-Number",
     "Requested-Action", "Service-Context-Id", "Event-Timestamp", "Termination-Cause",
     "Service-Information", "Service-Identifier", "Requested-Service-Unit"),
    ("Subscription-Id", "Multiple-Services-Credit-Control", "Used-Service-Unit"),
)  # fmt: skip


def parse(request: Message) -> CreditControlRequest:
    """A CCR as data; raises AnswerError 5005/5004 (with Failed-AVP) for a bad request."""
    (session, origin_host, origin_realm, request_type, number, action, context, timestamp,
     termination, info, service_id, requested, subscriptions, mscc,
     used) = _TOP(request.avps)  # fmt: skip
    session_id = _required(session, "Session-Id")
    origin_host = _required(origin_host, "Origin-Host")
    origin_realm = _required(origin_realm, "Origin-Realm")
    request_type = _enum(request_type, "CC-Request-Type", RequestType, required=True)
    number = _value(number, "CC-Request-Number", required=True)
    action = _enum(action, "Requested-Action", RequestedAction, required=False)
    subscription_ids = tuple(_subscription_id(avp) for avp in subscriptions)
    if request_type in (RequestType.INITIAL, RequestType.EVENT) and not subscription_ids:
        raise AnswerError(
            ResultCode.MISSING_AVP, missing_avp_example("Subscription-Id"), "Subscription-Id"
        )
    services = (
        tuple(_service(avp) for avp in mscc) if mscc
        else (_single_service(service_id, requested, used),)
    )  # fmt: skip
    return CreditControlRequest(
        session_id, origin_host, origin_realm, request_type, number,
        _value(context, "Service-Context-Id"), subscription_ids, action,
        _value(timestamp, "Event-Timestamp"), services, bool(mscc),
        _value(termination, "Termination-Cause"), _service_information(info),
    )  # fmt: skip


def _value(avp: Avp | None, name: str, *, required: bool = False) -> Any:
    if avp is None:
        if required:
            raise AnswerError(ResultCode.MISSING_AVP, missing_avp_example(name), f"{name} missing")
        return None
    try:
        return avp.value
    except Exception as exc:  # a value that does not decode as its type
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, f"{name}: {exc}") from None


def _required(avp: Avp | None, name: str) -> Any:
    value = _value(avp, name, required=True)
    if value in ("", None):
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, f"{name} empty")
    return value


def _enum(avp: Avp | None, name: str, kind: type[IntEnum], *, required: bool) -> Any:
    value = _value(avp, name, required=required)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, f"{name} {value} unknown") from None


_SUBSCRIPTION_ID = Fields(("Subscription-Id-Type", "Subscription-Id-Data"))


def _subscription_id(avp: Avp) -> tuple[int, str]:
    id_type, data = (
        _value(child, name)
        for child, name in zip(_SUBSCRIPTION_ID(avp.value), _SUBSCRIPTION_ID_NAMES, strict=True)
    )
    if id_type is None or not data:
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, "Subscription-Id incomplete")
    return int(id_type), str(data)


_SUBSCRIPTION_ID_NAMES = ("Subscription-Id-Type", "Subscription-Id-Data")
_UNIT_NAMES = (
    "CC-Time",
    "CC-Total-Octets",
    "CC-Input-Octets",
    "CC-Output-Octets",
    "CC-Service-Specific-Units",
    "Tariff-Change-Usage",
)  # Units' fields, in order
_UNITS = Fields(_UNIT_NAMES)


def _units(avp: Avp | None) -> Units | None:
    if avp is None:
        return None
    children = _UNITS(avp.value)
    return Units(*(_value(c, name) for c, name in zip(children, _UNIT_NAMES, strict=True)))


_SERVICE = Fields(
    ("Rating-Group", "Service-Identifier", "Requested-Service-Unit", "3GPP-Reporting-Reason"),
    ("Used-Service-Unit",),
)


def _service(avp: Avp) -> ServiceRequest:
    rating_group, service_id, requested, reason, used = _SERVICE(avp.value)
    return ServiceRequest(
        _value(rating_group, "Rating-Group"),
        _value(service_id, "Service-Identifier"),
        _units(requested),
        tuple(u for u in map(_units, used) if u is not None),
        _value(reason, "3GPP-Reporting-Reason"),
    )


def _single_service(service_id: Avp | None, requested: Avp | None,
                    used: list[Avp]) -> ServiceRequest:  # fmt: skip
    """RFC 4006 §5.1.1 single-service session: units at the top level of the CCR."""
    return ServiceRequest(
        None,
        _value(service_id, "Service-Identifier"),
        _units(requested),
        tuple(u for u in map(_units, used) if u is not None),
    )


_IMS_NAMES = ("Calling-Party-Address", "Called-Party-Address", "Requested-Party-Address",
              "IMS-Charging-Identifier", "Event-Type", "Node-Functionality", "Role-Of-Node",
              "User-Session-Id")  # fmt: skip
_IMS = Fields(_IMS_NAMES)
_IMS_INFORMATION = Fields(("IMS-Information",))
_SIP_METHOD = Fields(("SIP-Method",))


def _service_information(avp: Avp | None) -> ServiceInformation:
    ims = _IMS_INFORMATION(avp.value)[0] if avp is not None else None
    if ims is None:
        return ServiceInformation()
    values = [_value(child, name) if name != "Event-Type" else child
              for child, name in zip(_IMS(ims.value), _IMS_NAMES, strict=True)]  # fmt: skip
    event = values[4]
    values[4] = _value(_SIP_METHOD(event.value)[0], "SIP-Method") if event is not None else None
    return ServiceInformation(*values)
