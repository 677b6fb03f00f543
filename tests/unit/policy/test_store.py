"""Session state persistence: rows round-trip, the group-commit writer batches and isolates
failures, and upserts of one key in one batch keep the last row."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from openpcc.database import create_engine, upgrade
from policy import provisioning
from policy.decision import Ambr, Decision, MonitoringGrant
from policy.qos import Arp, FlowStatus, FlowUsage, MediaComponent, MediaSubComponent, MediaType
from policy.store import GX, RX, GroupCommitWriter, GxState, RxState, SessionStore, Upsert
from policy.writer import Delete

SPEC = {
    "profiles": [{"name": "p", "apns": [{"apn": "ims", "qci": 5, "arp": {"priority": 1},
                                         "ambr": {"ul": 1, "dl": 1}}]}],
    "subscribers": [{"imsi": "001010000000001", "profile": "p"}],
}  # fmt: skip


@pytest.fixture
def engine(database_url: str) -> sa.Engine:
    """SQLite, then PostgreSQL (which refuses one statement upserting a row twice)."""
    engine = create_engine(database_url)
    upgrade(engine)
    provisioning.apply(engine, provisioning.PolicyProvisioning.model_validate(SPEC))
    yield engine
    engine.dispose()


def gx_state(sid: str = "gx1", ip: str = "10.0.0.1") -> GxState:
    decision = Decision(5, Arp(1, True, False), Ambr(1, 2), frozenset({"r"}), frozenset({"b"}),
                        (MonitoringGrant("k", 10),), ("time:night",))  # fmt: skip
    return GxState(sid, 1, "p", "001010000000001", "4917", "ims", ip, "2001:db8::/64",
                   "pgw", "realm", "me", decision, frozenset({2, 7}), 1004, 5, 3)  # fmt: skip


def test_sessions_survive_a_new_store(engine: sa.Engine) -> None:
    comp = MediaComponent(1, MediaType.AUDIO, 41_000, 41_000, 41_000, 41_000, 2_000, 600,
                          FlowStatus.ENABLED, ("uplink\noffer\nm=audio 1 RTP/AVP 0",),
                          (MediaSubComponent(1, ("permit out 17 from any to 10.0.0.1 1",),
                                             FlowUsage.RTCP),))  # fmt: skip

    async def scenario() -> None:
        store = SessionStore(engine, "me")
        gx = gx_state()
        await store.save_gx(gx)
        rx = RxState("rx1", "gx1", "pcscf", "ims", {1: comp}, ("af-x-1",), frozenset({2, 8}),
                     b"\x01\x02")  # fmt: skip
        await store.save_rx(gx, rx)
        again = SessionStore(engine, "me")
        await again.load()
        loaded = again.gx("gx1")
        assert loaded is not None
        assert loaded.decision == gx.decision and loaded.event_triggers == gx.event_triggers
        assert (loaded.rat_type, loaded.ip_can_type, loaded.origin_state_id) == (1004, 5, 3)
        assert loaded.rx_sessions == {"rx1"}
        (rx_loaded,) = again.rx_of(loaded)
        assert rx_loaded == rx
        assert await again.find_gx(None, "2001:db8::abcd", "IMS") is loaded  # by /64, APN case
        assert await again.find_gx("10.0.0.1", None, "internet") is None  # wrong APN
        # Another process's view: not cached (served_by differs), found in the database.
        other = SessionStore(engine, "someone-else")
        await other.load()
        assert other.gx("gx1") is None
        found = await other.find_gx("10.0.0.1", None, None)
        assert found is not None and found.session_id == "gx1" and found.served_by == "me"
        bound = await again.delete_gx(loaded)
        assert [r.session_id for r in bound] == ["rx1"]
        assert await other.find_gx("10.0.0.1", None, None) is None

    asyncio.run(scenario())


def test_writer_batches_and_isolates_a_failing_write(engine: sa.Engine) -> None:
    async def scenario() -> None:
        writer = GroupCommitWriter(engine)
        rows = [gx_state(f"s{i}", f"10.0.1.{i}").row() for i in range(20)]

        def boom(conn: sa.Connection) -> None:
            raise RuntimeError("bad write")

        ops = [writer.run(Upsert(GX, GX.c.session_id, r)) for r in rows]
        ops.insert(7, writer.run(boom))
        # The same key twice in one batch: the last row wins.
        ops.append(writer.run(Upsert(GX, GX.c.session_id, {**rows[0], "apn": "changed"})))
        results = await asyncio.gather(*ops, return_exceptions=True)
        assert [type(r).__name__ for r in results].count("RuntimeError") == 1
        with engine.connect() as conn:
            apns = dict(conn.execute(sa.select(GX.c.session_id, GX.c.apn)).all())
        assert len(apns) == 20 and apns["s0"] == "changed" and apns["s1"] == "ims"
        # A clean batch with a key written twice goes out as one executemany, last row kept.
        await asyncio.gather(*(
            writer.run(Upsert(GX, GX.c.session_id, {**rows[i % 3], "apn": f"v{i}"}))
            for i in range(6)
        ))  # fmt: skip
        with engine.connect() as conn:
            apns = dict(conn.execute(sa.select(GX.c.session_id, GX.c.apn)).all())
        assert (apns["s0"], apns["s1"], apns["s2"]) == ("v3", "v4", "v5")

    asyncio.run(scenario())


def test_writer_merges_row_writes_without_reordering_a_row(engine: sa.Engine) -> None:
    """Upserts and deletes of different rows share one group; a write touching a row (or a row
    bound to it) already written in the batch is applied after it, as queued."""

    async def scenario() -> None:
        store = SessionStore(engine, "me")
        gx = [gx_state(f"g{i}", f"10.0.2.{i}") for i in range(4)]
        for state in gx:
            await store.save_gx(state)
        await store.save_rx(gx[0], RxState("rx0", "g0", "af", "realm"))
        await store.save_rx(gx[1], RxState("rx1", "g1", "af", "realm"))
        writer = store.writer
        ops = [
            writer.run(Delete(GX, GX.c.session_id, "g0", RX.c.gx_session_id)),
            writer.run(Upsert(GX, GX.c.session_id, gx_state("g9", "10.0.2.9").row())),
            writer.run(Delete(RX, RX.c.session_id, "rx1")),  # after g0's cascade: new group
            writer.run(Delete(GX, GX.c.session_id, "g1", RX.c.gx_session_id)),  # rx1 gone
            writer.run(Upsert(GX, GX.c.session_id, gx_state("g0", "10.0.2.0").row())),  # again
            writer.run(Delete(GX, GX.c.session_id, "g2", RX.c.gx_session_id)),
        ]
        results = await asyncio.gather(*ops)
        assert [r.session_id for r in results[0]] == ["rx0"]
        assert results[3] == [] and results[5] == []
        with engine.connect() as conn:
            gx_ids = set(conn.execute(sa.select(GX.c.session_id)).scalars())
            rx_ids = set(conn.execute(sa.select(RX.c.session_id)).scalars())
        assert gx_ids == {"g0", "g3", "g9"} and rx_ids == set()

    asyncio.run(scenario())


def test_writer_spaces_commits_by_its_interval(engine: sa.Engine) -> None:
    """Writes arriving within the interval after a commit started wait and share the next one
    (one transaction: one created_at); the first write after a quiet spell does not wait."""

    async def scenario() -> None:
        writer = GroupCommitWriter(engine, interval=0.5)
        rows = [gx_state(f"i{i}", f"10.0.3.{i}").row() for i in range(6)]
        loop = asyncio.get_running_loop()
        start = loop.time()
        await writer.run(Upsert(GX, GX.c.session_id, rows[0]))
        assert loop.time() - start < 0.4

        async def later(i: int) -> None:
            await asyncio.sleep(0.01 * i)
            await writer.run(Upsert(GX, GX.c.session_id, rows[i]))

        await asyncio.gather(*(later(i) for i in range(1, 6)))
        assert loop.time() - start >= 0.5
        await writer.close()

    asyncio.run(scenario())
    with engine.connect() as conn:
        stamps = dict(conn.execute(sa.select(GX.c.session_id, GX.c.created_at)).all())
    assert set(stamps) == {f"i{i}" for i in range(6)}
    assert len({stamps[f"i{i}"] for i in range(1, 6)}) == 1 and stamps["i1"] > stamps["i0"]


def test_writer_splits_large_batches_into_multi_row_statements(engine: sa.Engine) -> None:
    """100 upserts, then 100 deletes with their bound AF sessions, in one batch each (chunks of
    64 + 32 + 4 rows): every row lands, an upsert of an existing key replaces it but keeps its
    created_at, and each delete gets exactly its own children back."""

    async def scenario() -> None:
        store = SessionStore(engine, "me")
        writer = store.writer
        states = [gx_state(f"m{i}", f"10.1.{i // 200}.{i % 200}") for i in range(100)]
        await asyncio.gather(*(writer.run(Upsert(GX, GX.c.session_id, s.row())) for s in states))
        with engine.connect() as conn:
            first = dict(conn.execute(sa.select(GX.c.session_id, GX.c.created_at)).all())
        assert set(first) == {s.session_id for s in states}
        await asyncio.gather(*(
            writer.run(Upsert(RX, RX.c.session_id, RxState(f"rx{i}", f"m{i}", "af", "r").row()))
            for i in range(0, 100, 3)
        ))  # fmt: skip
        await asyncio.gather(*(
            writer.run(Upsert(GX, GX.c.session_id, {**s.row(), "apn": f"apn{i}"}))
            for i, s in enumerate(states)
        ))  # fmt: skip
        loaded = SessionStore(engine, "me")
        await loaded.load()
        for i, s in enumerate(states):
            row = loaded.gx(s.session_id)
            assert row is not None and row.apn == f"apn{i}" and row.decision == s.decision
            assert row.rx_sessions == ({f"rx{i}"} if i % 3 == 0 else set())
        with engine.connect() as conn:
            again = dict(conn.execute(sa.select(GX.c.session_id, GX.c.created_at)).all())
        assert again == first
        results = await asyncio.gather(*(
            writer.run(Delete(GX, GX.c.session_id, s.session_id, RX.c.gx_session_id))
            for s in states
        ))  # fmt: skip
        assert [[r.session_id for r in rows] for rows in results] == [
            [f"rx{i}"] if i % 3 == 0 else [] for i in range(100)
        ]
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(GX)).scalar() == 0
            assert conn.execute(sa.select(sa.func.count()).select_from(RX)).scalar() == 0

    asyncio.run(scenario())
