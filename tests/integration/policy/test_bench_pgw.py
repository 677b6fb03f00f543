"""bench.policy's lean Gx PGW (bench._gx_pgw) against a real PCRF: its hand-assembled CCRs are
what our codec reads as a PGW's CCR-I/CCR-T, every session it opens is answered 2001 and
released, and the PCRF is left with no session, in memory or in its database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from bench._gx_pgw import GxPgw
from diam.message import Message
from policy.store import GX

IMSI, REALM = "001010000000001", "openpcc.test"


def test_lean_pgw_requests_read_as_ccr_i_and_ccr_t() -> None:
    async def scenario() -> list[Message]:
        pgw = GxPgw("pgw-lean.openpcc.test", REALM, IMSI, window=1)
        pgw._send(5, True)
        pgw._send(5, False)
        wire = b"".join(pgw._out)
        first = int.from_bytes(wire[1:4], "big")
        return [Message.decode(wire[:first], validate=True), Message.decode(wire[first:])]

    initial, terminate = asyncio.run(scenario())
    assert initial.is_request and initial.command_code == 272 and initial.application_id == 16777238
    names = ("Session-Id", "Origin-Host", "CC-Request-Type", "CC-Request-Number",
             "Called-Station-Id", "Framed-IP-Address")  # fmt: skip
    host = "pgw-lean.openpcc.test"
    assert [initial.get(n) for n in names] == [f"{host};5", host, 1, 0, "ims", b"\n\0\0\x05"]
    (sub,) = initial["Subscription-Id"]
    assert (sub.get("Subscription-Id-Type"), sub.get("Subscription-Id-Data")) == (1, IMSI)
    assert terminate.get("Session-Id") == "pgw-lean.openpcc.test;5"
    assert (terminate.get("CC-Request-Type"), terminate.get("CC-Request-Number")) == (3, 1)
    assert terminate.hop_by_hop == initial.hop_by_hop + 1


def test_lean_pgw_sessions_are_established_and_released(any_harness: Callable[..., Any]) -> None:
    async def scenario() -> None:
        h = await any_harness().start()
        try:
            loop = asyncio.get_running_loop()
            _, pgw = await loop.create_connection(
                lambda: GxPgw("pgw-lean.openpcc.test", REALM, IMSI, window=8), "127.0.0.1", h.port
            )
            await asyncio.wait_for(pgw.open, 5)
            pgw.run(0.3)
            await asyncio.wait_for(pgw.done, 10)
            pgw.close()
            result = pgw.result
            assert result.pairs >= 8 and result.failures == 0
            assert len(result.latencies) == 2 * result.pairs
            assert h.pcrf.store.all_gx() == []
            with h.engine.connect() as conn:
                assert conn.execute(sa.select(sa.func.count()).select_from(GX)).scalar() == 0
        finally:
            await h.stop()

    asyncio.run(scenario())
