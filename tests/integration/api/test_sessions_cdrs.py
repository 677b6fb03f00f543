"""Live sessions, termination, CDRs and the top-up → Gx RAR path, over real Diameter connections
and the real API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from diam.constants import APP_CREDIT_CONTROL, APP_GX, CMD_ABORT_SESSION, CMD_RE_AUTH
from diam.message import Message
from schemas.api import Role
from tests.fixtures.ocs import INITIAL, TERMINATION, ccr, ims, mscc, units

CALLEE = "tel:+4915112345678"  # test tariff DE_MOBILE: 0.05 connect + 0.12/min, 60/1


def _ambr(msg: Message) -> tuple[int, int]:
    qos = msg.first("QoS-Information")
    assert qos is not None
    return qos.get("APN-Aggregate-Max-Bitrate-UL"), qos.get("APN-Aggregate-Max-Bitrate-DL")


def test_top_up_of_throttled_subscriber_restores_default_bearer_qos(stack: Any) -> None:
    imsi, msisdn, sid = "001010000000044", "491704444444", "pgw.openpcc.test;gx;frank"
    stack.subscriber("frank", msisdn, imsi, 0, policy_profile="prepaid-data")
    cca = stack.run(stack.pgw.attach(sid, msisdn, imsi))
    assert cca.get("Result-Code") == 2001
    assert _ambr(cca) == (64_000, 64_000)  # no credit: throttled (on_credit_exhausted)

    api = stack.http(Role.OPERATOR)
    [gx] = [g for g in api.get("/api/v1/sessions").json()["gx"] if g["session_id"] == sid]
    assert gx["qci"] == 9 and gx["ambr_dl"] == 64_000 and gx["reasons"] == ["credit:throttle"]

    r = api.post("/api/v1/accounts/frank/topups", json={"amount": 500, "reason": "shop"})
    assert r.status_code == 200 and r.json()["reevaluated_subscribers"] == ["frank"]
    rar = stack.pgw.rars[-1]  # the RAR went out and was answered before the API replied
    assert rar.command_code == CMD_RE_AUTH and rar.application_id == APP_GX and rar.is_request
    assert rar.get("Session-Id") == sid
    bearer = rar.first("Default-EPS-Bearer-QoS")
    assert bearer is not None and bearer.get("QoS-Class-Identifier") == 9
    assert _ambr(rar) == (50_000_000, 100_000_000)
    [gx] = [g for g in api.get("/api/v1/sessions").json()["gx"] if g["session_id"] == sid]
    assert gx["ambr_dl"] == 100_000_000 and gx["reasons"] == []

    busy = stack.http(Role.ADMIN).delete("/api/v1/subscribers/frank")
    assert busy.status_code == 409 and "live data session" in busy.json()["detail"]

    # Terminate: RAR with Session-Release-Cause; the PCEF then detaches (CCR-T).
    before = len(stack.pgw.rars)
    r = api.delete(f"/api/v1/sessions/{quote(sid, safe='')}")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "session_id": sid,
        "application": "gx",
        "command": "RAR",
        "result_code": 2001,
    }
    release = stack.pgw.rars[before]
    assert release.get("Session-Release-Cause") == 0
    assert stack.run(stack.pgw.ccr(sid, 3, 1)).get("Result-Code") == 2001
    assert all(g["session_id"] != sid for g in api.get("/api/v1/sessions").json()["gx"])
    assert api.delete(f"/api/v1/sessions/{quote(sid, safe='')}").status_code == 404
    assert stack.http(Role.ADMIN).delete("/api/v1/subscribers/frank").status_code == 204
    ro = stack.http(Role.READ_ONLY).delete("/api/v1/sessions/whatever")
    assert ro.status_code == 403


def test_live_ro_call_listed_terminated_and_its_cdr_found(stack: Any) -> None:
    msisdn, sid = "491705555555", "cscf.test;1;gina"
    stack.subscriber("gina", msisdn, "001010000000055", 1000)
    voice = ims(CALLEE, "sip:+491705555555@ims.test", icid="icid-gina-1")
    subscription = (0, msisdn)
    first = ccr(
        sid,
        INITIAL,
        0,
        mscc(rg=100, sid=1000, rsu=units(time=60)),
        voice,
        subscription=subscription,
    )
    assert stack.run(stack.cscf.send(first)).get("Result-Code") == 2001

    api = stack.http(Role.OPERATOR)
    live = api.get("/api/v1/sessions", params={"subscriber": "gina"}).json()["ro"]
    assert len(live) == 1
    call = live[0]
    assert call["session_id"] == sid and call["called_party"] == CALLEE
    assert call["charged"] == 0 and [r["amount"] for r in call["reservations"]] == [17]
    main = api.get("/api/v1/accounts/gina").json()["balances"][0]
    assert (main["amount"], main["reserved"], main["available"]) == (1000, 17, 983)

    # A top-up during the call: the CSCF gets a Ro RAR to re-request quota (RFC 4006 §5.5).
    r = api.post("/api/v1/accounts/gina/topups", json={"amount": 200, "reason": "promo"})
    assert r.json()["reauthorized_ro_sessions"] == [sid]
    assert [m.command_code for m in stack.cscf.requests if m.get("Session-Id") == sid] == [
        CMD_RE_AUTH
    ]

    # Terminate: ASR to the CSCF, which ends the call with CCR-T (charged: 0.05 + 0.12).
    r = api.delete(f"/api/v1/sessions/{quote(sid, safe='')}")
    assert r.json() == {
        "session_id": sid,
        "application": "ro",
        "command": "ASR",
        "result_code": 2001,
    }
    asr = stack.cscf.requests[-1]
    assert asr.command_code == CMD_ABORT_SESSION and asr.application_id == APP_CREDIT_CONTROL
    last = ccr(
        sid,
        TERMINATION,
        1,
        mscc(rg=100, sid=1000, usu=units(time=42)),
        voice,
        subscription=subscription,
        extra=[("Termination-Cause", 6)],
    )
    assert stack.run(stack.cscf.send(last)).get("Result-Code") == 2001
    assert api.get("/api/v1/sessions", params={"subscriber": "gina"}).json()["ro"] == []
    assert api.get("/api/v1/accounts/gina").json()["balances"][0]["amount"] == 1200 - 17
    audit = api.get("/api/v1/audit", params={"resource": f"session:{sid}"}).json()["items"]
    assert audit[0]["action"] == "session.terminate" and audit[0]["after"]["command"] == "ASR"

    reader = stack.http(Role.READ_ONLY)
    by_icid = reader.get("/api/v1/cdrs", params={"icid": "icid-gina-1"}).json()["items"]
    assert len(by_icid) == 1
    cdr = by_icid[0]["record"]
    assert cdr["sessionId"] == sid and cdr["charge"] == 17 and cdr["currency"] == "EUR"
    assert by_icid[0]["partition_key"] == msisdn and by_icid[0]["sent_at"] is None
    by_sub = reader.get("/api/v1/cdrs", params={"subscriber": msisdn}).json()["items"]
    assert [c["cdr_id"] for c in by_sub] == [by_icid[0]["cdr_id"]]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (
        reader.get("/api/v1/cdrs", params={"subscriber": msisdn, "since": later}).json()["items"]
        == []
    )
    assert reader.get("/api/v1/cdrs", params={"icid": "icid-nope"}).json()["items"] == []
    bad = reader.get("/api/v1/cdrs", params={"since": later, "until": later})
    assert bad.status_code == 422
    naive = reader.get("/api/v1/cdrs", params={"since": "2026-01-01T00:00:00"})
    assert naive.status_code == 422

    jsonl = reader.get("/api/v1/cdrs/download", params={"icid": "icid-gina-1"})
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    [line] = jsonl.text.splitlines()
    assert json.loads(line)["cdrId"] == cdr["cdrId"]
    csv = reader.get("/api/v1/cdrs/download", params={"icid": "icid-gina-1", "format": "csv"})
    header, row = csv.text.splitlines()
    assert header.startswith("cdrId,") and row.startswith(cdr["cdrId"] + ",")
    assert reader.get("/api/v1/cdrs/download", params={"format": "xml"}).status_code == 422
    status = reader.get("/api/v1/cdrs/outbox").json()
    assert status["unsent"] >= 1 and status["oldest_unsent_age_seconds"] >= 0
    assert status["total"] >= status["unsent"]


PROMO = """
name: Promo
currency: EUR
timezone: UTC
destinations:
  sets:
    DE_MOBILE: ["+4915"]
