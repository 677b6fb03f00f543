"""Building the charging data record of a closed session or an immediate event (TS 32.298)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from charging.identities import SubscriptionIdType as IdType
from schemas.cdr import (
    CauseForRecordClosing,
    ChargingDataRecord,
    RecordType,
    ServiceData,
    SubscriptionId,
    SubscriptionIdType,
    make_cdr_id,
)

#: Termination-Cause (RFC 6733 §8.15) → cause for record closing.
_NORMAL_TERMINATIONS = {None, 1, 4}  # (absent), DIAMETER_LOGOUT, DIAMETER_SESSION_TIMEOUT


def closing_cause(termination_cause: int | None) -> CauseForRecordClosing:
    if termination_cause in _NORMAL_TERMINATIONS:
        return CauseForRecordClosing.NORMAL_RELEASE
    if termination_cause == 3:  # DIAMETER_BAD_ANSWER / administrative
        return CauseForRecordClosing.MANAGEMENT_INTERVENTION
    return CauseForRecordClosing.ABNORMAL_RELEASE


def build_record(
    *,
    node_id: str,
    sequence: int,
    session: dict[str, Any],
    usage: Sequence[dict[str, Any]],
    closed_at: datetime,
    cause: CauseForRecordClosing,
    currency: str,
    tariff: str | None,
    tariff_version: str | None,
) -> ChargingDataRecord:
    """A CDR from a session row (``service_information`` JSON included) and its usage rows."""
    info = session.get("service_information") or {}
    ids = [
        SubscriptionId(
            subscriptionIDType=SubscriptionIdType[IdType(int(t)).name],
            subscriptionIDData=str(d)[:256],
        )
        for t, d in info.get("subscription_ids", [])
        if int(t) in IdType._value2member_map_
    ]
    services = tuple(
        ServiceData(
            ratingGroup=row["rating_group"] if row["rating_group"] is not None else 0,
            serviceIdentifier=row["service_id"],
            timeUsage=row["time_usage"] or None,
            dataVolumeUplink=row["volume_uplink"] or None,
            dataVolumeDownlink=row["volume_downlink"] or None,
            serviceSpecificUnits=row["service_units"] or None,
            timeOfFirstUsage=row["first_usage_at"],
            timeOfLastUsage=row["last_usage_at"],
            charge=row["charge"],
        )
        for row in usage
    )
    opened: datetime = session["opened_at"]
    if info.get("ims"):
        record_type = RecordType.S_CSCF
    elif any(row["volume_uplink"] or row["volume_downlink"] for row in usage):
        record_type = RecordType.PGW
    else:
        record_type = RecordType.CHARGING_FUNCTION
    ims = info.get("ims") or {}
    return ChargingDataRecord(
        cdrId=make_cdr_id(node_id, session["session_id"]),
        recordType=record_type,
        servedSubscriptionIds=tuple(ids),
        sessionId=session["session_id"],
        **{"iMS-Charging-Identifier": ims.get("icid")},
        callingPartyAddress=ims.get("calling_party"),
        calledPartyAddress=ims.get("called_party"),
        recordOpeningTime=opened,
        recordClosureTime=max(closed_at, opened),
        duration=max(0, int((closed_at - opened).total_seconds())),
        causeForRecordClosing=cause,
        listOfServiceData=services,
        charge=sum(s.charge for s in services),
        currency=currency,
        tariffId=tariff,
        tariffVersion=tariff_version,
        nodeId=node_id,
        localRecordSequenceNumber=sequence,
    )
