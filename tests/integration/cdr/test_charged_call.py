"""A charged VoLTE call through the OpenPCC process (Ro over a real Diameter connection) ends as
exactly one CDR: in Kafka when OPENPCC_KAFKA_BOOTSTRAP is set, else in the JSON-lines files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy import func, select

from charging.models import CdrOutbox
from openpcc.app import build_app, serve
from schemas.cdr import cdr_json_schema
from schemas.settings import Settings
from tests.fixtures.ocs import (
    INITIAL,
    TERMINATION,
    TEST_TARIFF,
    UPDATE,
    account,
    balance,
    ccr,
    ims,
    journal_causes,
    mscc,
    ro_client,
    subscriber,
    units,
)

SCHEMA = jsonschema.Draft202012Validator(cdr_json_schema())
CALLER, CALLEE = "sip:+491700000001@ims.test", "tel:+4915112345678"  # 0.05 + 0.12/min, 60/1
SESSION = "scscf.ims.test;1732540000;42"


def settings_for(tmp_path: Path, url: str, **cdr: Any) -> Settings:
    (tmp_path / "tariff.yaml").write_text(TEST_TARIFF)
    spec = {
        "plans": [{"name": "prepaid", "tariff": "Test"}],
        "accounts": [account("alice", 1000)],
        "subscribers": [subscriber("alice", "491700000001")],
    }
    (tmp_path / "provisioning.yaml").write_text(yaml.safe_dump(spec))
    return Settings(
        database_url=url,
        diameter_host="127.0.0.1",
        diameter_port=0,
        diameter_origin_host="ocs.test",
        diameter_origin_realm="test",
        diameter_applications="ro",
        provisioning=str(tmp_path / "provisioning.yaml"),
        charging_tariffs=str(tmp_path / "tariff.yaml"),
        cdr_poll_seconds=0.05,
        **cdr,
    )


async def charged_call(settings: Settings) -> Any:
    """Run OpenPCC, make a 145 s call (I, U, U, T + a retransmitted T), wait until the exporter
    has its CDR, stop OpenPCC. Returns the app (its database stays open)."""
    app = build_app(settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(app, stop=stop, on_ready=lambda _: ready.set()))
    await asyncio.wait_for(ready.wait(), 30)
    port = app.listeners[0].bound[1]
    voice = ims(CALLEE, CALLER, icid="icid-42")
    async with ro_client(port) as client:
        first = ccr(SESSION, INITIAL, 0, mscc(rg=100, sid=1000, rsu=units(time=60)), voice)
        assert (await client.send(first)).get("Result-Code") == 2001
        for n in (1, 2):
            used = mscc(rg=100, sid=1000, rsu=units(time=60), usu=units(time=60))
            assert (await client.send(ccr(SESSION, UPDATE, n, used, voice))).get(
                "Result-Code"
            ) == 2001
        final = ccr(SESSION, TERMINATION, 3, mscc(rg=100, sid=1000, usu=units(time=25)), voice,
                    extra=[("Termination-Cause", 1)])  # fmt: skip
        assert (await client.send(final)).get("Result-Code") == 2001
        again = ccr(SESSION, TERMINATION, 3, mscc(rg=100, sid=1000, usu=units(time=25)), voice,
                    extra=[("Termination-Cause", 1)])  # fmt: skip
        assert (await client.send(again)).get("Result-Code") == 2001  # answered, not recharged
    engine = app.database()
    query = select(func.count()).where(CdrOutbox.sent_at.is_(None))
    for _ in range(600):
        with engine.connect() as connection:
            if connection.execute(query).scalar_one() == 0:
                break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(server, 60)
    return app


def check_cdr(cdr: dict[str, Any], app: Any) -> None:
    """The CDR says what the Diameter exchange and the ledger say."""
    SCHEMA.validate(cdr)
    engine = app.database()
    debits = [d for cause, d, _ in journal_causes(engine, SESSION) if cause == "debit"]
    assert cdr["charge"] == -sum(debits) == 34  # 0.05 + 145/60 × 0.12 → 0.34 EUR
    assert balance(engine, "alice") == (1000 - 34, 0)
    assert cdr["currency"] == "EUR" and cdr["tariffId"] == "Test"
    assert cdr["sessionId"] == SESSION and cdr["iMS-Charging-Identifier"] == "icid-42"
    assert cdr["callingPartyAddress"] == CALLER and cdr["calledPartyAddress"] == CALLEE
    assert cdr["causeForRecordClosing"] == "normalRelease"
    assert cdr["recordType"] == "sCSCFRecord" and cdr["nodeId"]
    assert cdr["servedSubscriptionIds"] == [
        {"subscriptionIDType": "END_USER_E164", "subscriptionIDData": "491700000001"}
    ]
    [service] = cdr["listOfServiceData"]
    assert (service["ratingGroup"], service["serviceIdentifier"]) == (100, 1000)
    assert service["timeUsage"] == 145 and service["charge"] == 34


@pytest.mark.postgres
@pytest.mark.kafka
def test_charged_call_gives_exactly_one_cdr_in_kafka(postgres_url, kafka_topic, tmp_path) -> None:
    settings = settings_for(
        tmp_path, postgres_url, kafka_bootstrap=kafka_topic.bootstrap, kafka_topic=kafka_topic.name
    )
    app = asyncio.run(charged_call(settings))
    try:
        [record] = kafka_topic.consume_all()
        assert record.key == b"491700000001"
        cdr = json.loads(record.value)
        assert dict(record.headers)["cdrId"] == cdr["cdrId"].encode()
        check_cdr(cdr, app)
    finally:
        app.database().dispose()


def test_without_kafka_the_cdr_goes_to_the_jsonl_file(sqlite_url, tmp_path) -> None:
    cdr_dir = tmp_path / "cdr"
    settings = settings_for(tmp_path, sqlite_url, cdr_dir=str(cdr_dir), kafka_bootstrap="")
    app = asyncio.run(charged_call(settings))
    try:
        [path] = cdr_dir.glob("*")
        assert path.suffix == ".jsonl", "the file is completed when OpenPCC stops"
        [line] = path.read_text().splitlines()
        check_cdr(json.loads(line), app)
    finally:
        app.database().dispose()
