"""A VoLTE call through the whole chain: SIP UAs → IMS core → PCRF (Rx/Gx) and OCS (Ro) →
PCEF simulator; bearer during the call, charge and CDR after it; refusals and releases."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from diam.message import Message
from ims.pcef import PcefSimulator
from tests.fixtures.ocs import balance, outbox
from tests.integration.ims.chain import ABROAD, CALLEE, CALLER, chain_running
from tests.integration.ims.harness import DOMAIN, ua_running

GBR = 49_000 + 2_000 + 0  # b=AS 49 kbit/s + RR 2000 + RS 0 (RTCP on the same bearer)


async def attach(pcef: PcefSimulator, *ues: tuple[str, str, str]) -> None:
    for imsi, msisdn, ip in ues:
        await pcef.attach(imsi, msisdn, ip)


async def settled(engine: sa.Engine, account: str = "alice", timeout: float = 5.0) -> None:
    """Until no reservation is left on the account and no Ro session is open (the CCR-T has
    been committed: a CCA-U denial releases the reservation before it)."""
    from charging.models import RoSession

    open_sessions = sa.select(sa.func.count()).where(RoSession.__table__.c.state == "open")
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        with engine.connect() as conn:
            still_open = conn.execute(open_sessions).scalar_one()
        if balance(engine, account)[1] == 0 and not still_open:
            return
        assert loop.time() < end, "reservation never released or session never closed"
        await asyncio.sleep(0.05)


def test_call_creates_qci1_bearer_charges_and_writes_cdr(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            core = chain.ims.core
            sent: list[Message] = []
            for link in chain.ims.links:
                link.observers.append(
                    lambda kind, msg: sent.append(msg) if kind == "request" else None
                )
            async with (
                ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice,
                ua_running(core, f"+{CALLEE[1]}", CALLEE[2]),
            ):
                leg = await alice.call(f"sip:+{CALLEE[1]}@{DOMAIN}")
                assert leg.final is not None and leg.final.status == 200
                caller_gx = chain.pcef.by_ip(CALLER[2])
                callee_gx = chain.pcef.by_ip(CALLEE[2])
                assert caller_gx is not None and callee_gx is not None
                for session in (caller_gx, callee_gx):
                    (bearer,) = session.bearers.values()
                    assert bearer.qci == 1
                    assert (bearer.gbr_ul, bearer.gbr_dl) == (GBR, GBR)
                caller_bearer = next(iter(caller_gx.bearers.values()))
                assert set(caller_bearer.flows) == {
                    (direction, f"permit out 17 from 127.0.0.2 {port} to 127.0.0.1 {port}")
                    for direction in ("downlink", "uplink")
                    for port in (40000, 40001)
                }
                assert balance(chain.engine, "alice") == (1000, 17)  # reserved: first minute
                await asyncio.sleep(1.2)
                assert (await alice.bye(leg)).status == 200
                await chain.pcef.wait_for(lambda: not caller_gx.bearers and not callee_gx.bearers)
                await settled(chain.engine)
                # DE_MOBILE: 0.05 connect + 0.12/min in 60/1 increments → 17 cents for ≤ 60 s
                assert balance(chain.engine, "alice") == (1000 - 17, 0)
                (cdr,) = outbox(chain.engine)
                call = core.ended[-1]
                assert cdr["recordType"] == "sCSCFRecord"
                assert cdr["iMS-Charging-Identifier"] == call.icid
                assert cdr["callingPartyAddress"] == f"tel:+{CALLER[1]}"
                assert cdr["calledPartyAddress"] == f"tel:+{CALLEE[1]}"
                assert cdr["charge"] == 17 and cdr["currency"] == "EUR"
                assert cdr["causeForRecordClosing"] == "normalRelease"
                assert cdr["duration"] in (1, 2)
                check_kamailio_shapes(sent, call.icid, call.call_id)

    asyncio.run(main())


def check_kamailio_shapes(sent: list[Message], icid: str, call_id: str) -> None:
    """The Rx/Ro requests look like Kamailio's ims_qos / ims_charging (shared notes)."""
    aars = [m for m in sent if m.command_code == 265]
    assert len(aars) == 2  # one per UE
    caller_aar = next(m for m in aars if m.get("Framed-IP-Address") == bytes([127, 0, 0, 1]))
    assert caller_aar.get("AF-Application-Identifier") == b"IMS Services"
    assert caller_aar.get("AF-Charging-Identifier") == icid.encode()
    assert caller_aar.first("Vendor-Specific-Application-Id").get("Vendor-Id") == 10415
    assert [a.value for a in caller_aar["Specific-Action"]] == [2, 3, 4, 6, 8, 9, 12]
    assert caller_aar.get("Rx-Request-Type") is None
    sub = caller_aar.first("Subscription-Id")
    assert (sub.get("Subscription-Id-Type"), sub.get("Subscription-Id-Data")) == (
        2,
        f"sip:+{CALLER[1]}@{DOMAIN}",
    )
    (mcd,) = caller_aar["Media-Component-Description"]
    assert mcd.get("Media-Type") == 0 and mcd.get("Flow-Status") == 2
    for d in ("UL", "DL"):
        assert mcd.get(f"Max-Requested-Bandwidth-{d}") == 49_000
        assert mcd.get(f"Min-Requested-Bandwidth-{d}") == 49_000
    assert (mcd.get("RR-Bandwidth"), mcd.get("RS-Bandwidth")) == (2000, 0)
    codec = [a.value for a in mcd["Codec-Data"]]
    assert codec[0].startswith("uplink\noffer\nm=audio 40000 RTP/AVP 97 101\n")
    assert codec[1].startswith("downlink\nanswer\n")
    rtp, rtcp = mcd["Media-Sub-Component"]
    assert [a.value for a in rtp["Flow-Description"]] == [
        "permit out 17 from 127.0.0.2 40000 to 127.0.0.1 40000",
        "permit in 17 from 127.0.0.1 40000 to 127.0.0.2 40000",
    ]
    assert rtcp.get("Flow-Usage") == 1 and rtcp.get("Flow-Number") == 2
    ccrs = [m for m in sent if m.command_code == 272]
    assert [m.get("CC-Request-Type") for m in ccrs] == [1, 3]
    assert [m.get("CC-Request-Number") for m in ccrs] == [0, 1]  # starting at 0
    initial, final = ccrs
    assert initial.get("Service-Context-Id") == "32260@3gpp.org"
    mscc = initial.first("Multiple-Services-Credit-Control")
    assert (mscc.get("Service-Identifier"), mscc.get("Rating-Group")) == (1000, 100)
    assert mscc.first("Requested-Service-Unit").get("CC-Time") == 60
    ims = initial.first("Service-Information").first("IMS-Information")
    assert ims.get("IMS-Charging-Identifier") == icid and ims.get("User-Session-Id") == call_id
    assert (ims.get("Role-Of-Node"), ims.get("Node-Functionality")) == (0, 0)
    assert ims.first("Event-Type").get("SIP-Method") == "INVITE"
    used = final.first("Multiple-Services-Credit-Control").first("Used-Service-Unit")
    assert used.get("CC-Time") in (1, 2) and final.get("Termination-Cause") == 1
    assert [m.command_code for m in sent].count(275) == 2  # STR per UE


