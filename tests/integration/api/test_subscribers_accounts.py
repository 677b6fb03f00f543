"""Subscribers, accounts and balances through the real API over PostgreSQL: happy paths, errors,
roles and the audit log."""

from __future__ import annotations

from typing import Any

import httpx

from schemas.api import Role
from tests.fixtures.ocs import E164, INITIAL, ccr


def test_health_needs_no_key_and_api_needs_one(stack: Any) -> None:
    anonymous = httpx.Client(base_url=stack.base_url)
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    checks = {c["name"]: c for c in ready.json()["checks"]}
    assert checks["database"]["ok"] and checks["database"]["detail"] == "postgresql"
    assert checks["diameter"]["ok"]
    r = anonymous.get("/api/v1/subscribers")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = anonymous.get("/api/v1/subscribers", headers={"Authorization": "Bearer opcc_nope"})
    assert r.status_code == 401 and "unknown" in r.json()["detail"]
    assert anonymous.get("/openapi.json").json()["info"]["title"] == "OpenPCC management API"


def test_subscriber_crud_and_lookup(stack: Any) -> None:
    api = stack.http(Role.OPERATOR)
    stack.subscriber(
        "alice",
        "491701111111",
        "001010000000011",
        1000,
        sip_uris=["sip:Alice@IMS.example.org"],
        policy_profile="prepaid-data",
    )
    got = api.get("/api/v1/subscribers/alice").json()
    assert got["account"] == "alice" and got["plan"] == "prepaid"
    assert got["msisdn"] == ["491701111111"] and got["policy_profile"] == "prepaid-data"
    assert got["sip_uris"] == ["sip:Alice@ims.example.org"]
    for query in (
        {"imsi": "001010000000011"},
        {"msisdn": "tel:+49-170-1111111"},
        {"sip_uri": "sip:Alice@ims.example.org;user=phone"},
    ):
        found = api.get("/api/v1/subscribers/lookup", params=query)
        assert found.status_code == 200 and found.json()["name"] == "alice", query
    assert (
        api.get("/api/v1/subscribers/lookup", params={"imsi": "001019999999999"}).status_code == 404
    )
    both = api.get("/api/v1/subscribers/lookup", params={"imsi": "1", "msisdn": "2"})
    assert both.status_code == 422

    r = api.patch(
        "/api/v1/subscribers/alice", json={"status": "barred", "msisdn": ["491701111112"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "barred" and r.json()["msisdn"] == ["491701111112"]
    assert r.json()["imsi"] == ["001010000000011"]

    # Errors: duplicate name, identity owned by someone else, unknown plan, bad body, roles.
    stack.subscriber("bob", "491702222222", "001010000000022", 500)
    dup = api.post(
        "/api/v1/subscribers",
        json={"name": "bob", "account": "bob", "plan": "prepaid", "msisdn": ["4917099"]},
    )
    assert dup.status_code == 409 and "exists" in dup.json()["detail"]
    taken = api.patch("/api/v1/subscribers/bob", json={"imsi": ["001010000000011"]})
    assert taken.status_code == 409 and "another subscriber" in taken.json()["detail"]
    plan = api.post(
        "/api/v1/subscribers",
        json={"name": "carol", "account": "bob", "plan": "gold", "msisdn": ["4917033"]},
    )
    assert plan.status_code == 404 and "plan" in plan.json()["detail"]
    bad = api.post("/api/v1/subscribers", json={"name": "x y", "account": "bob"})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"], list)
    assert api.get("/api/v1/subscribers/nobody").status_code == 404
    ro = stack.http(Role.READ_ONLY).post("/api/v1/subscribers", json={"name": "z"})
    assert ro.status_code in (403, 422)
    ro = stack.http(Role.READ_ONLY).patch("/api/v1/subscribers/bob", json={"status": "barred"})
    assert ro.status_code == 403 and "read-only" in ro.json()["detail"]
    assert api.delete("/api/v1/subscribers/bob").status_code == 403  # operator: no delete

    page = api.get("/api/v1/subscribers", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_offset"] == 1
    last = api.get("/api/v1/subscribers", params={"limit": 1, "offset": 1}).json()
    assert last["items"][0]["name"] != page["items"][0]["name"]
    assert api.get("/api/v1/subscribers", params={"limit": 0}).status_code == 422

    assert stack.http(Role.ADMIN).delete("/api/v1/subscribers/bob").status_code == 204
    assert api.get("/api/v1/subscribers/bob").status_code == 404
    audit = api.get("/api/v1/audit", params={"resource": "subscriber:alice"}).json()["items"]
    update = next(a for a in audit if a["action"] == "subscriber.update")
    assert update["actor"] == "test-operator" and update["role"] == "operator"
    assert update["before"]["status"] == "active" and update["after"]["status"] == "barred"
    deleted = api.get("/api/v1/audit", params={"resource": "subscriber:bob"}).json()["items"][0]
    assert deleted["action"] == "subscriber.delete" and deleted["actor"] == "test-admin"
    assert deleted["before"]["msisdn"] == ["491702222222"] and deleted["after"] is None


def test_balances_top_up_adjust_history(stack: Any) -> None:
    stack.subscriber("dave", "491703333333", "001010000000033", 250)
    api = stack.http(Role.OPERATOR)
    account = api.get("/api/v1/accounts/dave").json()
    assert account["currency"] == "EUR"
    assert [(b["name"], b["amount"], b["available"]) for b in account["balances"]] == [
        ("main", 250, 250)
    ]
    denied = stack.http(Role.READ_ONLY).post(
        "/api/v1/accounts/dave/topups", json={"amount": 100, "reason": "x"}
    )
    assert denied.status_code == 403
    no_reason = api.post("/api/v1/accounts/dave/topups", json={"amount": 100})
    assert no_reason.status_code == 422
    negative = api.post("/api/v1/accounts/dave/topups", json={"amount": -5, "reason": "x"})
    assert negative.status_code == 422
    r = api.post("/api/v1/accounts/dave/topups", json={"amount": 1000, "reason": "voucher 42"})
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["amount"] == 1250
    r = api.post("/api/v1/accounts/dave/adjustments", json={"amount": -50, "reason": "goodwill"})
    assert r.json()["balance"]["amount"] == 1200
    too_much = api.post(
        "/api/v1/accounts/dave/adjustments", json={"amount": -5000, "reason": "oops"}
    )
    assert too_much.status_code == 409 and "cover" in too_much.json()["detail"]
    zero = api.post("/api/v1/accounts/dave/adjustments", json={"amount": 0, "reason": "x"})
    assert zero.status_code == 409
    unknown = api.post("/api/v1/accounts/nobody/topups", json={"amount": 1, "reason": "x"})
    assert unknown.status_code == 404
    wrong_bucket = api.post(
        "/api/v1/accounts/dave/topups", json={"amount": 1, "reason": "x", "balance": "nope"}
    )
    assert wrong_bucket.status_code == 404
    assert api.get("/api/v1/accounts/dave").json()["balances"][0]["amount"] == 1200

    history = api.get("/api/v1/accounts/dave/history").json()["items"]
    assert [(h["cause"], h["delta_amount"], h["reference"]) for h in history] == [
        ("adjust", -50, "goodwill"),
        ("topup", 1000, "voucher 42"),
        ("provision", 250, "dave"),
    ]
    audit = api.get("/api/v1/audit", params={"resource": "account:dave"}).json()["items"]
    topup = next(a for a in audit if a["action"] == "balance.topup")
    assert topup["reason"] == "voucher 42" and topup["actor"] == "test-operator"
    assert topup["before"]["balance"]["amount"] == 250
    assert topup["before"]["balance"]["available"] == 250
    assert topup["after"] == {
        "amount": 1000,
        "balance": {**topup["before"]["balance"], "amount": 1250, "available": 1250},
    }
    dup = api.post("/api/v1/accounts", json={"name": "dave", "currency": "EUR"})
    assert dup.status_code == 409
    bad = api.post("/api/v1/accounts", json={"name": "eve", "currency": "euro"})
    assert bad.status_code == 422


def test_metrics_expose_diameter_http_sessions_outbox_and_peers(stack: Any) -> None:
    stack.http().get("/api/v1/peers")
    unknown = ccr("api-metrics;1", INITIAL, 0, subscription=(E164, "499999999999"))
    assert stack.run(stack.cscf.send(unknown)).get("Result-Code") == 5030
    text = httpx.get(f"{stack.base_url}/metrics").text
    assert 'openpcc_http_requests_total{method="GET",route="/api/v1/peers",status="200"}' in text
    assert 'openpcc_sessions{application="ro"}' in text
    assert "openpcc_outbox_unsent_cdrs" in text
    assert "openpcc_outbox_oldest_unsent_age_seconds" in text
    assert 'openpcc_diameter_peers{listener="pcc",state="open"} 3.0' in text
    assert 'openpcc_diameter_peer_up{listener="pcc",origin_host="pgw.openpcc.test"} 1.0' in text
    assert (
        'openpcc_diameter_request_seconds_count{application="4",command="272",direction="in",'
        'result="5030"} 1.0'
    ) in text
    peers = stack.http(Role.READ_ONLY).get("/api/v1/peers").json()["items"]
    hosts = {p["origin_host"] for p in peers}
    assert hosts == {"pgw.openpcc.test", "cscf.test", "pcscf.openpcc.test"}
    assert all(p["state"] == "open" for p in peers)
