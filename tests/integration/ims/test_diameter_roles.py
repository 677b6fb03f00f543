"""The P-CSCF/S-CSCF roles against unreachable peers and OCS-initiated requests (Ro RAR/ASR)."""

from __future__ import annotations

import asyncio
import socket

from diam.constants import (
    APP_CREDIT_CONTROL,
    APP_RX,
    CMD_AA,
    CMD_ABORT_SESSION,
    CMD_RE_AUTH,
    CMD_SESSION_TERMINATION,
    VENDOR_3GPP,
)
from diam.identity import LocalIdentity, PeerPolicy
from diam.message import Message
from diam.node import Node
from diam.peer import Peer
from ims.proxy import CoreConfig
from ims.service import DiameterPeer, ImsConfig, ImsService
from tests.integration.ims.chain import CALLEE, CALLER, chain_running
from tests.integration.ims.harness import DOMAIN, FAST, ua_running


def dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_ocs_or_pcrf_rejects_with_500_unless_rx_is_optional() -> None:
    async def call_status(**config: object) -> tuple[int, str]:
        ims = ImsService(
            ImsConfig(
                core=CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0),
                origin_host="cscf.test",
                origin_realm="test",
                timers=FAST,
                diameter_timeout=0.5,
                **config,
            )
        )  # type: ignore[arg-type]
        await ims.start()
        try:
            async with (
                ua_running(ims.core, "alice") as alice,
                ua_running(ims.core, "bob", ip="127.0.0.2"),
            ):
                final = (await alice.call(f"sip:bob@{DOMAIN}")).final
                assert final is not None
                return final.status, final.headers.get("Reason") or ""
        finally:
            await ims.close()

    async def main() -> None:
        dead = DiameterPeer("127.0.0.1", dead_port(), "test")
        assert await call_status(ocs=dead) == (500, 'SIP;cause=500;text="OCS unreachable"')
        assert await call_status(pcrf=dead) == (500, 'SIP;cause=500;text="PCRF unreachable"')
        assert (await call_status(pcrf=dead, rx_mandatory=False))[0] == 200  # best effort

    asyncio.run(main())


def test_aar_without_answer_is_terminated_with_str_when_the_call_is_rejected() -> None:
    """A PCRF too slow to answer in time may still apply the AAR: the rejected call's end sends
    an STR for each such Rx session, so no bearer stays behind."""

    async def main() -> None:
        aars: list[str] = []
        strs: list[str] = []

        async def on_aar(request: Message, peer: Peer) -> Message:
            aars.append(request.get("Session-Id"))
            await asyncio.sleep(1.0)  # past the IMS core's 0.3 s timeout
            return request.answer(2001)

        async def on_str(request: Message, peer: Peer) -> Message:
            strs.append(request.get("Session-Id"))
            return request.answer(2001)

        pcrf = Node(
            LocalIdentity("pcrf.test", "test", applications=frozenset({(APP_RX, VENDOR_3GPP)})),
            PeerPolicy(),
        )
        pcrf.add_route(APP_RX, CMD_AA, on_aar)
        pcrf.add_route(APP_RX, CMD_SESSION_TERMINATION, on_str)
        _, port = await pcrf.listen("127.0.0.1", 0)
        ims = ImsService(
            ImsConfig(
                core=CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0),
                origin_host="cscf.test",
                origin_realm="test",
                pcrf=DiameterPeer("127.0.0.1", port, "test"),
                timers=FAST,
                diameter_timeout=0.3,
            )
        )
        await ims.start()
        try:
            async with (
                ua_running(ims.core, "alice") as alice,
                ua_running(ims.core, "bob", ip="127.0.0.2"),
            ):
                final = (await alice.call(f"sip:bob@{DOMAIN}")).final
                assert final is not None and final.status == 500
                for _ in range(100):
                    if len(strs) == 2:
                        break
                    await asyncio.sleep(0.02)
                assert len(aars) == 2 and sorted(strs) == sorted(aars)
        finally:
            await ims.close()
            await pcrf.close()

    asyncio.run(main())