def test_no_credit_is_402(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url, money=0) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            core = chain.ims.core
            async with (
                ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice,
                ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob,
            ):
                final = (await alice.call(f"sip:+{CALLEE[1]}@{DOMAIN}")).final
                assert final is not None and final.status == 402
                assert "credit control 4012" in (final.headers.get("Reason") or "")
                assert bob.legs == {}  # never rang

    asyncio.run(main())


def test_media_refused_by_the_pgw_is_488(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            chain.pcef.fail_installs = 1  # the PGW refuses the caller's dedicated bearer
            core = chain.ims.core
            async with (
                ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice,
                ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob,
            ):
                final = (await alice.call(f"sip:+{CALLEE[1]}@{DOMAIN}")).final
                assert final is not None and final.status == 488
                assert (final.headers.get("Reason") or "").startswith("SIP;cause=488")
                bob_leg = next(iter(bob.legs.values()))
                await asyncio.wait_for(bob_leg.ended.wait(), 3)  # callee: ACK + BYE
                await settled(chain.engine)
                assert balance(chain.engine, "alice") == (1000, 0)  # nothing charged
                sessions = [chain.pcef.by_ip(ip) for ip in (CALLER[2], CALLEE[2])]
                # the callee's AAR succeeded: its STR removes that bearer again
                await chain.pcef.wait_for(
                    lambda: all(s is not None and not s.bearers for s in sessions)
                )

    asyncio.run(main())


def test_bearer_loss_releases_the_call_both_ways(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            core = chain.ims.core
            async with (
                ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice,
                ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob,
            ):
                leg = await alice.call(f"sip:+{CALLEE[1]}@{DOMAIN}")
                assert leg.final is not None and leg.final.status == 200
                bob_leg = await asyncio.wait_for(bob.incoming.get(), 3)
                caller_gx = chain.pcef.by_ip(CALLER[2])
                assert caller_gx is not None
                (rule,) = caller_gx.bearers
                await chain.pcef.lose_bearer(caller_gx, rule)  # PCRF → Rx ASR → BYE both
                await asyncio.wait_for(leg.ended.wait(), 3)
                await asyncio.wait_for(bob_leg.ended.wait(), 3)
                assert "bearer lost" in (leg.bye.headers.get("Reason") or "")  # type: ignore[union-attr]
                callee_gx = chain.pcef.by_ip(CALLEE[2])
                assert callee_gx is not None
                await chain.pcef.wait_for(lambda: not callee_gx.bearers)  # STR removed it
                await settled(chain.engine)
                assert core.ended[-1].end_cause == "Rx abort"
                assert chain.ims.rx is not None and chain.ims.rx.sessions == {}

    asyncio.run(main())


def test_out_of_credit_mid_call_releases_both_ways(database_url: str) -> None:
    async def main() -> None:
        # WORLD is rated per second; 3 cents last a few seconds, grants of 2 s
        async with chain_running(database_url, money=3, requested=2, ro_buffer=0.5) as chain:
            await attach(chain.pcef, CALLER, ABROAD)
            core = chain.ims.core
            async with (
                ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice,
                ua_running(core, f"+{ABROAD[1]}", ABROAD[2]) as far,
            ):
                leg = await alice.call(f"sip:+{ABROAD[1]}@{DOMAIN}")
                assert leg.final is not None and leg.final.status == 200
                far_leg = await asyncio.wait_for(far.incoming.get(), 3)
                await asyncio.wait_for(leg.ended.wait(), 15)
                await asyncio.wait_for(far_leg.ended.wait(), 3)
                for bye in (leg.bye, far_leg.bye):
                    assert bye is not None and "SIP;cause=402" in (bye.headers.get("Reason") or "")
                await settled(chain.engine)
                amount, reserved = balance(chain.engine, "alice")
                assert 0 <= amount < 3 and reserved == 0
                (cdr,) = outbox(chain.engine)
                assert cdr["charge"] == 3 - amount
                assert cdr["causeForRecordClosing"] != "normalRelease"  # Termination-Cause 6
                assert core.ended[-1].end_cause in ("credit exhausted", "out of credit")

    asyncio.run(main())
