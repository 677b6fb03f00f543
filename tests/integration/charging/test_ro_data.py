"""Gy data sessions: two rating groups with a bundle, thresholds, Final-Unit-Indication with each
Final-Unit-Action, 4012 on an empty account, Tariff-Time-Change."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

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
    outbox,
    provisioning,
    ro_client,
    subscriber,
    units,
)

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BUNDLE = {"name": "data", "kind": "unit", "unit": "octets", "bundle": "data_1g",
          "amount": 1_000_000}  # fmt: skip
SPEC = provisioning(
    subscriber("bob", "491700000002"),
    subscriber("carol", "491700000003"),
    subscriber("dave", "491700000004"),
    subscriber("erin", "491700000005", plan="redirect"),
    subscriber("frank", "491700000006", plan="restrict"),
    accounts=[
        account("bob", 500, BUNDLE),
        account("carol", 10),
        account("dave", 0),
        account("erin", 1),
        account("frank", 1),
    ],
)


def subscription(msisdn: str) -> tuple[int, str]:
    return (0, msisdn)


def test_data_session_with_two_rating_groups_and_a_bundle(database_url: str) -> None:
    async def scenario() -> None:
        async with (
            ocs_server(database_url, SPEC, clock=lambda: NOON) as server,
            ro_client(server.port, "pgw.test") as client,
        ):
            sid, bob = "pgw.test;1;data", subscription("491700000002")
            cca = await client.send(
                ccr(sid, INITIAL, 0, mscc(rg=10, rsu=units(octets=3_000_000)),
                    mscc(rg=30, rsu=units(octets=1_000_000)), subscription=bob)
            )  # fmt: skip
            assert cca.get("Result-Code") == 2001
            rg10, rg30 = gsu(cca, 0), gsu(cca, 1)
            # 1 MB from the bundle + 2 MB bought for 0.02; RG 30 has no bundle: 1 MB for 0.02.
            assert rg10["Rating-Group"] == 10 and rg10["CC-Total-Octets"] == 3_000_000
            assert rg10["Volume-Quota-Threshold"] == 600_000
            assert rg10["Quota-Holding-Time"] == 300 and rg10["Validity-Time"] == 1800
            assert rg30["CC-Total-Octets"] == 1_000_000 and "FUI" not in rg30
            assert balance(server.engine, "bob") == (500, 4)
            assert balance(server.engine, "bob", "data") == (1_000_000, 1_000_000)

            cca = await client.send(
                ccr(sid, UPDATE, 1,
                    mscc(rg=10, rsu=units(octets=3_000_000), usu=units(up=500_000, down=2_000_000)),
                    mscc(rg=30, usu=units(octets=1_000_000)), subscription=bob)
            )  # fmt: skip
            rg10, rg30 = gsu(cca, 0), gsu(cca, 1)
            assert rg10["CC-Total-Octets"] == 3_000_000  # bundle empty now: all bought, 0.03
            assert rg30["Result-Code"] == 2001 and "CC-Total-Octets" not in rg30
            # Debited: bundle 1 MB; RG 10 1.5 MB → 0.02 (half_up); RG 30 1 MB → 0.02.
            assert balance(server.engine, "bob", "data") == (0, 0)
            assert balance(server.engine, "bob") == (496, 3)

            cca = await client.send(
                ccr(sid, TERMINATION, 2, mscc(rg=10, usu=units(octets=1_000_000)),
                    subscription=bob)
            )  # fmt: skip
            assert cca.get("Result-Code") == 2001
            assert balance(server.engine, "bob") == (495, 0)
            [cdr] = outbox(server.engine)
            assert cdr["recordType"] == "pGWRecord" and cdr["charge"] == 5
            by_rg = {s["ratingGroup"]: s for s in cdr["listOfServiceData"]}
            assert by_rg[10]["dataVolumeUplink"] == 500_000
            assert by_rg[10]["dataVolumeDownlink"] == 3_000_000 and by_rg[10]["charge"] == 3
            assert by_rg[30]["dataVolumeDownlink"] == 1_000_000 and by_rg[30]["charge"] == 2
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_final_units_then_credit_limit_reached(database_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(database_url, SPEC) as server, ro_client(server.port) as client:
            carol, dave = subscription("491700000003"), subscription("491700000004")
            call = ims("tel:+4930123456")  # DE_FIXED 0.06/min, per second
            cca = await client.send(
                ccr("c;1", INITIAL, 0, mscc(rg=100, rsu=units(time=300)), call, subscription=carol)
            )
            grant = gsu(cca)
            # 0.10 buys 104 s (0.104 rounds half_up to 0.10): the last units, so FUI TERMINATE.
            assert grant["CC-Time"] == 104 and grant["FUI"] == {"Final-Unit-Action": 0}
            assert "Time-Quota-Threshold" not in grant
            cca = await client.send(
                ccr("c;1", UPDATE, 1, mscc(rg=100, rsu=units(time=60), usu=units(time=104)),
                    call, subscription=carol)
            )  # fmt: skip
            assert cca.get("Result-Code") == 4012 and gsu(cca)["Result-Code"] == 4012
            assert balance(server.engine, "carol") == (0, 0)
            cca = await client.send(
                ccr("d;1", INITIAL, 0, mscc(rg=100, rsu=units(time=60)), call, subscription=dave)
            )
            assert cca.get("Result-Code") == 4012 and gsu(cca)["Result-Code"] == 4012
            assert "CC-Time" not in gsu(cca)
            assert verify(server.engine) == []

    asyncio.run(scenario())


def test_redirect_and_restrict_plans(database_url: str) -> None:
    async def scenario() -> None:
        async with (
            ocs_server(database_url, SPEC, clock=lambda: NOON) as server,
            ro_client(server.port, "pgw.test") as client,
        ):
            cca = await client.send(
                ccr("e;1", INITIAL, 0, mscc(rg=10, rsu=units(octets=5_000_000)),
                    subscription=subscription("491700000005"))
            )  # fmt: skip
            grant = gsu(cca)
            assert grant["CC-Total-Octets"] == 1_499_000
            assert grant["FUI"] == {
                "Final-Unit-Action": 1,
                "Redirect-Server": {
                    "Redirect-Address-Type": 2,
                    "Redirect-Server-Address": "http://topup.example/",
                },
            }
            cca = await client.send(
                ccr("f;1", INITIAL, 0, mscc(rg=10, rsu=units(octets=5_000_000)),
                    subscription=subscription("491700000006"))
            )  # fmt: skip
            assert gsu(cca)["FUI"] == {
                "Final-Unit-Action": 2,
                "Restriction-Filter-Rule": ["permit out ip from 192.0.2.10 to any"],
            }

    asyncio.run(scenario())


def test_tariff_time_change_prices_each_side_at_its_rate(sqlite_url: str) -> None:
    """RG 30 costs 0.01/MB at night and 0.02/MB by day; the band switches at 06:00."""
    before = datetime(2026, 6, 1, 5, 50, tzinfo=UTC)

    async def scenario() -> None:
        async with (
            ocs_server(sqlite_url, SPEC, clock=lambda: before) as server,
            ro_client(server.port, "pgw.test") as client,
        ):
            bob = subscription("491700000002")
            cca = await client.send(
                ccr("b;t", INITIAL, 0, mscc(rg=30, rsu=units(octets=2_000_000)), subscription=bob)
            )
            grant = gsu(cca)
            assert grant["Tariff-Time-Change"] == datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
            cca = await client.send(
                ccr("b;t", TERMINATION, 1,
                    mscc(rg=30, usu=[units(octets=1_000_000, tariff_change_usage=0),
                                     units(octets=1_000_000, tariff_change_usage=1)]),
                    subscription=bob)
            )  # fmt: skip
            assert cca.get("Result-Code") == 2001
            assert balance(server.engine, "bob") == (500 - 1 - 2, 0)

    asyncio.run(scenario())


def test_partial_records_split_a_long_session(database_url: str) -> None:
    """With a 1 MB volume limit per record (TS 32.298 partial records), the CDRs of a session
    carry recordSequenceNumber 1, 2 ... and together report its whole usage and charge."""
    from charging.cdr.partial import PartialRecordPolicy
    from charging.config import OcsConfig
    from tests.fixtures.ocs import test_plan

    config = OcsConfig(tariffs={"Test": test_plan()}, node_id="ocs.test",
                       partial=PartialRecordPolicy(volume_octets=1_000_000))  # fmt: skip

    async def scenario() -> None:
        async with (
            ocs_server(database_url, SPEC, config=config, clock=lambda: NOON) as server,
            ro_client(server.port, "pgw.test") as client,
        ):
            sid, carol = "pgw.test;partial", subscription("491700000003")
            used = [1_500_000, 500_000, 200_000]
            await client.send(
                ccr(sid, INITIAL, 0, mscc(rg=30, rsu=units(octets=2_000_000)), subscription=carol)
            )
            for n, octets in enumerate(used[:2], start=1):
                await client.send(
                    ccr(sid, UPDATE, n, mscc(rg=30, rsu=units(octets=2_000_000),
                                             usu=units(octets=octets)), subscription=carol)
                )  # fmt: skip
            await client.send(
                ccr(sid, TERMINATION, 3, mscc(rg=30, usu=units(octets=used[2])), subscription=carol)
            )
            cdrs = outbox(server.engine)
            assert [c["recordSequenceNumber"] for c in cdrs] == [1, 2]
            assert [c["causeForRecordClosing"] for c in cdrs] == ["volumeLimit", "normalRelease"]
            volumes = [c["listOfServiceData"][0]["dataVolumeDownlink"] for c in cdrs]
            assert volumes == [1_500_000, 700_000]
            assert len({c["cdrId"] for c in cdrs}) == 2
            # RG 30 by day: 0.02/MB → 0.03 then 0.01 + 0.00 (half_up per report): all of it.
            assert sum(c["charge"] for c in cdrs) == 10 - balance(server.engine, "carol")[0]
            assert verify(server.engine) == []

    asyncio.run(scenario())