versions:
  - effective_from: 2026-01-01
    voice:
      - destinations: [DE_MOBILE]
        per_minute: "0.12"
        connect_fee: "0.05"
        increments: 60/1
"""


def test_tariff_upload_validate_activate_and_price(stack: Any) -> None:
    admin, operator = stack.http(Role.ADMIN), stack.http(Role.OPERATOR)
    check = operator.post("/api/v1/tariffs/validate", json={"source": "name: [oops"}).json()
    assert check["valid"] is False and check["problems"]
    check = operator.post("/api/v1/tariffs/validate", json={"source": PROMO}).json()
    assert check == {
        "valid": True,
        "name": "Promo",
        "versions": ["2026-01-01T00:00:00+00:00"],
        "problems": [],
    }
    assert operator.post("/api/v1/tariffs", json={"source": PROMO}).status_code == 403
    bad = admin.post("/api/v1/tariffs", json={"source": PROMO.replace("0.12", "-1")})
    assert bad.status_code == 422
    # Not YAML at all (a NUL byte, refused by the YAML reader): the loader's error, line named.
    nul = PROMO.replace("0.12", "0.1\u00002", 1)
    line = nul[: nul.index("\x00")].count("\n") + 1
    check = operator.post("/api/v1/tariffs/validate", json={"source": nul}).json()
    assert check["valid"] is False
    assert check["problems"] == [
        f"upload.yaml:{line}: not valid YAML: unacceptable character #x0000: "
        "special characters are not allowed"
    ]
    bad = admin.post("/api/v1/tariffs", json={"source": nul})
    assert bad.status_code == 422 and bad.json()["detail"] == check["problems"][0]
    up = admin.post("/api/v1/tariffs", json={"source": PROMO})
    assert up.status_code == 201 and up.json()["active"] is False
    upload_id = up.json()["id"]
    query = {"destination": "+4915112345678", "units": 60}
    assert operator.post("/api/v1/tariffs/Promo/price", json=query).status_code == 404
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = tomorrow.isoformat()
    r = admin.post(f"/api/v1/tariffs/{upload_id}/activate", json={"at": later})
    assert r.status_code == 200 and r.json()["active"] is False
    assert stack.activator.apply_due() == [] and "Promo" not in stack.ocs.config.tariffs
    assert stack.activator.apply_due(now=tomorrow) == ["Promo"]  # the scheduled time came
    del stack.ocs.config.tariffs["Promo"]
    stack.activator.applied.clear()
    assert operator.post("/api/v1/tariffs/Promo/price", json=query).status_code == 404
    assert "Promo" not in stack.ocs.config.tariffs
    r = admin.post(f"/api/v1/tariffs/{upload_id}/activate", json={})
    assert r.json()["active"] is True
    assert stack.ocs.config.tariffs["Promo"].name == "Promo"  # new grants are rated with it
    listed = operator.get("/api/v1/tariffs").json()["items"]
    assert [(t["name"], t["active"]) for t in listed if t["id"] == upload_id] == [("Promo", True)]
    price = operator.post("/api/v1/tariffs/Promo/price", json=query).json()
    assert price["amount"] == 17 and price["currency"] == "EUR"
    assert [ln["item"] for ln in price["lines"]] == ["connect", "usage"]
    files = operator.post("/api/v1/tariffs/Test/price", json={"rating_group": 10, "units": 10**6})
    assert files.status_code == 200 and files.json()["amount"] == 1  # from the OCS's files
    two = operator.post("/api/v1/tariffs/Promo/price", json={**query, "rating_group": 1})
    assert two.status_code == 422
    no_rate = operator.post("/api/v1/tariffs/Promo/price", json={"service_id": 7, "units": 1})
    assert no_rate.status_code == 422 and "no event rate" in no_rate.json()["detail"]
    assert admin.post("/api/v1/tariffs/999999/activate", json={}).status_code == 404
    audit = operator.get("/api/v1/audit", params={"resource": "tariff:Promo"}).json()["items"]
    assert [a["action"] for a in audit] == ["tariff.activate", "tariff.activate", "tariff.upload"]
