"""Idempotency-Key on top-ups and adjustments: a retry is answered from the stored outcome and
credits once (balance, journal and audit), another body with the same key is 422, racing
duplicates credit once, keys are per API key, and no header behaves as before."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import sqlalchemy as sa

from api import idempotency
from schemas.api import Role


def _state(stack: Any, account: str) -> tuple[int, list[tuple[str, int]], int]:
    """Balance, journal (cause, delta) newest first, number of balance audit entries."""
    api = stack.http(Role.OPERATOR)
    amount = api.get(f"/api/v1/accounts/{account}").json()["balances"][0]["amount"]
    history = api.get(f"/api/v1/accounts/{account}/history").json()["items"]
    audit = api.get("/api/v1/audit", params={"resource": f"account:{account}"}).json()["items"]
    return (
        amount,
        [(h["cause"], h["delta_amount"]) for h in history],
        sum(a["action"].startswith("balance.") for a in audit),
    )


def test_retry_with_same_key_credits_once(stack: Any) -> None:
    stack.subscriber("ida", "491704444401", "001010000000401", 100)
    api = stack.http(Role.OPERATOR)
    headers = {"Idempotency-Key": "a1b2c3-topup-1"}
    body = {"amount": 500, "reason": "voucher 7"}
    first = api.post("/api/v1/accounts/ida/topups", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["balance"]["amount"] == 600
    assert idempotency.REPLAYED not in first.headers
    for _ in range(2):
        again = api.post("/api/v1/accounts/ida/topups", json=body, headers=headers)
        assert again.status_code == 200
        assert again.json() == first.json()
        assert again.headers[idempotency.REPLAYED] == "true"
    assert _state(stack, "ida") == (600, [("topup", 500), ("provision", 100)], 1)

    adjust = {"amount": -40, "reason": "goodwill reversal"}
    key = {"Idempotency-Key": "adj-1"}
    a1 = api.post("/api/v1/accounts/ida/adjustments", json=adjust, headers=key)
    a2 = api.post("/api/v1/accounts/ida/adjustments", json=adjust, headers=key)
    assert a1.status_code == a2.status_code == 200 and a1.json() == a2.json()
    assert a2.json()["balance"]["amount"] == 560
    assert _state(stack, "ida") == (
        560,
        [("adjust", -40), ("topup", 500), ("provision", 100)],
        2,
    )


def test_same_key_other_request_is_refused(stack: Any) -> None:
    stack.subscriber("jon", "491704444402", "001010000000402", 100)
    api = stack.http(Role.OPERATOR)
    key = {"Idempotency-Key": "jon-1"}
    ok = api.post("/api/v1/accounts/jon/topups", json={"amount": 10, "reason": "x"}, headers=key)
    assert ok.status_code == 200
    for path, body in [
        ("/api/v1/accounts/jon/topups", {"amount": 11, "reason": "x"}),
        ("/api/v1/accounts/jon/topups", {"amount": 10, "reason": "y"}),
        ("/api/v1/accounts/jon/adjustments", {"amount": 10, "reason": "x"}),
    ]:
        refused = api.post(path, json=body, headers=key)
        assert refused.status_code == 422, refused.text
        assert "already used for a different request" in refused.json()["detail"]
    assert _state(stack, "jon") == (110, [("topup", 10), ("provision", 100)], 1)
    # Keys are scoped per API key: the admin's "jon-1" is a new key.
    admin = stack.http(Role.ADMIN)
    other = admin.post(
        "/api/v1/accounts/jon/topups", json={"amount": 11, "reason": "x"}, headers=key
    )
    assert other.status_code == 200 and other.json()["balance"]["amount"] == 121
    # A malformed key is bad input.
    bad = api.post(
        "/api/v1/accounts/jon/topups",
        json={"amount": 1, "reason": "x"},
        headers={"Idempotency-Key": "k" * 256},
    )
    assert bad.status_code == 422


def test_failed_write_leaves_the_key_unused(stack: Any) -> None:
    stack.subscriber("kim", "491704444403", "001010000000403", 100)
    api = stack.http(Role.OPERATOR)
    key = {"Idempotency-Key": "kim-debit"}
    body = {"amount": -150, "reason": "correction"}
    refused = api.post("/api/v1/accounts/kim/adjustments", json=body, headers=key)
    assert refused.status_code == 409
    api.post("/api/v1/accounts/kim/topups", json={"amount": 100, "reason": "cash"})
    retried = api.post("/api/v1/accounts/kim/adjustments", json=body, headers=key)
    assert retried.status_code == 200 and retried.json()["balance"]["amount"] == 50
    assert idempotency.REPLAYED not in retried.headers


def test_racing_duplicates_credit_once(stack: Any) -> None:
    stack.subscriber("lou", "491704444404", "001010000000404", 1)
    token = stack.keys[Role.OPERATOR]
    barrier = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(
            base_url=stack.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=15
        ) as client:
            barrier.wait()
            answers.append(
                client.post(
                    "/api/v1/accounts/lou/topups",
                    json={"amount": 700, "reason": "race"},
                    headers={"Idempotency-Key": "lou-race"},
                )
            )

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [a.status_code for a in answers] == [200] * 4
    assert {a.json()["balance"]["amount"] for a in answers} == {701}
    assert _state(stack, "lou") == (701, [("topup", 700), ("provision", 1)], 1)


def test_loser_of_a_claim_race_answers_the_winners_outcome(stack: Any) -> None:
    """Deterministic race: the test holds an uncommitted claim of the key; the API request
    blocks on the unique index, and once the claim commits it rolls back its own credit and
    answers the stored outcome."""
    stack.subscriber("max", "491704444405", "001010000000405", 30)
    body = {"amount": 5, "reason": "race"}
    claim = idempotency.claim_for(
        "test-operator", "max-race", "topup", "account:max", {**body, "balance": None}
    )
    api = stack.http(Role.OPERATOR)
    balance = api.get("/api/v1/accounts/max").json()["balances"][0]
    winner = {
        "account": "max",
        "balance": {**balance, "amount": 35, "available": 35},
        "reauthorized_ro_sessions": [],
        "reevaluated_subscribers": [],
    }
    answers: list[httpx.Response] = []
    with stack.engine.connect() as conn:
        tx = conn.begin()
        idempotency.claim(conn, claim)
        idempotency.complete(conn, claim, 200, winner)
        request = threading.Thread(
            target=lambda: answers.append(
                api.post(
                    "/api/v1/accounts/max/topups",
                    json=body,
                    headers={"Idempotency-Key": "max-race"},
                )
            )
        )
        request.start()
        deadline = time.monotonic() + 10
        with stack.engine.connect() as probe:
            while not probe.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar():
                assert time.monotonic() < deadline, "the duplicate never blocked on the claim"
                time.sleep(0.02)
        tx.commit()
    request.join(15)
    assert answers[0].status_code == 200 and answers[0].json() == winner
    assert answers[0].headers[idempotency.REPLAYED] == "true"
    assert _state(stack, "max") == (30, [("provision", 30)], 0)


def test_without_key_every_request_credits(stack: Any) -> None:
    stack.subscriber("ned", "491704444406", "001010000000406", 1)
    api = stack.http(Role.OPERATOR)
    for _ in range(2):
        r = api.post("/api/v1/accounts/ned/topups", json={"amount": 3, "reason": "same"})
        assert r.status_code == 200 and idempotency.REPLAYED not in r.headers
    assert _state(stack, "ned") == (7, [("topup", 3), ("topup", 3), ("provision", 1)], 2)
