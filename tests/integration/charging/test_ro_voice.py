"""SCUR voice calls over a real Diameter connection, exact against the test tariff."""

from __future__ import annotations

import asyncio

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
    journal_causes,
    mscc,
    ocs_server,
    outbox,
    provisioning,
    ro_client,
    subscriber,
    units,
)

SPEC = provisioning(
    subscriber("alice", "491700000001"),
    accounts=[account("alice", 1000)],
)
CALLEE = "tel:+4915112345678"  # DE_MOBILE: 0.05 connect + 0.12/min, 60/1 increments


def test_full_scur_voice_call_is_charged_exactly(database_url: str) -> None:
    async def scenario() -> None:
        async with ocs_server(database_url, SPEC) as server, ro_client(server.port) as client:
            sid = "cscf.test;1;voice"
            voice = ims(CALLEE, "sip:+491700000001@ims.test", icid="icid-1")
            cca = await client.send(
                ccr(sid, INITIAL, 0, mscc(rg=100, sid=1000, rsu=units(time=60)), voice)
            )
            assert cca.get("Result-Code") == 2001
            assert cca.get("CC-Request-Number") == 0
            grant = gsu(cca)
            assert grant["CC-Time"] == 60 and grant["Result-Code"] == 2001
            assert grant["Validity-Time"] == 1800 and grant["Time-Quota-Threshold"] == 12
            assert balance(server.engine, "alice") == (1000, 17)  # 0.05 + 1 min
            for n in (1, 2):
                cca = await client.send(
                    ccr(sid, UPDATE, n, mscc(rg=100, sid=1000, rsu=units(time=60),
                                             usu=units(time=60)), voice)
                )  # fmt: skip
                assert cca.get("Result-Code") == 2001 and gsu(cca)["CC-Time"] == 60
            assert balance(server.engine, "alice") == (1000 - 17 - 12, 12)
            cca = await client.send(
                ccr(sid, TERMINATION, 3, mscc(rg=100, sid=1000, usu=units(time=25)), voice,
                    extra=[("Termination-Cause", 1)])
            )  # fmt: skip
            assert cca.get("Result-Code") == 2001
            # 145 s: 0.05 + 145/60 × 0.12 = 0.34
            assert balance(server.engine, "alice") == (1000 - 34, 0)
            causes = journal_causes(server.engine, sid)
            assert sum(d for c, d, _ in causes) == -34
            assert [c for c, _, _ in causes] == [
                "reserve", "debit", "reserve", "debit", "reserve", "debit",
            ]  # fmt: skip
            assert verify(server.engine) == []
            [cdr] = outbox(server.engine)
            assert cdr["sessionId"] == sid and cdr["charge"] == 34 and cdr["currency"] == "EUR"
            assert cdr["recordType"] == "sCSCFRecord"
            assert cdr["causeForRecordClosing"] == "normalRelease"
            assert cdr["iMS-Charging-Identifier"] == "icid-1"
            assert cdr["calledPartyAddress"] == CALLEE
            assert cdr["servedSubscriptionIds"] == [
                {"subscriptionIDType": "END_USER_E164", "subscriptionIDData": "491700000001"}
            ]
            [service] = cdr["listOfServiceData"]
            assert service["ratingGroup"] == 100 and service["serviceIdentifier"] == 1000
            assert service["timeUsage"] == 145 and service["charge"] == 34
            assert cdr["key"] == "491700000001"

    asyncio.run(scenario())


def test_a_wrongly_remembered_session_owner_is_caught_and_the_update_charged_right(
    database_url: str,
) -> None:
    """Updates lock the accounts the node remembers for their sessions (charging.owners); a
    wrong memory is found once the locks are held and the batch re-runs asking the database."""
    spec = provisioning(
        subscriber("alice", "491700000001"), subscriber("bob", "491700000002"),
        accounts=[account("alice", 1000), account("bob", 1000)],
    )  # fmt: skip

    async def scenario() -> None:
        async with ocs_server(database_url, spec) as server, ro_client(server.port) as client:
            sid = "cscf.test;1;owner"
            voice = ims(CALLEE, "sip:+491700000001@ims.test")
            cca = await client.send(ccr(sid, INITIAL, 0, mscc(rsu=units(time=60)), voice))
            assert cca.get("Result-Code") == 2001
            owners = server.app.processor.owners
            ((_, alice, subscriber_id),) = owners.split([sid])[0]
            with server.engine.connect() as conn:
                bob = conn.exec_driver_sql(
                    "SELECT id FROM accounts WHERE name = 'bob'").scalar_one()  # fmt: skip
            assert bob != alice
            owners.learn([(sid, bob, subscriber_id)])  # as if remembered wrongly
            cca = await client.send(
                ccr(sid, UPDATE, 1, mscc(rsu=units(time=60), usu=units(time=60)), voice)
            )
            assert cca.get("Result-Code") == 2001 and gsu(cca)["CC-Time"] == 60
            assert owners.split([sid])[0] == [(sid, alice, subscriber_id)]  # corrected
            assert balance(server.engine, "alice") == (1000 - 17, 12)
            assert balance(server.engine, "bob") == (1000, 0)
            assert verify(server.engine) == []

    asyncio.run(scenario())
