"""SIPp UAC and UAS call each other through a real ``openpcc run`` process (IMS core + PCRF +
OCS + Kafka CDR exporter) while the PGW simulator holds the UEs' IP-CAN sessions: the QCI 1
bearer exists during the call with the right GBR and is gone after BYE, the OCS charged the
tariff's price, the CDR reached Kafka; 50 concurrent calls leave no session behind."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from charging.models import RoSession
from ims.pcef import PcefSimulator
from ims.sip.transaction import Target
from ims.ua import UserAgent
from openpcc.database import create_engine
from policy.models import GxSession, RxSession
from tests.e2e.openpcc_process import openpcc_running
from tests.e2e.sipp_harness import SCENARIOS, SIPP, free_port, register_binding, run_sipp
from tests.fixtures.kafka import KafkaTopic
from tests.fixtures.ocs import account, balance, provisioning, subscriber

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (sip-tester) not installed")
CALLER = ("001010000000001", "491700000001", "127.0.0.1")
CALLEE = ("001010000000002", "4915112345678", "127.0.0.2")  # DE_MOBILE: 17 cents ≤ 60 s
ABROAD = ("001010000000003", "15551234567", "127.0.0.3")  # WORLD: rated per second
GBR = 49_000 + 2_000  # SIPp SDP b=AS:49, b=RR:2000, b=RS:0
POLICY = {
    "profiles": [
        {
            "name": "volte",
            "apns": [
                {
                    "apn": "ims",
                    "qci": 5,
                    "arp": {"priority": 1},
                    "ambr": {"ul": 256_000, "dl": 256_000},
                }
            ],
        }
    ],
    "subscribers": [
        {"imsi": i, "msisdn": m, "profile": "volte"} for i, m, _ in (CALLER, CALLEE, ABROAD)
    ],
}


def charging_spec(money: int) -> dict:
    spec = provisioning(subscriber("alice", CALLER[1]), accounts=[account("alice", money)])
    return spec.model_dump(mode="json", exclude_none=True)


def open_sessions(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ro = conn.execute(
                sa.select(sa.func.count())
                .select_from(RoSession.__table__)
                .where(RoSession.__table__.c.state == "open")
            ).scalar_one()
            rx = conn.execute(
                sa.select(sa.func.count()).select_from(RxSession.__table__)
            ).scalar_one()
            gx = conn.execute(
                sa.select(sa.func.count()).select_from(GxSession.__table__)
            ).scalar_one()
        return int(ro), int(rx), int(gx)
    finally:
        engine.dispose()


@pytest.mark.kafka
@pytest.mark.parametrize("calls", [1, 50])
def test_sipp_calls_through_openpcc_process(
    tmp_path: Path, kafka_topic: KafkaTopic, calls: int
) -> None:
    async def main() -> None:
        env = {
            "OPENPCC_KAFKA_BOOTSTRAP": kafka_topic.bootstrap,
            "OPENPCC_KAFKA_TOPIC": kafka_topic.name,
            "OPENPCC_CDR_SINK": "kafka",
        }
        async with openpcc_running(tmp_path, charging_spec(1000), POLICY, **env) as opcc:
            pcef = PcefSimulator(
                "pgw.localdomain", "localdomain", "127.0.0.1", opcc.diameter_port, "localdomain"
            )
            peak: dict[str, int] = {}
            pcef.observers.append(
                lambda s, _t: peak.__setitem__(s.ue_ip, max(peak.get(s.ue_ip, 0), len(s.bearers)))
            )
            admin = UserAgent("admin", Target("UDP", "127.0.0.1", opcc.sip_port), "ims.test")
            await admin.start()
            try:
                sessions = [await pcef.attach(i, m, ip) for i, m, ip in (CALLER, CALLEE)]
                uas_port = free_port("127.0.0.2")
                for user, contact in (
                    (f"+{CALLEE[1]}", f"127.0.0.2:{uas_port}"),
                    (f"+{CALLER[1]}", "127.0.0.1:5999"),
                ):
                    assert (
                        await register_binding(admin, user, f"sip:{user}@{contact}", "ims.test")
                        == 200
                    )
                target = Target("UDP", "127.0.0.1", opcc.sip_port)
                (tmp_path / "uas").mkdir()
                (tmp_path / "uac").mkdir()
                uas = asyncio.ensure_future(
                    run_sipp(
                        SCENARIOS / "uas.xml",
                        target,
                        "127.0.0.2",
                        uas_port,
                        tmp_path / "uas",
                        calls=calls,
                        timeout=60,
                    )
                )
                await asyncio.sleep(0.3)
                uac = asyncio.ensure_future(
                    run_sipp(
                        SCENARIOS / "uac.xml",
                        target,
                        "127.0.0.1",
                        free_port("127.0.0.1"),
                        tmp_path / "uac",
                        "-s",
                        f"+{CALLEE[1]}",
                        "-key",
                        "caller",
                        f"+{CALLER[1]}",
                        "-d",
                        "2000",
                        "-l",
                        str(calls),
                        "-r",
                        str(min(calls, 25)),
                        calls=calls,
                        timeout=60,
                    )
                )
                # during the calls: one QCI 1 bearer per call and UE, with the SDP's GBR
                await pcef.wait_for(
                    lambda: all(len(s.bearers) == calls for s in sessions), timeout=30
                )
                for session in sessions:
                    for bearer in session.bearers.values():
                        assert (bearer.qci, bearer.gbr_ul, bearer.gbr_dl) == (1, GBR, GBR)
                code, out = await uac
                assert code == 0, out
                uas_code, uas_out = await uas
                assert uas_code == 0, uas_out
                await pcef.wait_for(lambda: all(not s.bearers for s in sessions), timeout=30)
                assert peak == {CALLER[2]: calls, CALLEE[2]: calls}
                engine = create_engine(opcc.database_url)
                try:
                    for _ in range(200):  # the last CCR-T commits after the BYE's 200
                        if balance(engine, "alice")[1] == 0:
                            break
                        await asyncio.sleep(0.05)
                    assert balance(engine, "alice") == (1000 - 17 * calls, 0)
                finally:
                    engine.dispose()
                for session in sessions:
                    await pcef.detach(session)
                assert open_sessions(opcc.database_url) == (0, 0, 0)
                records = []
                for _ in range(60):
                    records = kafka_topic.consume_all(timeout=10)
                    if len(records) >= calls:
                        break
                    await asyncio.sleep(0.5)
                cdrs = [json.loads(r.value) for r in records]
                assert len({c["cdrId"] for c in cdrs}) == calls
                for cdr in cdrs:
                    assert cdr["recordType"] == "sCSCFRecord" and cdr["charge"] == 17
                    assert cdr["calledPartyAddress"] == f"tel:+{CALLEE[1]}"
                    assert cdr["causeForRecordClosing"] == "normalRelease"
                    assert cdr["duration"] in (2, 3)
            finally:
                await admin.close()
                await pcef.close()

    asyncio.run(main())


def test_ims_core_pointed_at_another_openpcc_port_and_realm(tmp_path: Path) -> None:
    """Process A serves Gx/Rx/Ro in realm core.example; process B runs the IMS core (realm
    edge.example) with A as its PCRF and OCS. The call is authorized and charged by A only."""

    async def main() -> None:
        core_env = {
            "OPENPCC_DIAMETER_ORIGIN_HOST": "pcrf.core.example",
            "OPENPCC_DIAMETER_ORIGIN_REALM": "core.example",
            "OPENPCC_IMS_ENABLED": "false",
            "OPENPCC_CDR_SINK": "off",
        }
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with openpcc_running(tmp_path / "a", charging_spec(1000), POLICY, **core_env) as a:
            edge_env = {
                "OPENPCC_DIAMETER_ORIGIN_HOST": "edge.edge.example",
                "OPENPCC_DIAMETER_ORIGIN_REALM": "edge.example",
                "OPENPCC_IMS_ORIGIN_HOST": "cscf.edge.example",
                "OPENPCC_IMS_ORIGIN_REALM": "edge.example",
                "OPENPCC_IMS_PCRF_PORT": str(a.diameter_port),
                "OPENPCC_IMS_PCRF_REALM": "core.example",
                "OPENPCC_IMS_OCS_PORT": str(a.diameter_port),
                "OPENPCC_IMS_OCS_REALM": "core.example",
                "OPENPCC_CDR_SINK": "off",
            }
            async with openpcc_running(
                tmp_path / "b", charging_spec(1000), POLICY, **edge_env
            ) as b:
                pcef = PcefSimulator(
                    "pgw.core.example", "core.example", "127.0.0.1", a.diameter_port, "core.example"
                )
                core = Target("UDP", "127.0.0.1", b.sip_port)
                alice = UserAgent(f"+{CALLER[1]}", core, "ims.test", ip=CALLER[2])
                bob = UserAgent(f"+{CALLEE[1]}", core, "ims.test", ip=CALLEE[2])
                try:
                    sessions = [await pcef.attach(i, m, ip) for i, m, ip in (CALLER, CALLEE)]
                    for ua in (alice, bob):
                        await ua.start()
                        assert (await ua.register()).status == 200
                    leg = await alice.call(f"sip:+{CALLEE[1]}@ims.test")
                    assert leg.final is not None and leg.final.status == 200
                    assert all(len(s.bearers) == 1 for s in sessions)
                    await asyncio.sleep(1.2)  # a call of 0 s costs nothing
                    assert (await alice.bye(leg)).status == 200
                    await pcef.wait_for(lambda: all(not s.bearers for s in sessions))
                    engine_a, engine_b = (
                        create_engine(a.database_url),
                        create_engine(b.database_url),
                    )
                    try:
                        for _ in range(200):
                            if balance(engine_a, "alice") == (983, 0):
                                break
                            await asyncio.sleep(0.05)
                        assert balance(engine_a, "alice") == (1000 - 17, 0)
                        assert balance(engine_b, "alice") == (1000, 0)  # B charged nothing
                    finally:
                        engine_a.dispose()
                        engine_b.dispose()
                    assert open_sessions(b.database_url)[:2] == (0, 0)
                finally:
                    for ua in (alice, bob):
                        await ua.close()
                    await pcef.close()

    asyncio.run(main())


def test_sipp_call_released_when_credit_runs_out(tmp_path: Path) -> None:
    """3 cents, a per-second destination, 2 s grants: the OCS stops granting, the core sends
    BYE to both SIPp UAs, the CDR closes abnormally and the balance never goes negative."""

    async def main() -> None:
        env = {
            "OPENPCC_CDR_SINK": "off",
            "OPENPCC_IMS_RO_REQUESTED_SECONDS": "2",
            "OPENPCC_IMS_RO_BUFFER_SECONDS": "0.5",
        }
        async with openpcc_running(tmp_path, charging_spec(3), POLICY, **env) as opcc:
            pcef = PcefSimulator(
                "pgw.localdomain", "localdomain", "127.0.0.1", opcc.diameter_port, "localdomain"
            )
            admin = UserAgent("admin", Target("UDP", "127.0.0.1", opcc.sip_port), "ims.test")
            await admin.start()
            try:
                sessions = [await pcef.attach(i, m, ip) for i, m, ip in (CALLER, ABROAD)]
                uas_port = free_port(ABROAD[2])
                for user, contact in (
                    (f"+{ABROAD[1]}", f"{ABROAD[2]}:{uas_port}"),
                    (f"+{CALLER[1]}", "127.0.0.1:5999"),
                ):
                    assert (
                        await register_binding(admin, user, f"sip:{user}@{contact}", "ims.test")
                        == 200
                    )
                target = Target("UDP", "127.0.0.1", opcc.sip_port)
                (tmp_path / "uas").mkdir()
                (tmp_path / "uac").mkdir()
                uas = asyncio.ensure_future(
                    run_sipp(
                        SCENARIOS / "uas.xml",
                        target,
                        ABROAD[2],
                        uas_port,
                        tmp_path / "uas",
                        timeout=30,
                    )
                )
                await asyncio.sleep(0.3)
                code, out = await run_sipp(
                    SCENARIOS / "uac_released.xml",
                    target,
                    CALLER[2],
                    free_port(CALLER[2]),
                    tmp_path / "uac",
                    "-s",
                    f"+{ABROAD[1]}",
                    "-key",
                    "caller",
                    f"+{CALLER[1]}",
                    timeout=30,
                )
                assert code == 0, out  # the UAC got the network's BYE
                uas_code, uas_out = await uas
                assert uas_code == 0, uas_out  # ... and so did the UAS
                await pcef.wait_for(lambda: all(not s.bearers for s in sessions), timeout=10)
                engine = create_engine(opcc.database_url)
                try:
                    for _ in range(100):
                        if balance(engine, "alice")[1] == 0:
                            break
                        await asyncio.sleep(0.05)
                    amount, reserved = balance(engine, "alice")
                    assert 0 <= amount < 3 and reserved == 0
                    with engine.connect() as conn:
                        (payload,) = (
                            conn.execute(sa.text("select payload from cdr_outbox")).scalars().all()
                        )
                finally:
                    engine.dispose()
                cdr = json.loads(payload)
                assert cdr["charge"] == 3 - amount
                assert cdr["causeForRecordClosing"] != "normalRelease"
            finally:
                await admin.close()
                await pcef.close()

    asyncio.run(main())
