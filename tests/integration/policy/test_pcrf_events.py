"""PCRF behaviour beyond the happy call: failures, Gx→Rx events, fair use, time of day, credit
state and restart — all over real sockets against a SQLite-backed PCRF."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from diam.message import Message
from policy.qos import rule_name
from policy.wire import experimental_result

GX = "pgw.openpcc.test;gx;7"
CALL = "pcscf.openpcc.test;1700000000;7"
IMSI = "001010000000001"


def run(harness: Any, body: Callable[[Any], Awaitable[None]], **kwargs: Any) -> None:
    async def scenario() -> None:
        h = await harness(**kwargs).start()
        try:
            await body(h)
        finally:
            await h.stop()

    asyncio.run(scenario())


def experimental(answer: Any) -> int | None:
    for group in answer.find_avps((297, 0)):
        for avp in group.value:
            if avp.code == 298:
                return avp.value
    return None


def avp_values(msg: Any, code: int, vendor: int = 10415) -> list[Any]:
    return [a.value for a in msg.find_avps((code, vendor))]


def ambr(msg: Message) -> tuple[int, int]:
    qos = msg.first("QoS-Information")
    return qos.get("APN-Aggregate-Max-Bitrate-UL"), qos.get("APN-Aggregate-Max-Bitrate-DL")


def fixed_clock(hour: int, minute: int, second: int) -> Callable[[], datetime]:
    """Local time that reads the given wall-clock time at its first use (the first decision,
    however long the harness took to start) and then runs at real speed."""
    base = datetime(2026, 11, 25, hour, minute, second, tzinfo=ZoneInfo("UTC"))
    start: list[float] = []

    def now() -> datetime:
        if not start:
            start.append(time.monotonic())
        return base + timedelta(seconds=time.monotonic() - start[0])

    return now


def test_aar_without_gx_session_is_5065(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        aaa = await h.pcscf.aar(CALL, audio())
        assert aaa.result_code is None and experimental(aaa) == 5065
        assert h.pgw.rars.empty()

    run(harness, body)


def test_raa_failure_fails_the_aaa_and_nothing_is_kept(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        h.pgw.raa = lambda rar: rar.answer(None, experimental_result(5142)).add(
            ("Charging-Rule-Report", [
                ("Charging-Rule-Name", rule_name(CALL, 1).encode()),
                ("PCC-Rule-Status", 1),
                ("Rule-Failure-Code", 4),  # GBR_ERROR
            ])
        )  # fmt: skip
        aaa = await h.pcscf.aar(CALL, audio())
        assert experimental(aaa) == 5063  # REQUESTED_SERVICE_NOT_AUTHORIZED
        await h.pgw.next_rar()
        # No Rx session was kept: the STR is unknown.
        sta = await h.pcscf.str_(CALL)
        assert sta.result_code == 5002
        # A silent PCEF (no RAA within the timeout) is 5012 UNABLE_TO_COMPLY.
        h.pgw.raa = lambda rar: rar.answer(2001)
        h.pgw.delay = 1.5  # the PCRF waits 1 s for the RAA
        aaa = await h.pcscf.aar(CALL, audio())
        assert aaa.result_code == 5012

    run(harness, body)


def test_refused_modification_keeps_the_stored_session(any_harness: Any, audio: Any) -> None:
    """A modification the PCEF refuses changes nothing stored: after a restart the STR removes
    exactly the rules installed before it."""

    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        h.pgw.raa = lambda rar: rar.answer(None, experimental_result(5142))
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio(), audio(2, port=49200)))
        rar = await h.pgw.next_rar()
        installed = rar.first("Charging-Rule-Install")["Charging-Rule-Definition"]
        assert [d.get("Charging-Rule-Name") for d in installed] == [rule_name(CALL, 2).encode()]
        assert experimental(await aaa) == 5063
        h.pgw.raa = lambda rar: rar.answer(2001)
        await h.restart_pcrf()
        sta = asyncio.create_task(h.pcscf.str_(CALL))
        rar = await h.pgw.next_rar()
        assert (await sta).result_code == 2001
        removed = rar.first("Charging-Rule-Remove")["Charging-Rule-Name"]
        assert [a.value for a in removed] == [rule_name(CALL, 1).encode()]

    run(any_harness, body)


def test_pcef_that_lost_the_session_releases_it(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        h.pgw.raa = lambda rar: rar.answer(5002)  # the PGW restarted and forgot the session
        aaa = asyncio.create_task(h.pcscf.aar(CALL + "2", audio(port=49300)))
        await h.pgw.next_rar()
        assert experimental(await aaa) == 5065
        asr = await h.pcscf.next_request()  # the live call's AF session is ended
        assert asr.header.command_code == 274 and asr.session_id == CALL
        again = await h.pcscf.aar(CALL + "3", audio())
        assert experimental(again) == 5065  # no IP-CAN session any more, no RAR tried
        assert h.pgw.rars.empty()

    run(harness, body)


def test_pcef_restart_releases_its_old_sessions(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        h.pgw.origin_state_id = 2  # the PGW rebooted; the UE re-attaches with the same address
        cca = await h.pgw.attach(GX + ".new")
        assert cca.get("Result-Code") == 2001
        asr = await h.pcscf.next_request()  # the old call's AF session is ended
        assert asr.header.command_code == 274 and asr.session_id == CALL
        h.pcscf.answer_asa(asr)
        assert (await h.pcscf.str_(CALL)).result_code == 2001
        assert h.pgw.rars.empty()  # nothing pushed for the lost session
        aaa = asyncio.create_task(h.pcscf.aar(CALL + "2", audio()))
        rar = await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        assert rar.get("Session-Id") == GX + ".new"
        assert [s.session_id for s in h.pcrf.store.all_gx()] == [GX + ".new"]

    run(harness, body)


def test_removal_lost_with_an_unanswered_rar_is_retried(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        h.pgw.delay = 1.5  # the PCRF waits 1 s: the removal RAR goes unanswered
        assert (await h.pcscf.str_(CALL)).result_code == 2001  # the AF session ends anyway
        await h.pgw.next_rar()
        h.pgw.delay = 0.0
        # The next RAR (a new call) carries the lost removal along with its own install.
        aaa = asyncio.create_task(h.pcscf.aar(CALL + "2", audio(port=49500)))
        rar = await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        removed = rar.first("Charging-Rule-Remove")["Charging-Rule-Name"]
        assert [a.value for a in removed] == [rule_name(CALL, 1).encode()]
        # Lost again for the second call: this time the next CCA carries it, once.
        h.pgw.delay = 1.5
        assert (await h.pcscf.str_(CALL + "2")).result_code == 2001
        await h.pgw.next_rar()
        h.pgw.delay = 0.0
        cca = await h.pgw.ccr(GX, 2)
        removed = cca.first("Charging-Rule-Remove")["Charging-Rule-Name"]
        assert [a.value for a in removed] == [rule_name(CALL + "2", 1).encode()]
        cca = await h.pgw.ccr(GX, 2)
        assert not cca["Charging-Rule-Remove"]

    run(harness, body)


def test_failed_rule_report_sends_rx_rar_with_specific_action(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio(1), audio(2, port=49200)))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        # The PGW could not keep the second component's bearer (CCR-U, Charging-Rule-Report).
        cca = await h.pgw.ccr(GX, 2, ("Charging-Rule-Report", [
            ("Charging-Rule-Name", rule_name(CALL, 2).encode()),
            ("PCC-Rule-Status", 1),  # INACTIVE
            ("Rule-Failure-Code", 10),  # RESOURCE_ALLOCATION_FAILURE
        ]))  # fmt: skip
        assert cca.get("Result-Code") == 2001
        rar = await h.pcscf.next_request()
        assert rar.header.command_code == 258 and rar.header.application_id == 16777236
        assert rar.session_id == CALL
        assert avp_values(rar, 513) == [9]  # INDICATION_OF_FAILED_RESOURCES_ALLOCATION
        (flows,) = rar.find_avps((510, 10415))
        assert [a.value for a in flows.value if a.code == 518] == [2]
        # Kamailio never answers: the PCRF does not wait for it; the rest of the call goes on.
        # Losing the last rule too ends the AF session with an ASR.
        await h.pgw.ccr(GX, 2, ("Charging-Rule-Report", [
            ("Charging-Rule-Name", rule_name(CALL, 1).encode()),
            ("Charging-Rule-Name", rule_name(CALL, 2).encode()),
            ("PCC-Rule-Status", 1),
            ("Rule-Failure-Code", 10),
        ]))  # fmt: skip
        requests = [await h.pcscf.next_request(), await h.pcscf.next_request()]
        asr = next(r for r in requests if r.header.command_code == 274)
        assert asr.session_id == CALL and avp_values(asr, 500) == [0]  # BEARER_RELEASED
        h.pcscf.answer_asa(asr)
        sta = await h.pcscf.str_(CALL)
        assert sta.result_code == 2001

    run(harness, body)


def test_rat_change_is_reported_to_subscribed_afs(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        cca = await h.pgw.ccr(GX, 2, ("Event-Trigger", 2), ("RAT-Type", 1000))  # to UTRAN
        assert cca.get("Result-Code") == 2001
        rar = await h.pcscf.next_request()
        assert rar.header.command_code == 258 and rar.session_id == CALL
        assert avp_values(rar, 513) == [6]  # IP-CAN_CHANGE
        assert avp_values(rar, 1032) == [1000] and avp_values(rar, 1027) == [5]

    run(harness, body)


def test_bearer_up_is_reported_to_the_af(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))  # subscribes Specific-Action 8
        rar = await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        # The whole trigger set, now with SUCCESSFUL_RESOURCE_ALLOCATION.
        assert [a.value for a in rar["Event-Trigger"]] == [2, 7, 22]
        await h.pgw.ccr(GX, 2, ("Event-Trigger", 22), ("Charging-Rule-Report", [
            ("Charging-Rule-Name", rule_name(CALL, 1).encode()), ("PCC-Rule-Status", 0),
        ]))  # fmt: skip
        rx_rar = await h.pcscf.next_request()
        assert rx_rar.header.command_code == 258 and rx_rar.session_id == CALL
        assert avp_values(rx_rar, 513) == [8]  # INDICATION_OF_SUCCESSFUL_RESOURCES_ALLOCATION
        # A second call does not resend the unchanged trigger set.
        aaa = asyncio.create_task(h.pcscf.aar(CALL + "2", audio(port=49400)))
        rar = await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        assert not rar["Event-Trigger"]

    run(harness, body)


def test_charging_correlation_reaches_the_af(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio(), actions=(1, 2)))
        rar = await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        assert [a.value for a in rar["Event-Trigger"]] == [2, 7, 28]
        await h.pgw.ccr(GX, 2, ("Event-Trigger", 28), ("Access-Network-Charging-Identifier-Gx", [
            ("Access-Network-Charging-Identifier-Value", b"\x00\x00\x12\x34"),
            ("Charging-Rule-Name", rule_name(CALL, 1).encode()),
        ]), ("Access-Network-Charging-Address", ipaddress.IPv4Address("192.0.2.99")))  # fmt: skip
        rx_rar = await h.pcscf.next_request()
        assert rx_rar.session_id == CALL and avp_values(rx_rar, 513) == [1]
        (anci,) = rx_rar.find_avps((502, 10415))
        children = {(a.code, a.vendor_id): a for a in anci.value}
        assert children[(503, 10415)].value == b"\x00\x00\x12\x34"
        flows = children[(510, 10415)]
        assert [a.value for a in flows.value if a.code == 518] == [1]
        assert avp_values(rx_rar, 501) == [(1, "192.0.2.99")]  # (IPv4 family, address)

    run(harness, body)


def test_gx_termination_aborts_bound_rx_sessions(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        for n in (1, 2):
            aaa = asyncio.create_task(h.pcscf.aar(f"{CALL}.{n}", audio(port=49152 + 10 * n)))
            await h.pgw.next_rar()
            assert (await aaa).result_code == 2001
        cca = await h.pgw.ccr(GX, 3)
        assert cca.get("Result-Code") == 2001
        asrs = [await h.pcscf.next_request(), await h.pcscf.next_request()]
        assert {a.header.command_code for a in asrs} == {274}
        assert {a.session_id for a in asrs} == {f"{CALL}.1", f"{CALL}.2"}
        assert all(avp_values(a, 500) == [0] for a in asrs)
        for asr in asrs:
            h.pcscf.answer_asa(asr)
            sta = await h.pcscf.str_(asr.session_id)
            assert sta.result_code == 2001
        assert h.pgw.rars.empty()  # nothing to remove on a PCEF that ended the session

    run(harness, body)


def usage(key: bytes, octets: int) -> tuple[str, Any]:
    return ("Usage-Monitoring-Information", [
        ("Monitoring-Key", key),
        ("Used-Service-Unit", [("CC-Total-Octets", octets)]),
    ])  # fmt: skip


def test_fair_use_allowance_spent_throttles_by_rar(harness: Any) -> None:
    async def body(h: Any) -> None:
        cca = await h.pgw.attach(GX, apn="internet")
        (umi,) = cca["Usage-Monitoring-Information"]
        assert umi.get("Monitoring-Key") == b"fair-use"
        assert umi.first("Granted-Service-Unit").get("CC-Total-Octets") == 1_000_000
        assert 33 in {a.value for a in cca["Event-Trigger"]}  # USAGE_REPORT
        assert ambr(cca) == (50_000_000, 100_000_000)

        cca = await h.pgw.ccr(GX, 2, ("Event-Trigger", 33), usage(b"fair-use", 600_000))
        (umi,) = cca["Usage-Monitoring-Information"]
        assert umi.first("Granted-Service-Unit").get("CC-Total-Octets") == 400_000
        await asyncio.sleep(0.2)
        assert h.pgw.rars.empty()  # allowance left: no policy change

        cca = await h.pgw.ccr(GX, 2, ("Event-Trigger", 33), usage(b"fair-use", 500_000))
        (umi,) = cca["Usage-Monitoring-Information"]
        assert umi.get("Usage-Monitoring-Support") == 0  # monitoring off: allowance spent
        rar = await h.pgw.next_rar()
        assert ambr(rar) == (1_000_000, 1_000_000)
        assert rar.first("Default-EPS-Bearer-QoS").get("QoS-Class-Identifier") == 9
        assert not rar["Charging-Rule-Install"] and not rar["Charging-Rule-Remove"]

    run(harness, body, clock=fixed_clock(9, 0, 0))


def test_time_of_day_switch_pushes_and_reverts(harness: Any) -> None:
    async def body(h: Any) -> None:
        cca = await h.pgw.attach(GX, apn="internet")
        assert ambr(cca) == (50_000_000, 100_000_000)
        noon = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
        assert cca.get("Revalidation-Time") == noon
        assert 17 in {a.value for a in cca["Event-Trigger"]}  # REVALIDATION_TIMEOUT
        started = time.monotonic()
        rar = await h.pgw.next_rar(timeout=8)  # 12:00:00, the "night" window opens
        assert ambr(rar) == (2_000_000, 4_000_000)
        assert rar.get("Revalidation-Time") == noon + timedelta(seconds=2)
        rar = await h.pgw.next_rar(timeout=8)  # 12:00:02, it closes
        assert ambr(rar) == (50_000_000, 100_000_000)
        assert 2.0 <= time.monotonic() - started < 10.0
        # The PCEF's own revalidation finds nothing new: no RAR, the next boundary is given.
        cca = await h.pgw.ccr(GX, 2, ("Event-Trigger", 17))
        assert cca.get("Result-Code") == 2001
        assert cca.get("Revalidation-Time") == noon + timedelta(days=1)
        await asyncio.sleep(0.2)
        assert h.pgw.rars.empty()

    run(harness, body, clock=fixed_clock(11, 59, 59))


def test_credit_exhaustion_redirects_and_top_up_restores(harness: Any) -> None:
    async def body(h: Any) -> None:
        cca = await h.pgw.attach(GX, apn="internet")
        install = cca.first("Charging-Rule-Install")
        assert [a.value for a in install["Charging-Rule-Name"]] == [b"default-internet"]
        h.charging.exhausted.add(IMSI)  # the OCS reached the Final-Unit-Indication
        await h.pcrf.subscriber_changed(imsi=IMSI)
        rar = await h.pgw.next_rar()
        names = rar.first("Charging-Rule-Install")["Charging-Rule-Name"]
        assert [a.value for a in names] == [b"redirect-topup"]
        removed = rar.first("Charging-Rule-Remove")["Charging-Rule-Name"]
        assert [a.value for a in removed] == [b"default-internet"]
        h.charging.exhausted.clear()  # top-up
        await h.pcrf.subscriber_changed(imsi=IMSI)
        rar = await h.pgw.next_rar()
        names = rar.first("Charging-Rule-Install")["Charging-Rule-Name"]
        assert [a.value for a in names] == [b"default-internet"]
        removed = rar.first("Charging-Rule-Remove")["Charging-Rule-Name"]
        assert [a.value for a in removed] == [b"redirect-topup"]

    run(harness, body, clock=fixed_clock(9, 0, 0))


def test_restart_mid_call_still_removes_the_right_rules(
    any_harness: Any, audio: Any, kit: Any
) -> None:
    async def body(h: Any) -> None:
        await h.pgw.attach(GX)
        aaa = asyncio.create_task(h.pcscf.aar(CALL, audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        await h.restart_pcrf()
        # The media components survived: putting the call on hold modifies just that rule.
        aaa = asyncio.create_task(h.pcscf.aar(CALL, kit.component(1, flow_status=3)))
        rar = await h.pgw.next_rar()
        assert (await aaa).result_code == 2001
        (definition,) = rar.first("Charging-Rule-Install")["Charging-Rule-Definition"]
        assert definition.get("Charging-Rule-Name") == rule_name(CALL, 1).encode()
        assert definition.get("Flow-Status") == 3
        assert len(definition["Flow-Information"]) == 4
        sta = asyncio.create_task(h.pcscf.str_(CALL))
        rar = await h.pgw.next_rar()
        assert (await sta).result_code == 2001
        assert rar.get("Session-Id") == GX
        removed = rar.first("Charging-Rule-Remove")["Charging-Rule-Name"]
        assert [a.value for a in removed] == [rule_name(CALL, 1).encode()]
        # The Gx session survived the restart too: a new call binds to it.
        aaa = asyncio.create_task(h.pcscf.aar(CALL + "b", audio()))
        await h.pgw.next_rar()
        assert (await aaa).result_code == 2001

    run(any_harness, body)


@pytest.mark.tshark
def test_tshark_decodes_the_event_flows_cleanly(
    harness: Any, audio: Any, kit: Any, needs_tshark: None, tmp_path: Any
) -> None:
    """Rx RARs with Specific-Action (failed resources, charging correlation), ASR/ASA, usage
    reports, the throttling RAR and Revalidation-Time, as tshark sees them: every AVP known and
    well-formed."""
    wire = kit.Wire()

    def shared(**kwargs: Any) -> Any:
        return harness(wire=wire, **kwargs)

    test_failed_rule_report_sends_rx_rar_with_specific_action(shared, audio)
    test_gx_termination_aborts_bound_rx_sessions(shared, audio)
    test_fair_use_allowance_spent_throttles_by_rar(shared)
    test_charging_correlation_reaches_the_af(shared, audio)
    test_time_of_day_switch_pushes_and_reverts(shared)
    verbose, rows = wire.tshark(
        tmp_path,
        "diameter.cmd.code",
        "diameter.flags.request",
        "diameter.applicationId",
        "diameter.Specific-Action",
        "diameter.Abort-Cause",
        "diameter.Usage-Monitoring-Support",
        "diameter.APN-Aggregate-Max-Bitrate-UL",
    )
    assert "Malformed" not in verbose
    assert "Expert Info (Error" not in verbose
    assert "Unknown AVP" not in verbose
    rx_rars = [r for r in rows if r[:3] == ["258", "1", "16777236"]]
    assert {r[3] for r in rx_rars} >= {"9", "1"}
    assert "Access-Network-Charging-Identifier-Value" in verbose
    assert "Revalidation-Time" in verbose
    asrs = [r for r in rows if r[:2] == ["274", "1"]]
    assert len(asrs) == 3 and {r[4] for r in asrs} == {"0"}
    assert any(r[:2] == ["274", "0"] for r in rows)  # ASA
    assert any(r[:2] == ["272", "0"] and r[5] == "0" for r in rows)  # monitoring off
    gx_rars = [r for r in rows if r[:3] == ["258", "1", "16777238"]]
    assert "1000000" in {r[6] for r in gx_rars}  # the throttling RAR


def test_gx_and_rx_error_answers(harness: Any, audio: Any) -> None:
    async def body(h: Any) -> None:
        # CCR-I for an APN the profile has no policy for: 5140 ERROR_INITIAL_PARAMETERS.
        cca = await h.pgw.attach(GX, apn="unknown.apn")
        er = cca.first("Experimental-Result")
        assert cca.get("Result-Code") is None and er.get("Experimental-Result-Code") == 5140
        # CCR-U / CCR-T for a session the PCRF does not know: 5002.
        assert (await h.pgw.ccr("pgw.openpcc.test;nope", 2)).get("Result-Code") == 5002
        assert (await h.pgw.ccr("pgw.openpcc.test;nope", 3)).get("Result-Code") == 5002
        # A retransmitted CCR-I is answered from the stored outcome (no second session).
        first = await h.pgw.attach(GX)
        h.pgw.numbers[GX] = -1
        again = await h.pgw.attach(GX)
        assert again.get("Result-Code") == first.get("Result-Code") == 2001
        assert len(h.pcrf.store.all_gx()) == 1
        # Rx-Request-Type UPDATE_REQUEST for an unknown AF session: 5002.
        aar = audio()
        update = await h.pcscf.aar(CALL, aar, request_type=1)
        assert update.result_code == 5002

    run(harness, body)
