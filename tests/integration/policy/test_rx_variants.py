"""Rx variants real P-CSCFs send: AAR modifications (add, hold, remove a component), IPv6 UEs
(Framed-IPv6-Prefix /128 bound to the PGW's /64), and the registration AAR (AF signalling)."""

from __future__ import annotations

import asyncio
from typing import Any

from policy.qos import rule_name

GX = "pgw.openpcc.test;gx;v"
CALL = "pcscf.openpcc.test;1700000000;v"
REMOTE = "192.0.2.10"


def run(harness: Any, body: Any) -> None:
    async def scenario() -> None:
        h = await harness().start()
        try:
            await body(h)
        finally:
            await h.stop()

    asyncio.run(scenario())


async def authorise(h: Any, *components: Any, session: str = CALL, ue_ip: str = "10.45.0.2") -> Any:
    aaa = asyncio.create_task(h.pcscf.aar(session, *components, ue_ip=ue_ip))
    rar = await h.pgw.next_rar()
    assert (await aaa).result_code == 2001
    return rar


def installed(rar: Any) -> dict[bytes, Any]:
    out = {}
    for install in rar["Charging-Rule-Install"]:
        for d in install["Charging-Rule-Definition"]:
            out[d.get("Charging-Rule-Name")] = d
    return out


def removed(rar: Any) -> list[bytes]:
    return [a.value for r in rar["Charging-Rule-Remove"] for a in r["Charging-Rule-Name"]]


def test_aar_modification_adds_holds_and_removes(harness: Any, audio: Any, kit: Any) -> None:
    video = kit.component(2, media_type=1, bandwidth=384_000, flow_status=2, flows=(
        (1, (f"permit out 17 from {REMOTE} 6000 to 10.45.0.2 6002",
             f"permit in 17 from 10.45.0.2 6002 to {REMOTE} 6000"), 0),
    ))  # fmt: skip
    voice, vid = rule_name(CALL, 1).encode(), rule_name(CALL, 2).encode()

    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        assert set(installed(await authorise(h, audio()))) == {voice}
        # Video added by re-INVITE: only the new rule goes out.
        rar = await authorise(h, video)
        rules = installed(rar)
        assert set(rules) == {vid} and not removed(rar)
        qos = rules[vid].first("QoS-Information")
        assert (qos.get("QoS-Class-Identifier"), qos.get("Guaranteed-Bitrate-DL")) == (2, 384_000)
        # Call on hold: the voice component's Flow-Status DISABLED modifies that rule only.
        rar = await authorise(h, kit.component(1, flow_status=3))
        rules = installed(rar)
        assert set(rules) == {voice} and rules[voice].get("Flow-Status") == 3
        assert rules[voice].first("QoS-Information").get("Guaranteed-Bitrate-UL") == 43_600
        # The same SDP again (a refresh re-INVITE): answered without bothering the PGW.
        assert (await h.pcscf.aar(CALL, kit.component(1, flow_status=3))).result_code == 2001
        assert h.pgw.rars.empty()
        # Video dropped: Flow-Status REMOVED removes its rule, nothing else.
        rar = await authorise(h, kit.component(2, flow_status=4))
        assert removed(rar) == [vid] and not installed(rar)
        sta = asyncio.create_task(h.pcscf.str_(CALL))
        assert removed(await h.pgw.next_rar()) == [voice]
        assert (await sta).result_code == 2001

    run(harness, body)


def test_ipv6_ue_binds_by_prefix(harness: Any, audio: Any) -> None:
    ue = "2001:db8:1:2::abcd"

    async def body(h: Any) -> None:
        await h.pgw.attach(GX, ue_ip="2001:db8:1:2::/64")
        rar = await authorise(h, audio(ue_ip=ue), ue_ip=ue)
        assert rar.get("Session-Id") == GX
        (rule,) = installed(rar).values()
        flows = [f.get("Flow-Description") for f in rule["Flow-Information"]]
        assert flows[0] == f"permit out 17 from {REMOTE} 50000 to {ue} 49152"
        # IPv6 overhead does not change a bandwidth the AF gave explicitly.
        assert rule.first("QoS-Information").get("Guaranteed-Bitrate-DL") == 43_600
        other = await h.pcscf.aar(CALL + "x", audio(ue_ip="2001:db8:9::1"), ue_ip="2001:db8:9::1")
        assert other.result_code is None  # Experimental-Result 5065: another prefix

    run(harness, body)


def test_registration_aar_gets_a_signalling_rule(harness: Any, kit: Any) -> None:
    ue = "10.45.0.2"
    signalling = kit.component(0, media_type=4, flows=(
        (1, (f"permit out 17 from 192.0.2.1 5060 to {ue} 5060",
             f"permit in 17 from {ue} 5060 to 192.0.2.1 5060"), 2),
        (2, (f"permit out 6 from 192.0.2.1 5060 to {ue} 5060",
             f"permit in 6 from {ue} 5060 to 192.0.2.1 5060"), 2),
    ))  # fmt: skip

    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        rar = await authorise(h, signalling, session="pcscf.openpcc.test;reg;1")
        (rule,) = installed(rar).values()
        qos = rule.first("QoS-Information")
        assert qos.get("QoS-Class-Identifier") == 5
        assert qos.get("Guaranteed-Bitrate-UL") is None
        assert rule.get("AF-Signalling-Protocol") == 1  # SIP
        assert len(rule["Flow-Information"]) == 4

    run(harness, body)
