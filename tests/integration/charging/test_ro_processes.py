"""OpenPCC processes (``openpcc run``) sharing one database: retransmissions answered once by
either node; ``kill -9`` under load loses no answered grant and leaves a sound ledger."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from charging.models import JournalEntry
from diam.constants import FLAG_RETRANSMIT
from diam.message import Message
from openpcc.database import create_engine
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
    provisioning,
    ro_client,
    server_env,
    spawn_server,
    subscriber,
    units,
)

ROOT = Path(__file__).resolve().parents[3]
SPEC = provisioning(
    *(subscriber(f"m{n}", f"4917200000{n:02d}", account="shared") for n in range(4)),
    accounts=[account("shared", 2000)],
)
CALL = ims("tel:+4915112345678")


def again(msg: Message) -> Message:
    copy = Message.decode(msg.encode())
    copy.flags |= FLAG_RETRANSMIT
    return copy


def ledger_verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openpcc.cli", "ledger", "--database-url", url, "verify"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


def test_two_processes_answer_retransmissions_once(database_url: str, tmp_path: Path) -> None:
    env = server_env(tmp_path, database_url, SPEC)
    a = spawn_server(env, tmp_path / "a.log", "ocs-a.test")
    b = spawn_server(env, tmp_path / "b.log", "ocs-b.test")
    try:

        async def scenario() -> None:
            async with ro_client(a.port) as to_a, ro_client(b.port) as to_b:
                sid, who = "two;1", (0, "491720000000")
                await to_a.send(
                    ccr(sid, INITIAL, 0, mscc(rg=100, rsu=units(time=60)), CALL, subscription=who)
                )
                update = ccr(sid, UPDATE, 1, mscc(rg=100, rsu=units(time=60), usu=units(time=60)),
                             CALL, subscription=who)  # fmt: skip
                first = await to_b.send(update)
                replay = await to_a.send(again(update))
                assert gsu(replay) == gsu(first) and first.get("Result-Code") == 2001
                end = ccr(sid, TERMINATION, 2, mscc(rg=100, usu=units(time=10)), CALL,
                          subscription=who)  # fmt: skip
                assert (await to_a.send(end)).get("Result-Code") == 2001
                assert (await to_b.send(again(end))).get("Result-Code") == 2001

                # 60 sessions on the shared account, split over both nodes, all at once.
                async def session(n: int) -> None:
                    client, s, w = (to_a, to_b)[n % 2], f"two;s{n}", (0, f"4917200000{n % 4:02d}")
                    cca = await client.send(ccr(s, INITIAL, 0, mscc(rg=100, rsu=units(time=60)),
                                                CALL, subscription=w))  # fmt: skip
                    used = gsu(cca).get("CC-Time", 0)
                    await client.send(ccr(s, TERMINATION, 1, mscc(rg=100, usu=units(time=used)),
                                          CALL, subscription=w))  # fmt: skip

                await asyncio.gather(*(session(n) for n in range(60)))

        asyncio.run(scenario())
    finally:
        a.stop()
        b.stop()
    engine = create_engine(database_url)
    try:
        # The first call: 0.17 + 10 s (0.02); then 60 × 0.17 = 10.20: 2000 - 19 - 1020.
        assert balance(engine, "shared") == (2000 - 19 - 60 * 17, 0)
    finally:
        engine.dispose()
    result = ledger_verify(database_url)
    assert result.returncode == 0, result.stderr


def test_kill_9_under_load_loses_no_answered_grant(database_url: str, tmp_path: Path) -> None:
    env = server_env(tmp_path, database_url, SPEC)
    server = spawn_server(env, tmp_path / "first.log")
    answered: set[tuple[str, int]] = set()
    unanswered: list[Message] = []

    async def load() -> None:
        async with ro_client(server.port) as client:

            async def session(n: int) -> None:
                sid, who = f"crash;{n}", (0, f"4917200000{n % 4:02d}")
                requests = [ccr(sid, INITIAL, 0, mscc(rg=100, rsu=units(time=60)), CALL,
                                subscription=who)]  # fmt: skip
                requests += [
                    ccr(sid, UPDATE, k, mscc(rg=100, rsu=units(time=60), usu=units(time=60)),
                        CALL, subscription=who)
                    for k in (1, 2, 3)
                ]  # fmt: skip
                for number, request in enumerate(requests):
                    try:
                        cca = await client.send(request, timeout=3)
                    except Exception:
                        unanswered.append(request)
                        return
                    if "CC-Time" in gsu(cca):
                        answered.add((sid, number))
                    await asyncio.sleep(0.01)

            async def killer() -> None:
                while len(answered) < 40:
                    await asyncio.sleep(0.01)
                server.kill()

            await asyncio.gather(killer(), *(session(n) for n in range(40)))

    asyncio.run(load())
    assert server.process.returncode == -9 and answered and unanswered
    result = ledger_verify(database_url)
    assert result.returncode == 0, result.stderr
    engine = create_engine(database_url)
    j = JournalEntry.__table__
    try:
        with engine.connect() as conn:
            reserved = {
                (r.session_id, int(r.request_number))
                for r in conn.execute(
                    sa.select(j.c.session_id, j.c.request_number).where(j.c.cause == "reserve")
                )
            }
        assert answered <= reserved  # every grant a client saw is in the ledger
    finally:
        engine.dispose()
    # The client retransmits what got no answer to the restarted node: answered once each.
    restarted = spawn_server(env, tmp_path / "second.log")
    try:

        async def resend() -> None:
            async with ro_client(restarted.port) as client:
                for request in unanswered:
                    cca = await client.send(again(request))
                    assert cca.get("Result-Code") in (2001, 4012)

        asyncio.run(resend())
    finally:
        restarted.stop()
    with contextlib.suppress(Exception):
        server.log.close()
    result = ledger_verify(database_url)
    assert result.returncode == 0, result.stderr
