"""Building the charging data record of a closed session or an immediate event (TS 32.298)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from charging import outbox
from charging.cdr.partial import (
    PartialRecordPolicy,
    next_record_sequence_number,
    partial_record_due,
)
from charging.identities import SubscriptionIdType as IdType
from charging.unit_of_work import BatchContext, SessionState
from rating.plan import Plan
from rating.timebands import epoch_seconds
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
    opened_at: datetime | None = None,
    record_sequence_number: int | None = None,
) -> ChargingDataRecord:
    """A CDR from a session row (``service_information`` JSON included) and its usage rows.

    ``opened_at`` and ``record_sequence_number`` describe one of several partial records of a
    long session (TS 32.298 Record Sequence Number); by default the record covers the session.
    """
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
    opened: datetime = opened_at or session["opened_at"]
    if info.get("ims"):
        record_type = RecordType.S_CSCF
    elif any(row["volume_uplink"] or row["volume_downlink"] for row in usage):
        record_type = RecordType.PGW
    else:
        record_type = RecordType.CHARGING_FUNCTION
    ims = info.get("ims") or {}
    return ChargingDataRecord(
        cdrId=make_cdr_id(node_id, session["session_id"], record_sequence_number),
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
        localRecordSequenceNumber=sequence * 1000 + (record_sequence_number or 0),
        recordSequenceNumber=record_sequence_number,
    )


def version(plan: Plan | None, at: datetime) -> str | None:
    """The tariff version (its effective_from) in force at ``at``."""
    if plan is None:
        return None
    return plan.version_at(epoch_seconds(at)).effective_from.isoformat()


#: Usage counters a partial record reports the increase of.
_COUNTERS = ("time_usage", "volume_uplink", "volume_downlink", "service_units", "charge")


def _since(row: dict[str, Any], base: dict[str, int]) -> dict[str, Any]:
    """A usage row reduced by what earlier partial records reported."""
    return {**row, **{f: row[f] - base.get(f, 0) for f in _COUNTERS}}


def queue_record(
    ctx: BatchContext, state: SessionState, plan: Plan | None, node_id: str,
    cause: CauseForRecordClosing, sequence: int | None,
) -> None:  # fmt: skip
    """Queue (in the batch's outbox rows) the CDR of the session's usage since its previous
    partial record; ``sequence`` None = the session's only record."""
    info = state.row.get("service_information") or {}
    mark = info.get("record") or {}
    base = mark.get("base", {})
    opened = mark.get("opened_at")
    ctx.outbox.append(
        outbox.row(
            build_record(
                node_id=node_id,
                sequence=state.pk,
                session=state.row,
                usage=[_since(row, base.get(key, {})) for key, row in state.usage.items()],
                closed_at=ctx.now,
                cause=cause,
                currency=state.subscription.currency,
                tariff=plan.name if plan else None,
                tariff_version=version(plan, state.row["opened_at"]),
                opened_at=datetime.fromisoformat(opened) if opened else None,
                record_sequence_number=sequence,
            )
        )
    )


def maybe_partial(
    ctx: BatchContext, state: SessionState, plan: Plan, node_id: str,
    policy: PartialRecordPolicy,
) -> None:  # fmt: skip
    """Close an intermediate CDR of a long session when ``policy`` says so (TS 32.298)."""
    if not policy.enabled:
        return
    info = dict(state.row.get("service_information") or {})
    mark = info.get("record") or {}
    base = mark.get("base", {})
    volume = sum(
        row["volume_uplink"] + row["volume_downlink"]
        - base.get(key, {}).get("volume_uplink", 0) - base.get(key, {}).get("volume_downlink", 0)
        for key, row in state.usage.items()
    )  # fmt: skip
    opened = mark.get("opened_at")
    due = partial_record_due(
        policy,
        record_opened_at=datetime.fromisoformat(opened) if opened else state.row["opened_at"],
        now=ctx.now,
        volume_octets=volume,
    )
    if due is None:
        return
    sequence = next_record_sequence_number(int(state.row["cdr_sequence"] or 0) or None)
    queue_record(ctx, state, plan, node_id, due, sequence)
    info["record"] = {
        "opened_at": ctx.now.isoformat(),
        "base": {key: {f: row[f] for f in _COUNTERS} for key, row in state.usage.items()},
    }
    ctx.update_session(state, cdr_sequence=sequence, service_information=info)
