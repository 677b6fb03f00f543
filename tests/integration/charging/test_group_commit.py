"""Group commit: concurrent work shares one transaction; a failing item is answered by its own
``fail`` and the rest still commit; nothing is released before its commit."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from charging.batcher import GroupCommitter
from charging.ledger import Ledger
from charging.models import Account
from openpcc.database import create_engine, upgrade

accounts_t = Account.__table__


class Handler:
    def __init__(self) -> None:
        self.flushed = 0

    def context(self, now: datetime) -> dict[str, Any]:
        return {}

    def lock_keys(self, conn: sa.Connection, ctx: Any, works: list[Any]) -> list[int]:
        return []

    def load(self, conn: sa.Connection, ledger: Ledger, ctx: Any, accounts: list[int],
             works: list[Any]) -> None:  # fmt: skip
        ledger.lock_accounts(accounts)

    def flush(self, conn: sa.Connection, ledger: Ledger, ctx: Any) -> None:
        self.flushed += 1


class Insert:
    def __init__(self, name: str, engine: sa.Engine) -> None:
        self.name, self.engine = name, engine

    def run(self, conn: sa.Connection, ledger: Ledger, ctx: Any) -> str:
        if self.name == "bad":
            raise ValueError("a bug in one request")
        conn.execute(accounts_t.insert().values(name=self.name, currency="EUR"))
        return f"ok {self.name}"

    def fail(self, exc: BaseException) -> str:
        return f"failed {self.name}: {exc}"


def test_a_failing_item_does_not_sink_its_batch(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    upgrade(engine)
    handler = Handler()

    async def scenario() -> list[str]:
        committer = GroupCommitter(engine, handler, window=0.05, max_batch=16)
        committer.start()
        try:
            names = ["a", "b", "bad", "c"]
            return await asyncio.gather(*(committer.submit(Insert(n, engine)) for n in names))
        finally:
            assert committer.batches == 1 and committer.items == 4
            await committer.close()

    try:
        results = asyncio.run(scenario())
        assert results == ["ok a", "ok b", "failed bad: a bug in one request", "ok c"]
        with engine.connect() as conn:
            names = conn.execute(sa.select(accounts_t.c.name).order_by(accounts_t.c.id))
            assert names.scalars().all() == ["a", "b", "c"]
        assert handler.flushed == 1  # the first attempt rolled back before its flush
    finally:
        engine.dispose()


class Lookup(Insert):
    """Reads the accounts by a prepared statement (prepared after a few runs by psycopg)."""

    def run(self, conn: sa.Connection, ledger: Ledger, ctx: Any) -> str:
        conn.execute(sa.select(accounts_t.c.id).where(accounts_t.c.name == self.name)).all()
        return "ok"


def test_writer_connections_plan_their_statements_afresh_now_and_then(postgres_url: str) -> None:
    """Plans made while the tables were young are dropped after replan_seconds (a plan that
    scans a small table whole would otherwise stay while the table grows)."""
    engine = create_engine(postgres_url)
    upgrade(engine)

    def prepared(committer: GroupCommitter) -> int:
        conn = committer._connection()
        count = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
        conn.commit()
        return int(count or 0)

    async def scenario(replan_seconds: float) -> tuple[int, int]:
        committer = GroupCommitter(engine, Handler(), window=0, replan_seconds=replan_seconds)
        committer.start()
        try:
            for _ in range(8):
                await committer.submit(Lookup("x", engine))
            before = await asyncio.to_thread(lambda: committer._executor.submit(
                prepared, committer).result())  # fmt: skip
            await asyncio.sleep(1.2)
            after = await asyncio.to_thread(lambda: committer._executor.submit(
                prepared, committer).result())  # fmt: skip
            return before, after
        finally:
            await committer.close()

    try:
        before, after = asyncio.run(scenario(replan_seconds=3600))
        assert before >= 1 and after == before  # kept
        before, after = asyncio.run(scenario(replan_seconds=1.0))
        assert before >= 1 and after == 0  # dropped, made again on later use
    finally:
        engine.dispose()
