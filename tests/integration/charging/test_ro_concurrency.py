"""200 concurrent sessions on one shared account from 4 client connections never overspend,
and every grant a client received is a reservation in the ledger."""

from __future__ import annotations

import asyncio
import contextlib

import sqlalchemy as sa

from charging.models import JournalEntry
from charging.verify import verify
from tests.fixtures.ocs import (
    INITIAL,
    TERMINATION,
    UPDATE,
    account,
    balance,
    ccr,
    gsu,
    ims,
    mscc,
    ocs_server,
    provisioning,
    ro_client,
    subscriber,
    units,
)

SESSIONS, CONNECTIONS, MONEY = 200, 4, 1500
SPEC = provisioning(
    *(subscriber(f"member{n}", f"4917100000{n:02d}", account="family") for n in range(8)),
    accounts=[account("family", MONEY)],
)
CALL = ims("tel:+4915112345678")  # 0.17 for the first minute, 0.12 per further minute


def test_shared_account_never_overspends(database_url: str) -> None:
    granted: set[tuple[str, int]] = set()
    second_minute_used: list[int] = []

    async def call(client, n: int) -> None:  # type: ignore[no-untyped-def]
        sid, who = f"conc;{n}", (0, f"4917100000{n % 8:02d}")
        cca = await client.send(
            ccr(sid, INITIAL, 0, mscc(rg=100, rsu=units(time=60)), CALL, subscription=who)
        )
        if "CC-Time" not in gsu(cca):
            return
        granted.add((sid, 0))
        cca = await client.send(
            ccr(sid, UPDATE, 1, mscc(rg=100, rsu=units(time=60), usu=units(time=60)), CALL,
                subscription=who)
        )  # fmt: skip
        used = 0
        if "CC-Time" in gsu(cca):
            granted.add((sid, 1))
            used = min(45, gsu(cca)["CC-Time"])  # a client never runs past its grant
            second_minute_used.append(used)
        await client.send(
            ccr(sid, TERMINATION, 2, mscc(rg=100, usu=units(time=used)), CALL, subscription=who)
        )

    async def scenario() -> None:
        writers = 1 if database_url.startswith("sqlite") else 2
        async with ocs_server(database_url, SPEC, writers=writers) as server:
            async with contextlib.AsyncExitStack() as stack:
                clients = [
                    await stack.enter_async_context(ro_client(server.port, f"cscf{i}.test"))
                    for i in range(CONNECTIONS)
                ]
                await asyncio.gather(*(call(clients[n % CONNECTIONS], n) for n in range(SESSIONS)))
            amount, reserved = balance(server.engine, "family")
            assert reserved == 0 and 0 <= amount < MONEY
            assert server.app.committer.batches < server.app.committer.items  # batched
            j = JournalEntry.__table__
            with server.engine.connect() as conn:
                reserves = {
                    (r.session_id, int(r.request_number))
                    for r in conn.execute(
                        sa.select(j.c.session_id, j.c.request_number).where(j.c.cause == "reserve")
                    )
                }
                spent = -conn.execute(
                    sa.select(sa.func.sum(j.c.delta_amount)).where(j.c.cause == "debit")
                ).scalar_one()
            assert reserves == granted
            assert spent == MONEY - amount
            # Each granted first minute costs 0.17; of a second minute only the seconds used,
            # at 0.002/s rounded half up: the ledger holds exactly what the granted CCAs say.
            firsts = sum(1 for _, n in granted if n == 0)
            assert spent == firsts * 17 + sum((2 * s + 5) // 10 for s in second_minute_used)
            assert MONEY - spent < 17  # the money was used up, not left idle
            assert verify(server.engine) == []

    asyncio.run(scenario())
