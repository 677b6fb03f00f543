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


def parse(request: Message) -> CreditControlRequest:
    """A CCR as data; raises AnswerError 5005/5004 (with Failed-AVP) for a bad request."""
    session_id = _required(request, "Session-Id")
    origin_host = _required(request, "Origin-Host")
    origin_realm = _required(request, "Origin-Realm")
    request_type = _enum(request, "CC-Request-Type", RequestType, required=True)
    number = _value(request.first("CC-Request-Number"), "CC-Request-Number", required=True)
    action = _enum(request, "Requested-Action", RequestedAction, required=False)
    subscription_ids = tuple(_subscription_id(avp) for avp in request["Subscription-Id"])
    if request_type in (RequestType.INITIAL, RequestType.EVENT) and not subscription_ids:
        raise AnswerError(
            ResultCode.MISSING_AVP, missing_avp_example("Subscription-Id"), "Subscription-Id"
        )
    mscc = request["Multiple-Services-Credit-Control"]
    services = tuple(_service(avp) for avp in mscc) if mscc else (_single_service(request),)
    return CreditControlRequest(
        session_id=session_id,
        origin_host=origin_host,
        origin_realm=origin_realm,
        request_type=request_type,
        request_number=number,
        service_context_id=request.get("Service-Context-Id"),
        subscription_ids=subscription_ids,
        requested_action=action,
        event_timestamp=_value(request.first("Event-Timestamp"), "Event-Timestamp"),
        services=services,
        multiple_services=bool(mscc),
        termination_cause=_value(request.first("Termination-Cause"), "Termination-Cause"),
        info=_service_information(request.first("Service-Information")),
    )


def _value(avp: Avp | None, name: str, *, required: bool = False) -> Any:
    if avp is None:
        if required:
            raise AnswerError(ResultCode.MISSING_AVP, missing_avp_example(name), f"{name} missing")
        return None
    try:
        return avp.value
    except Exception as exc:  # a value that does not decode as its type
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, f"{name}: {exc}") from None


def _required(request: Message, name: str) -> Any:
    value = _value(request.first(name), name, required=True)
    if value in ("", None):
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, request.first(name), f"{name} empty")
    return value


def _enum(request: Message, name: str, kind: type[IntEnum], *, required: bool) -> Any:
    avp = request.first(name)
    value = _value(avp, name, required=required)
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, f"{name} {value} unknown") from None


def _subscription_id(avp: Avp) -> tuple[int, str]:
    id_type = _value(avp.first("Subscription-Id-Type"), "Subscription-Id-Type")
    data = _value(avp.first("Subscription-Id-Data"), "Subscription-Id-Data")
    if id_type is None or not data:
        raise AnswerError(ResultCode.INVALID_AVP_VALUE, avp, "Subscription-Id incomplete")
    return int(id_type), str(data)


def _units(avp: Avp | None) -> Units | None:
    if avp is None:
        return None
    values = {}
    for attr, name in _UNIT_AVPS:
        child = avp.first(name)
        values[attr] = _value(child, name)
    return Units(**values)


_UNIT_AVPS = (
    ("time", "CC-Time"),
    ("total_octets", "CC-Total-Octets"),
    ("input_octets", "CC-Input-Octets"),
    ("output_octets", "CC-Output-Octets"),
    ("service_specific", "CC-Service-Specific-Units"),
    ("tariff_change_usage", "Tariff-Change-Usage"),
)


def _service(avp: Avp) -> ServiceRequest:
    service_ids = avp["Service-Identifier"]
    return ServiceRequest(
        rating_group=_value(avp.first("Rating-Group"), "Rating-Group"),
        service_id=_value(service_ids[0], "Service-Identifier") if service_ids else None,
        requested=_units(avp.first("Requested-Service-Unit")),
        used=tuple(u for u in (_units(x) for x in avp["Used-Service-Unit"]) if u is not None),
        reporting_reason=_value(avp.first("3GPP-Reporting-Reason"), "3GPP-Reporting-Reason"),
    )


def _single_service(request: Message) -> ServiceRequest:
    """RFC 4006 §5.1.1 single-service session: units at the top level of the CCR."""
    return ServiceRequest(
        rating_group=None,
        service_id=_value(request.first("Service-Identifier"), "Service-Identifier"),
        requested=_units(request.first("Requested-Service-Unit")),
        used=tuple(u for u in (_units(x) for x in request["Used-Service-Unit"]) if u is not None),
    )


def _service_information(avp: Avp | None) -> ServiceInformation:
    ims = avp.first("IMS-Information") if avp is not None else None
    if ims is None:
        return ServiceInformation()
    event = ims.first("Event-Type")
    return ServiceInformation(
        calling_party=_value(ims.first("Calling-Party-Address"), "Calling-Party-Address"),
        called_party=_value(ims.first("Called-Party-Address"), "Called-Party-Address"),
        requested_party=_value(ims.first("Requested-Party-Address"), "Requested-Party-Address"),
        icid=_value(ims.first("IMS-Charging-Identifier"), "IMS-Charging-Identifier"),
        sip_method=_value(event.first("SIP-Method"), "SIP-Method") if event else None,
        node_functionality=_value(ims.first("Node-Functionality"), "Node-Functionality"),
        role_of_node=_value(ims.first("Role-Of-Node"), "Role-Of-Node"),
        user_session_id=_value(ims.first("User-Session-Id"), "User-Session-Id"),
    )