def test_ro_rar_forces_ccr_u_and_ro_asr_releases_the_call(database_url: str) -> None:
    async def main() -> None:
        async with chain_running(database_url) as chain:
            for imsi, msisdn, ip in (CALLER, CALLEE):
                await chain.pcef.attach(imsi, msisdn, ip)
            sent: list[Message] = []
            for link in chain.ims.links:
                link.observers.append(lambda kind, m: sent.append(m) if kind == "request" else None)
            core = chain.ims.core
            async with (
                ua_running(core, f"+{CALLER[1]}", CALLER[2]) as alice,
                ua_running(core, f"+{CALLEE[1]}", CALLEE[2]) as bob,
            ):
                leg = await alice.call(f"sip:+{CALLEE[1]}@{DOMAIN}")
                assert leg.final is not None and leg.final.status == 200
                bob_leg = await asyncio.wait_for(bob.incoming.get(), 3)
                (session_id,) = chain.ims.ro.sessions  # type: ignore[union-attr]

                def request(command: int) -> Message:
                    return Message.request(
                        command,
                        APP_CREDIT_CONTROL,
                        [
                            ("Session-Id", session_id),
                            ("Auth-Application-Id", APP_CREDIT_CONTROL),
                            ("Destination-Realm", "test"),
                            ("Destination-Host", "cscf.test"),
                            ("Re-Auth-Request-Type", 0),
                        ],
                    )

                raa = await chain.ocs_node.request(request(CMD_RE_AUTH), timeout=3)
                assert raa.get("Result-Code") == 2002  # like ims_charging
                for _ in range(100):
                    if any(m.get("CC-Request-Type") == 2 for m in sent):
                        break
                    await asyncio.sleep(0.02)
                (update,) = [m for m in sent if m.get("CC-Request-Type") == 2]
                assert update.get("CC-Request-Number") == 1
                asr = request(CMD_ABORT_SESSION)
                asa = await chain.ocs_node.request(asr, timeout=3)
                assert asa.get("Result-Code") == 2001
                await asyncio.wait_for(leg.ended.wait(), 3)
                await asyncio.wait_for(bob_leg.ended.wait(), 3)
                assert core.ended[-1].end_cause == "Ro abort"
                for _ in range(100):
                    if any(m.get("CC-Request-Type") == 3 for m in sent):
                        break
                    await asyncio.sleep(0.02)
                (final,) = [m for m in sent if m.get("CC-Request-Type") == 3]
                assert final.get("Termination-Cause") == 4  # DIAMETER_ADMINISTRATIVE

    asyncio.run(main())


def test_register_aar_authorizes_the_signalling_path_until_deregistration(
    database_url: str,
) -> None:
    async def main() -> None:
        async with chain_running(database_url, register_aar=True) as chain:
            session = await chain.pcef.attach(*CALLER)
            before = set(session.rules)
            sent: list[Message] = []
            for link in chain.ims.links:
                link.observers.append(lambda kind, m: sent.append(m) if kind == "request" else None)
            async with ua_running(chain.ims.core, f"+{CALLER[1]}", CALLER[2]) as alice:
                await chain.pcef.wait_for(lambda: len(session.rules) == len(before) + 1)
                (aar,) = [m for m in sent if m.command_code == 265]
                (mcd,) = aar["Media-Component-Description"]
                assert mcd.get("Media-Type") == 4  # CONTROL
                (sub,) = mcd["Media-Sub-Component"]
                assert sub.get("Flow-Usage") == 2  # AF_SIGNALLING
                port = chain.ims.core.port
                assert [a.value for a in sub["Flow-Description"]][1] == (
                    f"permit in 17 from 127.0.0.1 {alice.endpoint.port} to 127.0.0.1 {port}"
                )
                assert aar.get("Framed-IP-Address") == bytes([127, 0, 0, 1])
                assert (await alice.register(expires=0)).status == 200  # de-register
                await chain.pcef.wait_for(lambda: set(session.rules) == before)
                assert [m.command_code for m in sent].count(275) == 1  # STR

    asyncio.run(main())
