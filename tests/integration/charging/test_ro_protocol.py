"""Ro protocol behaviour: error Result-Codes, exactly-once retransmissions (also across a
restart), a Kamailio-style S-CSCF CCR-I, the no-leak sweep and RAR after a top-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from charging.config import OcsConfig
from charging.ro import OcsApplication
from charging.verify import verify
from diam.constants import FLAG_RETRANSMIT
from diam.message import Avp, Message
from openpcc.database import create_engine, upgrade
from tests.fixtures.ocs import (
    INITIAL,
    SIP_URI,
    TERMINATION,
    UPDATE,
    account,
    balance,
    ccr,
    gsu,
    ims,
    journal_causes,
    mscc,
    ocs_server,
    outbox,
    provisioning,
    ro_client,
    subscriber,
    units,
)
from tests.fixtures.ocs import (
    test_plan as tariff_plan,  # aliased: pytest would collect a test_* name
)

SPEC = provisioning(
    subscriber("alice", "491700000001", sip_uris=["sip:alice@ims.test"]),
    subscriber("barred", "491700000009", status="barred"),
    accounts=[account("alice", 1000), account("barred", 1000)],
)
CALL = ims("tel:+4915112345678")


def retransmit(msg: Message) -> Message:
    again = Message.decode(msg.encode())
    again.flags |= FLAG_RETRANSMIT
    again.hop_by_hop = 0
    return again


def test_error_result_codes(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(sqlite_url, SPEC) as server, ro_client(server.port) as client:
            unknown = await client.send(
                ccr("x;1", INITIAL, 0, mscc(rg=1, rsu=units(time=60)), CALL,
                    subscription=(0, "4999999"))
            )  # fmt: skip
            assert unknown.get("Result-Code") == 5030
            barred = await client.send(
                ccr("x;2", INITIAL, 0, mscc(rg=1, rsu=units(time=60)), CALL,
                    subscription=(0, "491700000009"))
            )  # fmt: skip
            assert barred.get("Result-Code") == 4010
            no_session = await client.send(
                ccr("x;3", UPDATE, 1, mscc(rg=1, usu=units(time=10)), CALL)
            )
            assert no_session.get("Result-Code") == 5002
            missing = ccr("x;4", INITIAL, 0, mscc(rg=1, rsu=units(time=60)), CALL)
            missing.avps = [a for a in missing.avps if a.name != "CC-Request-Number"]
            answer = await client.send(missing)
            assert answer.get("Result-Code") == 5005
            failed = answer.first("Failed-AVP")
            assert [a.name for a in failed] == ["CC-Request-Number"]
            bad = ccr("x;5", INITIAL, 0, mscc(rg=1, rsu=units(time=60)), CALL)
            bad.first("CC-Request-Type").value = 9
            answer = await client.send(bad)
            assert answer.get("Result-Code") == 5004
            assert answer.first("Failed-AVP").first("CC-Request-Type").value == 9
            norate = await client.send(ccr("x;6", INITIAL, 0, mscc(rg=99, rsu=units(octets=1000))))
            assert norate.get("Result-Code") == 5031 and gsu(norate)["Result-Code"] == 5031
            free = await client.send(ccr("x;7", INITIAL, 0, mscc(rg=20, rsu=units(octets=1000))))
            assert gsu(free)["Result-Code"] == 4011
            # CC-Request-Number per session: a gap is tolerated, going back is not (unless it is
            # a retransmission, answered from the store).
            ok = await client.send(ccr("x;8", INITIAL, 0, mscc(rg=1, rsu=units(time=60)), CALL))
            assert ok.get("Result-Code") == 2001
            gap = await client.send(ccr("x;8", UPDATE, 5, CALL))
            assert gap.get("Result-Code") == 2001
            back = await client.send(ccr("x;8", UPDATE, 3, CALL))
            assert back.get("Result-Code") == 5004
            assert back.first("Failed-AVP").first("CC-Request-Number").value == 3
            replayed = await client.send(ccr("x;8", UPDATE, 0, CALL))
            assert replayed.get("CC-Request-Type") == 1  # the stored CCA-I
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_retransmissions_are_charged_once_also_after_a_restart(database_url: str) -> None:
    async def scenario() -> None:
        sid = "cscf.test;rt"
        first_update = ccr(
            sid, UPDATE, 1, mscc(rg=100, rsu=units(time=60), usu=units(time=60)), CALL
        )
        async with ocs_server(database_url, SPEC) as server, ro_client(server.port) as client:
            await client.send(ccr(sid, INITIAL, 0, mscc(rg=100, rsu=units(time=60)), CALL))
            original = await client.send(first_update)
            again = await client.send(retransmit(first_update))
            plain_again = await client.send(ccr(
                sid, UPDATE, 1, mscc(rg=100, rsu=units(time=60), usu=units(time=60)), CALL
            ))  # fmt: skip
            for copy in (again, plain_again):
                assert copy.get("Result-Code") == original.get("Result-Code") == 2001
                assert gsu(copy) == gsu(original)
            assert balance(server.engine, "alice") == (1000 - 17, 12)
        # A restarted server (same database) answers the retransmission from the store.
        async with ocs_server(database_url, None) as server, ro_client(server.port) as client:
            again = await client.send(retransmit(first_update))
            assert gsu(again) == gsu(original)
            end = ccr(sid, TERMINATION, 2, mscc(rg=100, usu=units(time=30)), CALL)
            await client.send(end)
            await client.send(retransmit(end))
            assert balance(server.engine, "alice") == (1000 - 17 - 6, 0)
            debits = [d for c, d, _ in journal_causes(server.engine, sid) if c == "debit"]
            assert debits == [-17, -6]
            assert len(outbox(server.engine)) == 1
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_kamailio_style_scscf_ccr_initial(sqlite_url: str) -> None:
    """As Kamailio ims_charging sends it: no Auth-Application-Id, VSAI{10415, 4}, number 0,
    Service-Context-Id ext.01.001.8.32260@3gpp.org, SIP URI subscription, Rf leftovers."""

    async def scenario() -> None:
        async with ocs_server(sqlite_url, SPEC) as server, ro_client(server.port) as client:
            request = ccr(
                "scscf.ims.test;9;1", INITIAL, 0,
                mscc(rg=100, sid=1000, rsu=units(time=1800)),
                Avp.new("Service-Information", [("IMS-Information", [
                    ("Role-Of-Node", 0), ("Node-Functionality", 0),
                    ("User-Session-Id", "a84b4c76e66710@pc33.atlanta.example.com"),
                    ("Calling-Party-Address", "sip:alice@ims.test"),
                    ("Called-Party-Address", "sip:+4915112345678@ims.test;user=phone"),
                ])]),
                subscription=(SIP_URI, "sip:alice@ims.test"),
                auth_app=False,
                extra=[
                    ("Vendor-Specific-Application-Id",
                     [("Vendor-Id", 10415), ("Auth-Application-Id", 4)]),
                    ("Accounting-Record-Type", 2), ("Accounting-Record-Number", 0),
                ],
            )  # fmt: skip
            request.first("Service-Context-Id").value = "ext.01.001.8.32260@3gpp.org"
            answer = await client.send(request)
            assert answer.get("Result-Code") == 2001
            grant = gsu(answer)
            assert grant["CC-Time"] == 1800 and grant["Validity-Time"] > 0
            by_e164 = await client.send(
                ccr("scscf.ims.test;9;2", INITIAL, 0, mscc(rg=100, rsu=units(time=60)),
                    CALL, subscription=(SIP_URI, "sip:+491700000001@ims.test;user=phone"))
            )  # fmt: skip
            assert by_e164.get("Result-Code") == 2001

    asyncio.run(scenario())


def test_sweep_closes_abandoned_sessions(database_url: str) -> None:
    now = [datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]

    async def scenario() -> None:
        async with (
            ocs_server(database_url, SPEC, clock=lambda: now[0], sweep_interval=0) as server,
            ro_client(server.port) as client,
        ):
            sid = "cscf.test;lost"
            await client.send(ccr(sid, INITIAL, 0, mscc(rg=100, rsu=units(time=60)), CALL))
            await client.send(
                ccr(sid, UPDATE, 1, mscc(rg=100, rsu=units(time=60), usu=units(time=60)), CALL)
            )
            assert balance(server.engine, "alice") == (1000 - 17, 12)
            now[0] += timedelta(seconds=1800 + 59)
            assert await server.app.sweep() == 0  # within Validity-Time + grace
            now[0] += timedelta(seconds=2)
            assert await server.app.sweep() == 1
            assert balance(server.engine, "alice") == (1000 - 17, 0)  # reported usage stays
            [cdr] = outbox(server.engine)
            assert cdr["causeForRecordClosing"] == "abnormalRelease" and cdr["charge"] == 17
            late = await client.send(
                ccr(sid, TERMINATION, 2, mscc(rg=100, usu=units(time=60)), CALL)
            )
            assert late.get("Result-Code") == 5002
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_top_up_sends_rar_to_live_sessions(sqlite_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(sqlite_url, SPEC) as server, ro_client(server.port) as client:
            sid = "cscf.test;rar"
            await client.send(ccr(sid, INITIAL, 0, mscc(rg=100, rsu=units(time=60)), CALL))
            result = await server.app.top_up("alice", 500, reference="voucher-9")
            assert result.amount == 1500
            assert [r.get("Session-Id") for r in client.rars] == [sid]
            rar = client.rars[0]
            assert rar.get("Re-Auth-Request-Type") == 0 and rar.get("Auth-Application-Id") == 4
            assert rar.get("Destination-Host") == "cscf.test"

    asyncio.run(scenario())


def test_sweep_expires_buckets_past_their_validity(sqlite_url: str) -> None:
    now = [datetime(2026, 6, 1, 12, 0, tzinfo=UTC)]
    bucket = {"name": "data", "kind": "unit", "unit": "octets", "bundle": "data_1g",
              "amount": 5000, "valid_until": "2026-06-01T13:00:00Z"}  # fmt: skip
    spec = provisioning(subscriber("bob", "491700000002"), accounts=[account("bob", 100, bucket)])

    async def scenario() -> None:
        async with ocs_server(sqlite_url, spec, clock=lambda: now[0], sweep_interval=0) as server:
            await server.app.sweep()
            assert balance(server.engine, "bob", "data") == (5000, 0)
            now[0] += timedelta(hours=2)
            await server.app.sweep()
            assert balance(server.engine, "bob", "data") == (0, 0)
            assert balance(server.engine, "bob") == (100, 0)
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_stop_lets_a_running_sweep_finish(sqlite_url: str) -> None:
    """Shutting down while the scheduled sweep runs waits for it (it is not cancelled midway,
    which would log a traceback and drop the sweep's queued work)."""

    class ObservedSweep(OcsApplication):
        entered: asyncio.Event
        finished = False

        async def sweep(self, now: datetime | None = None) -> int:
            self.entered.set()
            await asyncio.sleep(0.2)
            closed = await super().sweep(now)
            self.finished = True
            return closed

    async def scenario() -> None:
        engine = create_engine(sqlite_url)
        upgrade(engine)
        app = ObservedSweep(engine, OcsConfig(tariffs={"Test": tariff_plan()}), sweep_interval=3600)
        app.entered = asyncio.Event()
        await app.start()
        await asyncio.wait_for(app.entered.wait(), 5)  # the first sweep runs at start
        await app.stop()
        assert app.finished
        engine.dispose()

    asyncio.run(scenario())
