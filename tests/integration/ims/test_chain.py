"""A VoLTE call through the whole chain: SIP UAs → IMS core → PCRF (Rx/Gx) and OCS (Ro) →
PCEF simulator; bearer during the call, charge and CDR after it; refusals and releases."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from ims.pcef import PcefSimulator
from tests.fixtures.ocs import balance, outbox
from tests.integration.ims.chain import ABROAD, CALLEE, CALLER, chain_running
from tests.integration.ims.harness import DOMAIN, ua_running

GBR = 49_000 + 2_000 + 0  # b=AS 49 kbit/s + RR 2000 + RS 0 (RTCP on the same bearer)


async def attach(pcef: PcefSimulator, *ues: tuple[str, str, str]) -> None:
    for imsi, msisdn, ip in ues:
        await pcef.attach(imsi, msisdn, ip)


async def settled(engine: sa.Engine, account: str = "alice", timeout: float = 5.0) -> None:
    """Until no reservation is left on the account (the CCR-T has been committed)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while balance(engine, account)[1] != 0:
        assert loop.time() < end, "reservation never released"
        await asyncio.sleep(0.05)


def test_call_creates_qci1_bearer_charges_and_writes_cdr(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            core = chain.ims.core
            async with ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice, \
                    ua_running(core, f"+{CALLEE[1]}", CALLEE[2]):
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
                    for direction in ("downlink", "uplink") for port in (40000, 40001)}
                assert balance(chain.engine, "alice") == (1000, 17)  # reserved: first minute
                await asyncio.sleep(1.2)
                assert (await alice.bye(leg)).status == 200
                await chain.pcef.wait_for(lambda: not caller_gx.bearers and
                                          not callee_gx.bearers)
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
                assert chain.pcrf.rx is not None

    asyncio.run(main())


def test_no_credit_is_402(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url, money=0) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            core = chain.ims.core
            async with ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice, \
                    ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob:
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
            async with ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice, \
                    ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob:
                final = (await alice.call(f"sip:+{CALLEE[1]}@{DOMAIN}")).final
                assert final is not None and final.status == 488
                assert (final.headers.get("Reason") or "").startswith("SIP;cause=488")
                bob_leg = next(iter(bob.legs.values()))
                await asyncio.wait_for(bob_leg.ended.wait(), 3)  # callee: ACK + BYE
                await settled(chain.engine)
                assert balance(chain.engine, "alice") == (1000, 0)  # nothing charged
                sessions = [chain.pcef.by_ip(ip) for ip in (CALLER[2], CALLEE[2])]
                # the callee's AAR succeeded: its STR removes that bearer again
                await chain.pcef.wait_for(lambda: all(s is not None and not s.bearers
                                                      for s in sessions))

    asyncio.run(main())


def test_bearer_loss_releases_the_call_both_ways(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url) as chain:
            await attach(chain.pcef, CALLER, CALLEE)
            core = chain.ims.core
            async with ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice, \
                    ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob:
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
            async with ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice, \
                    ua_running(core, f"+{ABROAD[1]}", ABROAD[2]) as far:
                leg = await alice.call(f"sip:+{ABROAD[1]}@{DOMAIN}")
                assert leg.final is not None and leg.final.status == 200
                far_leg = await asyncio.wait_for(far.incoming.get(), 3)
                await asyncio.wait_for(leg.ended.wait(), 15)
                await asyncio.wait_for(far_leg.ended.wait(), 3)
                for bye in (leg.bye, far_leg.bye):
                    assert bye is not None and "SIP;cause=402" in (bye.headers.get("Reason")
                                                                  or "")
                await settled(chain.engine)
                amount, reserved = balance(chain.engine, "alice")
                assert 0 <= amount < 3 and reserved == 0
                (cdr,) = outbox(chain.engine)
                assert cdr["charge"] == 3 - amount
                assert core.ended[-1].end_cause in ("credit exhausted", "out of credit")

    asyncio.run(main())
