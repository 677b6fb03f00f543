"""The serving path under the routes: a response leaves in one send (head and body in the same
TCP segment on loopback), and the API's PostgreSQL connections dropped by the server cost one
503 with a JSON reason, after which reads and (retried, idempotent) top-ups work again."""

from __future__ import annotations

import socket
import struct
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from api.db import APPLICATION_NAME
from schemas.api import Role

#: ``struct tcp_info`` (linux/tcp.h): offset of ``tcpi_data_segs_in``, segments with payload.
DATA_SEGS_IN = 152


def _data_segments_in(sock: socket.socket) -> int:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, DATA_SEGS_IN)[0])


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO segment counters are Linux's")
def test_response_head_and_body_arrive_in_one_segment(stack: Any) -> None:
    stack.subscriber("hugo", "491706666601", "001010000000601", 4200)
    url = urlsplit(stack.base_url)
    request = (
        f"GET /api/v1/accounts/hugo HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {stack.keys[Role.READ_ONLY]}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        for _ in range(3):  # keep-alive: every response of the connection, not only the first
            before = _data_segments_in(sock)
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                data += sock.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 ") and b'"amount":4200' in data, data
            # With TCP_NODELAY a separate write of the head would be a segment of its own.
            assert _data_segments_in(sock) - before == 1


def _drop_api_connections(engine: sa.Engine) -> None:
    """Terminate the API's own PostgreSQL backends (as a server restart or failover would)."""
    query = sa.text(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = :name AND datname = current_database()"
    )
    left = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND datname = current_database()"
    )
    # Autocommit: pg_stat_activity is read afresh by each statement, not once per transaction.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert conn.execute(query, {"name": APPLICATION_NAME}).all(), "no API connection"
        deadline = time.monotonic() + 5
        while conn.execute(left, {"name": APPLICATION_NAME}).scalar_one():
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_dropped_database_connections_cost_one_503_then_recover(stack: Any) -> None:
    stack.subscriber("ines", "491706666602", "001010000000602", 1000)
    api = stack.http(Role.OPERATOR)
    topup = {"amount": 5, "reason": "warm-up"}
    assert api.post("/api/v1/accounts/ines/topups", json=topup).status_code == 200
    assert api.get("/api/v1/accounts/ines").status_code == 200

    _drop_api_connections(stack.engine)
    read = api.get("/api/v1/accounts/ines")
    assert read.status_code == 503
    assert read.json() == {"detail": "database unavailable, retry"}
    assert read.headers["Retry-After"] == "1"
    assert api.get("/api/v1/accounts/ines").json()["balances"][0]["amount"] == 1005

    headers = {"Idempotency-Key": "ines-after-restart"}
    body = {"amount": 10, "reason": "after restart"}
    statuses = []
    for _ in range(3):  # a client retries a 503 with the same key
        answer = api.post("/api/v1/accounts/ines/topups", json=body, headers=headers)
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            break
    assert statuses[-1] == 200 and set(statuses[:-1]) <= {503}
    assert api.get("/api/v1/accounts/ines").json()["balances"][0]["amount"] == 1015
