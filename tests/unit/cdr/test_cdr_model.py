"""The CDR model: TS 32.298 keys on the wire, stable ids, consistency rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.cdr import ChargingDataRecord, make_cdr_id

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def record(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "cdrId": make_cdr_id("ocs1", "sess;1"),
        "recordType": "sCSCFRecord",
        "servedSubscriptionIds": [
            {"subscriptionIDType": "END_USER_E164", "subscriptionIDData": "491711234567"}
        ],
        "sessionId": "sess;1",
        "iMS-Charging-Identifier": "icid-1",
        "callingPartyAddress": "sip:+491711234567@ims.example",
        "calledPartyAddress": "tel:+4930123456",
        "recordOpeningTime": T0.isoformat(),
        "recordClosureTime": (T0 + timedelta(seconds=95)).isoformat(),
        "duration": 95,
        "causeForRecordClosing": "normalRelease",
        "listOfServiceData": [{"ratingGroup": 100, "timeUsage": 95, "charge": 240}],
        "charge": 240,
        "currency": "EUR",
        "tariffId": "voice-de",
        "tariffVersion": "3",
        "nodeId": "ocs1",
        "localRecordSequenceNumber": 7,
    }
    body.update(overrides)
    return body


def test_round_trip_uses_3gpp_names() -> None:
    cdr = ChargingDataRecord.model_validate(record())
    wire = json.loads(cdr.model_dump_json())
    assert wire["iMS-Charging-Identifier"] == "icid-1"
    assert wire["listOfServiceData"][0] == {
        "ratingGroup": 100,
        "serviceIdentifier": None,
        "timeUsage": 95,
        "dataVolumeUplink": None,
        "dataVolumeDownlink": None,
        "serviceSpecificUnits": None,
        "timeOfFirstUsage": None,
        "timeOfLastUsage": None,
        "resultCode": None,
        "charge": 240,
    }
    assert wire["schemaVersion"] == "1.0"
    assert ChargingDataRecord.model_validate_json(cdr.model_dump_json()) == cdr
    assert cdr.partition_key == "491711234567"


def test_cdr_id_is_stable_and_distinct_per_partial() -> None:
    assert make_cdr_id("ocs1", "s") == make_cdr_id("ocs1", "s")
    ids = {
        make_cdr_id("ocs1", "s"),
        make_cdr_id("ocs1", "s", 1),
        make_cdr_id("ocs1", "s", 2),
        make_cdr_id("ocs2", "s"),
        make_cdr_id("ocs1", "t"),
    }
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"charge": 241}, "sum of listOfServiceData"),
        ({"recordClosureTime": (T0 - timedelta(seconds=1)).isoformat()}, "before"),
        ({"causeForRecordClosing": "timeLimit"}, "recordSequenceNumber"),
        ({"currency": "eur"}, "currency"),
        ({"charge": 2.5}, "charge"),
        ({"recordOpeningTime": "2026-03-01T12:00:00"}, "timezone"),
        ({"unknownField": 1}, "unknownField"),
    ],
)
def test_rejects_inconsistent_records(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ChargingDataRecord.model_validate(record(**overrides))


def test_partial_record() -> None:
    cdr = ChargingDataRecord.model_validate(
        record(
            causeForRecordClosing="timeLimit",
            recordSequenceNumber=1,
            cdrId=make_cdr_id("ocs1", "sess;1", 1),
        )
    )
    assert cdr.is_partial
