"""docs/cdr.schema.json is the generated JSON Schema, and it accepts/rejects like the model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from schemas.cdr import cdr_json_schema

ROOT = Path(__file__).resolve().parents[3]
PUBLISHED = ROOT / "docs" / "cdr.schema.json"


def test_published_schema_is_the_generated_one() -> None:
    generated = subprocess.run(
        [sys.executable, "-m", "openpcc.cli", "cdr", "schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert PUBLISHED.read_text(encoding="utf-8") == generated, (
        "regenerate: openpcc cdr schema > docs/cdr.schema.json"
    )
    assert json.loads(generated) == cdr_json_schema()


def _record() -> dict[str, object]:
    return {
        "schemaVersion": "1.0",
        "cdrId": "5f0c6a52-7d7e-5b7b-9d5c-1f2e3d4c5b6a",
        "recordType": "sCSCFRecord",
        "servedSubscriptionIds": [
            {"subscriptionIDType": "END_USER_E164", "subscriptionIDData": "491711234567"}
        ],
        "sessionId": "s;1",
        "recordOpeningTime": "2026-03-01T12:00:00Z",
        "recordClosureTime": "2026-03-01T12:01:00Z",
        "duration": 60,
        "causeForRecordClosing": "normalRelease",
        "listOfServiceData": [{"ratingGroup": 100, "timeUsage": 60, "charge": 120}],
        "charge": 120,
        "currency": "EUR",
        "nodeId": "ocs1",
        "localRecordSequenceNumber": 1,
    }


def test_schema_accepts_a_record() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text()))
    assert list(validator.iter_errors(_record())) == []


@pytest.mark.parametrize(
    "broken",
    [
        {"charge": 1.5},
        {"currency": "euro"},
        {"causeForRecordClosing": "hangup"},
        {"schemaVersion": "2.0"},
        {"servedSubscriptionIds": []},
    ],
)
def test_schema_rejects_a_broken_record(broken: dict[str, object]) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(PUBLISHED.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**_record(), **broken})
