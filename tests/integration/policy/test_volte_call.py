"""A VoLTE call through the PCRF on real sockets: attach (Gx CCR-I) → Rx AAR (AMR-WB +
telephone-event, Kamailio-shaped, sent with python-diameter) → Gx RAR installs QCI 1 → AAA →
STR → Gx RAR removes → detach (CCR-T); then the same messages decoded by tshark."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from diam.constants import (
    APP_BASE,
    APP_GX,
    APP_RX,
    CMD_AA,
    CMD_CAPABILITIES_EXCHANGE,
    CMD_CREDIT_CONTROL,
    CMD_RE_AUTH,
    CMD_SESSION_TERMINATION,
)
from diam.message import Message
from policy.qos import rule_name

UE, REMOTE = "10.45.0.2", "192.0.2.10"
CALL = "pcscf.openpcc.test;1700000000;1"
GBR = 41_000 + 2_000 + 600  # b=AS 41 kbit/s + RR + RS (RTCP rides the same bearer)


def _rule(rar: Message) -> Any:
    (install,) = rar["Charging-Rule-Install"]
    (definition,) = install["Charging-Rule-Definition"]
    return definition


async def volte_call(h: Any, audio: Any) -> None:
    cca = await h.pgw.attach("pgw.openpcc.test;gx;1")
    assert cca.get("Result-Code") == 2001
    assert cca.get("Auth-Application-Id") == 16777238
    qos = cca.first("Default-EPS-Bearer-QoS")
    assert qos.get("QoS-Class-Identifier") == 5
    arp = qos.first("Allocation-Retention-Priority")
    assert arp.get("Priority-Level") == 1
    ambr = cca.first("QoS-Information")
    assert ambr.get("APN-Aggregate-Max-Bitrate-UL") == 256_000
    assert ambr.get("APN-Aggregate-Max-Bitrate-DL") == 256_000
    install = cca.first("Charging-Rule-Install")
    assert [a.value for a in install["Charging-Rule-Name"]] == [b"ims-signalling"]
    assert cca.get("Bearer-Control-Mode") == 1  # UE_NW: the PCRF may push bearers
    assert {a.value for a in cca["Event-Trigger"]} == {2, 7}
    features = cca.first("Supported-Features")
    assert (features.get("Feature-List-ID"), features.get("Feature-List")) == (1, 3)

    aar = asyncio.create_task(h.pcscf.aar(CALL, audio()))
    rar = await h.pgw.next_rar()
    aaa = await aar
    assert aaa.result_code == 2001
    assert not aaa.find_avps((291, 0))  # no Authorization-Lifetime (0 kills Kamailio)

    assert rar.get("Session-Id") == "pgw.openpcc.test;gx;1"
    assert rar.get("Destination-Host") == "pgw.openpcc.test"
    assert rar.get("Re-Auth-Request-Type") == 0
    rule = _rule(rar)
    assert rule.get("Charging-Rule-Name") == rule_name(CALL, 1).encode()
    rq = rule.first("QoS-Information")
    assert rq.get("QoS-Class-Identifier") == 1
    for name in ("Guaranteed-Bitrate", "Max-Requested-Bandwidth"):
        assert (rq.get(f"{name}-UL"), rq.get(f"{name}-DL")) == (GBR, GBR)
    rarp = rq.first("Allocation-Retention-Priority")
    assert rarp.get("Priority-Level") == 2
    assert rarp.get("Pre-emption-Capability") == 0  # ENABLED
    assert rarp.get("Pre-emption-Vulnerability") == 1  # DISABLED
    flows = [(f.get("Flow-Description"), f.get("Flow-Direction"))
             for f in rule["Flow-Information"]]  # fmt: skip
    assert flows == [
        (f"permit out 17 from {REMOTE} 50000 to {UE} 49152", 1),
        (f"permit out 17 from {REMOTE} 50000 to {UE} 49152", 2),
        (f"permit out 17 from {REMOTE} 50001 to {UE} 49153", 1),
        (f"permit out 17 from {REMOTE} 50001 to {UE} 49153", 2),
    ]
    assert rule.get("Flow-Status") == 2
    (mc,) = rule["Flows"]
    assert mc.get("Media-Component-Number") == 1
    assert [a.value for a in mc["Flow-Number"]] == [1, 2]

    sta_task = asyncio.create_task(h.pcscf.str_(CALL))
    removal = await h.pgw.next_rar()
    sta = await sta_task
    assert sta.result_code == 2001
    (remove,) = removal["Charging-Rule-Remove"]
    assert [a.value for a in remove["Charging-Rule-Name"]] == [rule_name(CALL, 1).encode()]
    assert not removal["Charging-Rule-Install"]

    cca_t = await h.pgw.ccr("pgw.openpcc.test;gx;1", 3)
    assert cca_t.get("Result-Code") == 2001
    # The session is gone: a new AAR for the UE finds no IP-CAN session.
    again = await h.pcscf.aar(CALL + "b", audio())
    assert again.result_code is None
    assert _experimental(again) == 5065


def run(harness: Any, audio: Any) -> Any:
    async def scenario() -> Any:
        h = await harness().start()
        try:
            await volte_call(h, audio)
            return h.wire
        finally:
            await h.stop()

    return asyncio.run(scenario())


def test_volte_call_installs_and_removes_the_dedicated_bearer(harness: Any, audio: Any) -> None:
    wire = run(harness, audio)  # volte_call asserts every AVP that matters on each step
    requests = [
        (m.command_code, m.application_id)
        for m in (Message.decode(data) for _, data in wire.packets)
        if m.is_request
    ]
    assert requests == [
        (CMD_CAPABILITIES_EXCHANGE, APP_BASE),
        (CMD_CREDIT_CONTROL, APP_GX),  # attach: CCR-I
        (CMD_AA, APP_RX),  # call: AAR ...
        (CMD_RE_AUTH, APP_GX),  # ... pushed to the PGW: RAR installs the QCI 1 rule
        (CMD_SESSION_TERMINATION, APP_RX),  # hang-up: STR ...
        (CMD_RE_AUTH, APP_GX),  # ... RAR removes the rule
        (CMD_CREDIT_CONTROL, APP_GX),  # detach: CCR-T
        (CMD_AA, APP_RX),  # an AAR after detach binds to nothing (5065)
    ]


def _experimental(answer: Any) -> int | None:
    for group in answer.find_avps((297, 0)):
        for avp in group.value:
            if avp.code == 298:
                return avp.value
    return None


@pytest.mark.tshark
def test_tshark_decodes_the_call_cleanly(
    harness: Any, audio: Any, needs_tshark: None, tmp_path: Any
) -> None:
    verbose, rows = run(harness, audio).tshark(
        tmp_path,
        "diameter.cmd.code",
        "diameter.flags.request",
        "diameter.QoS-Class-Identifier",
        "diameter.Guaranteed-Bitrate-DL",
        "diameter.Flow-Description",
        "diameter.Result-Code",
        "diameter.Experimental-Result-Code",
    )
    assert "Malformed" not in verbose
    assert "Expert Info (Error" not in verbose
    assert "Unknown AVP" not in verbose
    rows = [r for r in rows if r[0] not in ("257", "280")]  # CER/CEA, DWR/DWA
    commands = [(r[0], r[1]) for r in rows]
    assert commands[:2] == [("272", "1"), ("272", "0")]  # CCR-I, CCA-I
    assert ("265", "1") in commands and ("258", "1") in commands and ("275", "1") in commands
    rar = next(r for r in rows if r[0] == "258" and r[1] == "1")
    assert rar[2] == "1" and rar[3] == str(GBR)
    assert f"permit out 17 from {REMOTE} 50000 to {UE} 49152" in rar[4]
    aaa = [r for r in rows if r[0] == "265" and r[1] == "0"]
    assert aaa[0][5] == "2001" and aaa[-1][6] == "5065"
