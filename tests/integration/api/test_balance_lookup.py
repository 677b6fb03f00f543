"""The balance lookup (GET /api/v1/accounts/{name}, its own prepared statement: api/lookup.py)
answers exactly what the ledger's ``get_account`` says, for every kind of balance, and keeps the
API's rules: bearer key with a role, 404 with a JSON reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from charging import admin as ledger
from charging.models import Balance
from schemas.api import AccountOut, Role


def test_lookup_matches_the_ledger(stack: Any) -> None:
    now = datetime.now(UTC)
    api = stack.http(Role.OPERATOR)
    created = api.post(
        "/api/v1/accounts",
        json={
            "name": "lookup-1",
            "currency": "EUR",
            "balances": [
                {"name": "main", "amount": 1500, "credit_limit": 300, "priority": 5},
                {
                    "name": "promo",
                    "amount": 200,
                    "priority": 1,
                    "valid_until": (now - timedelta(days=1)).isoformat(),
                },
                {
                    "name": "voice",
                    "kind": "unit",
                    "unit": "seconds",
                    "bundle": "minutes",
                    "amount": 600,
                    "priority": 1,
                    "valid_from": (now + timedelta(days=30)).isoformat(),
                },
                {
                    "name": "data",
                    "kind": "unit",
                    "unit": "octets",
                    "bundle": "gigs",
                    "amount": 10**12,
                    "valid_from": (now - timedelta(days=2)).isoformat(),
                    "valid_until": (now + timedelta(days=2)).isoformat(),
                },
            ],
        },
    )
    assert created.status_code == 201, created.text
    balances = Balance.__table__
    with stack.engine.begin() as conn:  # a live reservation, as the OCS holds during a call
        conn.execute(balances.update().where(balances.c.name == "main").values(reserved=1700))
        expected = AccountOut.model_validate(ledger.get_account(conn, "lookup-1"))
    answer = stack.http(Role.READ_ONLY).get("/api/v1/accounts/lookup-1")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == expected.model_dump(mode="json")
    got = {b["name"]: b for b in answer.json()["balances"]}
    assert [b["name"] for b in answer.json()["balances"]] == ["data", "promo", "voice", "main"]
    assert got["main"]["available"] == 1500 - 1700 + 300
    assert (got["promo"]["valid_now"], got["voice"]["valid_now"], got["data"]["valid_now"]) == (
        False,
        False,
        True,
    )
    assert answer.json()["created_at"].endswith("Z")


def test_lookup_of_an_account_without_balances_and_errors(stack: Any) -> None:
    api = stack.http(Role.OPERATOR)
    assert api.post("/api/v1/accounts", json={"name": "bare", "currency": "USD"}).status_code == 201
    bare = api.get("/api/v1/accounts/bare").json()
    assert (bare["name"], bare["currency"], bare["balances"]) == ("bare", "USD", [])
    missing = api.get("/api/v1/accounts/nobody-here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no account 'nobody-here'"}
    anonymous = httpx.get(f"{stack.base_url}/api/v1/accounts/bare", timeout=15)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json() == {"detail": "missing bearer API key"}
    forged = httpx.get(
        f"{stack.base_url}/api/v1/accounts/bare",
        headers={"Authorization": "Bearer opcc_not-a-key"},
        timeout=15,
    )
    assert forged.status_code == 401 and "unknown" in forged.json()["detail"]
    # Counted in the HTTP metrics under its route template.
    metrics = api.get("/metrics").text
    assert 'route="/api/v1/accounts/{name}",status="404"' in metrics
    assert 'route="/api/v1/accounts/{name}",status="200"' in metrics
    assert 'route="/api/v1/accounts/{name}",status="401"' in metrics
