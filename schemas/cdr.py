"""The charging data record (CDR) OpenPCC exports to billing.

JSON keys are the ASN.1 field names of 3GPP TS 32.298 (``recordType``, ``servedSubscriptionIds``,
``iMS-Charging-Identifier``, ``listOfServiceData`` ...), so an OSS/BSS that knows the standard
recognises them; Python code uses snake_case attribute names. Dumps use the aliases by default.

Versioning: ``schemaVersion`` is ``MAJOR.MINOR``. A MINOR bump only adds optional fields; a MAJOR
bump renames, removes or retypes one. Consumers must ignore keys they do not know.

Identity: ``cdrId`` is stable. It is derived (UUIDv5) from the node, the Diameter Session-Id and the
record's sequence in that session, so rebuilding a record after a retry yields the same id and
consumers deduplicate by it (the exporter delivers at least once).

Partial records (TS 32.298 "Record Sequence Number", "Cause for Record Closing"): a long session
is split into records closed by ``timeLimit`` or ``volumeLimit``; each carries
``recordSequenceNumber`` (1, 2, ...), and the last one, closed by the session's real cause, carries
the next number. A session reported in a single record has no ``recordSequenceNumber``.

Money: every ``charge`` is an integer in minor units of ``currency`` (ISO 4217), never a float.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.0"

#: Namespace of the UUIDv5 ``cdrId`` (a fixed, project-specific UUID; never change it).
CDR_ID_NAMESPACE = uuid.UUID("0e7a1f9c-4b3d-5d2e-9a61-6f70656e7063")


class RecordType(StrEnum):
    """TS 32.298 ``RecordType`` values OpenPCC writes (the name, not the ASN.1 integer)."""

    S_CSCF = "sCSCFRecord"  # 63: IMS session seen by the S-CSCF (VoLTE call, Ro/IMS)
    P_CSCF = "pCSCFRecord"  # 64
    PGW = "pGWRecord"  # 85: data bearer (Gy)
    CHARGING_FUNCTION = "chargingFunctionRecord"  # 200: converged charging (TS 32.298 §5.2.5.x)


class CauseForRecordClosing(StrEnum):
    """TS 32.298 ``CauseForRecClosing`` / IMS ``Cause-For-Record-Closing`` names."""

    NORMAL_RELEASE = "normalRelease"  # 0
    ABNORMAL_RELEASE = "abnormalRelease"  # 4: e.g. session swept after Validity-Time + Tx
    VOLUME_LIMIT = "volumeLimit"  # 16: partial record, volume limit reached
    TIME_LIMIT = "timeLimit"  # 17: partial record, interval elapsed
    MANAGEMENT_INTERVENTION = "managementIntervention"  # 20: operator/API termination
    UNSUCCESSFUL_SERVICE_DELIVERY = "unSuccessfulServiceDelivery"  # IMS (1): credit denied etc.

    @property
    def is_partial(self) -> bool:
        """True for the causes that close an intermediate (partial) record."""
        return self in (CauseForRecordClosing.VOLUME_LIMIT, CauseForRecordClosing.TIME_LIMIT)


class SubscriptionIdType(StrEnum):
    """RFC 4006 §8.47 Subscription-Id-Type, as named in TS 32.298 ``SubscriptionIDType``."""

    END_USER_E164 = "END_USER_E164"
    END_USER_IMSI = "END_USER_IMSI"
    END_USER_SIP_URI = "END_USER_SIP_URI"
    END_USER_NAI = "END_USER_NAI"
    END_USER_PRIVATE = "END_USER_PRIVATE"


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )


class SubscriptionId(_Model):
    """One served subscription id (TS 32.298 ``SubscriptionID``)."""

    subscription_id_type: SubscriptionIdType = Field(alias="subscriptionIDType")
    subscription_id_data: str = Field(alias="subscriptionIDData", min_length=1, max_length=256)


class ServiceData(_Model):
    """Usage and charge of one rating group (TS 32.298 ``ChangeOfServiceCondition`` subset).

    Units follow TS 32.299: ``timeUsage`` seconds, volumes octets; ``charge`` minor units.
    """

    rating_group: int = Field(alias="ratingGroup", ge=0, le=0xFFFFFFFF)
    service_identifier: int | None = Field(default=None, alias="serviceIdentifier", ge=0)
    time_usage: int | None = Field(default=None, alias="timeUsage", ge=0)
    data_volume_uplink: int | None = Field(default=None, alias="dataVolumeUplink", ge=0)
    data_volume_downlink: int | None = Field(default=None, alias="dataVolumeDownlink", ge=0)
    service_specific_units: int | None = Field(default=None, alias="serviceSpecificUnits", ge=0)
    time_of_first_usage: AwareDatetime | None = Field(default=None, alias="timeOfFirstUsage")
    time_of_last_usage: AwareDatetime | None = Field(default=None, alias="timeOfLastUsage")
    result_code: int | None = Field(default=None, alias="resultCode", ge=0)
    charge: int = Field(alias="charge", ge=0, description="minor units of the record's currency")

    @property
    def total_volume(self) -> int:
        """Uplink + downlink octets (0 when not reported)."""
        return (self.data_volume_uplink or 0) + (self.data_volume_downlink or 0)


def make_cdr_id(node_id: str, session_id: str, record_sequence_number: int | None = None) -> str:
    """The stable ``cdrId`` of a session's record (``None`` = the session's only record)."""
    seq = "" if record_sequence_number is None else str(record_sequence_number)
    return str(uuid.uuid5(CDR_ID_NAMESPACE, f"{node_id}\x1f{session_id}\x1f{seq}"))


class ChargingDataRecord(_Model):
    """One CDR: a closed (or partial) charged session with per-rating-group usage."""

    schema_version: Literal["1.0"] = Field(default=SCHEMA_VERSION, alias="schemaVersion")
    cdr_id: str = Field(alias="cdrId", min_length=1, max_length=64)
    record_type: RecordType = Field(alias="recordType")
    served_subscription_ids: tuple[SubscriptionId, ...] = Field(
        alias="servedSubscriptionIds", min_length=1
    )
    session_id: str = Field(alias="sessionId", min_length=1, description="Diameter Session-Id")
    ims_charging_identifier: str | None = Field(default=None, alias="iMS-Charging-Identifier")
    calling_party_address: str | None = Field(default=None, alias="callingPartyAddress")
    called_party_address: str | None = Field(default=None, alias="calledPartyAddress")
    record_opening_time: AwareDatetime = Field(alias="recordOpeningTime")
    record_closure_time: AwareDatetime = Field(alias="recordClosureTime")
    duration: int = Field(alias="duration", ge=0, description="seconds")
    cause_for_record_closing: CauseForRecordClosing = Field(alias="causeForRecordClosing")
    list_of_service_data: tuple[ServiceData, ...] = Field(alias="listOfServiceData")
    charge: int = Field(alias="charge", ge=0, description="minor units of currency")
    currency: str = Field(alias="currency", pattern=r"^[A-Z]{3}$", description="ISO 4217")
    tariff_id: str | None = Field(default=None, alias="tariffId")
    tariff_version: str | None = Field(default=None, alias="tariffVersion")
    node_id: str = Field(alias="nodeId", min_length=1)
    local_record_sequence_number: int = Field(alias="localRecordSequenceNumber", ge=0)
    record_sequence_number: int | None = Field(
        default=None, alias="recordSequenceNumber", ge=1, description="partial records only"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ChargingDataRecord:
        if self.record_closure_time < self.record_opening_time:
            raise ValueError("recordClosureTime is before recordOpeningTime")
        if sum(s.charge for s in self.list_of_service_data) != self.charge:
            raise ValueError("charge must equal the sum of listOfServiceData charges")
        if self.cause_for_record_closing.is_partial and self.record_sequence_number is None:
            raise ValueError("a partial record (time/volume limit) needs recordSequenceNumber")
        return self

    @property
    def is_partial(self) -> bool:
        """True when the record is one of several for its session."""
        return self.record_sequence_number is not None

    @property
    def partition_key(self) -> str:
        """The Kafka message key: the first served subscription id (keeps a subscriber ordered)."""
        return self.served_subscription_ids[0].subscription_id_data

    @property
    def closed_at(self) -> datetime:
        """When the record was closed (for export time windows)."""
        return self.record_closure_time


def cdr_json_schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of a serialised ``ChargingDataRecord``."""
    schema = ChargingDataRecord.model_json_schema(by_alias=True, mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://openpcc.org/schemas/cdr-{SCHEMA_VERSION}.json",
        **schema,
    }
