"""Calls between two user agents through the core over real sockets (RFC 3261 §16)."""

from __future__ import annotations

import asyncio

from ims.call import Call, CallHooks, CallState, Rejection
from ims.headers3gpp import ChargingVector
from ims.sdp import parse_sdp
from ims.sip.message import Request, Response
from ims.sip.uri import parse_uri
from ims.ua import audio_offer
from tests.integration.ims.harness import DOMAIN, core_running, ua_running


class Recording(CallHooks):
    def __init__(self, invite: Rejection | None = None, answer: Rejection | None = None) -> None:
        self.events: list[tuple[str, str]] = []
        self.invite_rejection = invite
        self.answer_rejection = answer
        self.ended = asyncio.Event()

    async def on_invite(self, call: Call) -> Rejection | None:
        self.events.append(("invite", call.icid))
        return self.invite_rejection

    async def on_answer(self, call: Call, response: Response) -> Rejection | None:
        self.events.append(("answer", str(response.status)))
        return self.answer_rejection

    async def on_confirmed(self, call: Call) -> None:
        self.events.append(("confirmed", call.call_id))

    async def on_end(self, call: Call, cause: str) -> None:
        self.events.append(("end", cause))
        self.ended.set()


def test_call_setup_and_caller_hangup_udp() -> None:
    async def main() -> None:
        hooks = Recording()
        async with (
            core_running([hooks]) as core,
            ua_running(
                core,
                "alice",
                headers={
                    "P-Access-Network-Info": "3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=2620100000001",
                    "P-Charging-Vector": "icid-value=ue-made-this",
                },
            ) as alice,
            ua_running(core, "bob", ip="127.0.0.2") as bob,
        ):
            provisional: list[Response] = []
            leg = await alice.call(f"sip:bob@{DOMAIN}", provisional=provisional)
            assert leg.final is not None and leg.final.status == 200
            assert [r.status for r in provisional] == [100, 180]  # 100 is the core's own
            answer = parse_sdp(leg.final.body)
            assert answer.media[0].connection is None and answer.connection.ip == "127.0.0.2"
            bob_leg = await asyncio.wait_for(bob.incoming.get(), 2)
            await asyncio.wait_for(bob_leg.confirmed.wait(), 2)  # the ACK went through the core
            invite = bob_leg.invite
            assert invite is not None
            assert invite.headers.get_all("Record-Route") == [f"<sip:127.0.0.1:{core.port};lr>"]
            assert invite.headers.get("P-Asserted-Identity") == f"<sip:alice@{DOMAIN}>"
            assert invite.headers.get("P-Access-Network-Info", "").startswith("3GPP-E-UTRAN")
            assert "P-Charging-Vector" not in invite.headers  # not passed to the UE
            assert int(invite.headers.get("Max-Forwards", "0")) == 69
            assert len(invite.vias) == 2
            call = next(iter(core.calls.values()))
            assert call.state == CallState.CONFIRMED and call.icid != "ue-made-this"
            assert ChargingVector.parse(f"icid-value={call.icid}").icid == call.icid
            assert call.access_network_info is not None
            assert (await alice.bye(leg)).status == 200
            await asyncio.wait_for(bob_leg.ended.wait(), 2)
            assert bob_leg.bye is not None and bob_leg.bye.method == "BYE"
            await asyncio.wait_for(hooks.ended.wait(), 2)
            assert [e[0] for e in hooks.events] == ["invite", "answer", "confirmed", "end"]
            assert hooks.events[-1] == ("end", "BYE from caller")
            assert core.calls == {} and core.ended[-1].end_cause == "BYE from caller"

    asyncio.run(main())


def test_call_over_tcp_callee_hangs_up_and_reinvite() -> None:
    async def main() -> None:
        hooks = Recording()
        async with (
            core_running([hooks]) as core,
            ua_running(core, "alice", transport="TCP") as alice,
            ua_running(core, "bob", ip="127.0.0.2", transport="TCP") as bob,
        ):
            leg = await alice.call(f"sip:bob@{DOMAIN}")
            assert leg.final is not None and leg.final.status == 200
            assert leg.dialog is not None and leg.dialog.route_set == [
                f"<sip:127.0.0.1:{core.port};transport=tcp;lr>"
            ]
            bob_leg = await asyncio.wait_for(bob.incoming.get(), 2)
            await asyncio.wait_for(bob_leg.confirmed.wait(), 2)
            re = await alice.reinvite(leg, audio_offer("127.0.0.1", 40010, codec="AMR"))
            assert re.status == 200 and parse_sdp(re.body).media[0].codecs[0].name == "AMR"
            assert [e for e in hooks.events if e[0] == "answer"] == [("answer", "200")] * 2
            up = await bob.reinvite(
                bob_leg, audio_offer("127.0.0.2", 40020, codec="PCMU"), method="UPDATE"
            )  # the callee offers this time
            assert up.status == 200 and parse_sdp(up.body).media[0].codecs[0].name == "PCMU"
            assert [e for e in hooks.events if e[0] == "answer"] == [("answer", "200")] * 3
            assert core.calls[leg.final.call_id].offerer == "callee"
            assert (await bob.bye(bob_leg)).status == 200
            await asyncio.wait_for(leg.ended.wait(), 2)
            await asyncio.wait_for(hooks.ended.wait(), 2)
            assert hooks.events[-1] == ("end", "BYE from callee")

    asyncio.run(main())


def test_unknown_callee_unregistered_caller_and_too_many_hops() -> None:
    async def main() -> None:
        async with (
            core_running() as core,
            ua_running(core, "alice") as alice,
            ua_running(core, "eve", register=False) as eve,
        ):
            for ua, callee, status in ((alice, "nobody", 404), (eve, "alice", 403)):
                final = (await ua.call(f"sip:{callee}@{DOMAIN}")).final
                assert final is not None and final.status == status
            alice.extra_headers = {}
            leg_request = alice._headers("OPTIONS", f"<sip:alice@{DOMAIN}>", "mf-1", 1)
            leg_request.set("Max-Forwards", "0")
            req = Request("OPTIONS", parse_uri(f"sip:alice@{DOMAIN}"), leg_request)
            response = await alice.endpoint.request(req, alice.core).final
            assert response.status == 483
            headers = alice._headers("OPTIONS", f"<sip:alice@{DOMAIN}>", "pr-1", 1)
            headers.add("Proxy-Require", "foo, bar")
            req = Request("OPTIONS", parse_uri(f"sip:alice@{DOMAIN}"), headers)
            response = await alice.endpoint.request(req, alice.core).final
            assert response.status == 420 and response.headers.get_all("Unsupported") == [
                "foo",
                "bar",
            ]
            ping = Request(
                "OPTIONS",
                parse_uri(f"sip:127.0.0.1:{core.port}"),
                alice._headers("OPTIONS", f"<sip:127.0.0.1:{core.port}>", "o-1", 1),
            )
            pong = await alice.endpoint.request(ping, alice.core).final
            assert pong.status == 200 and "INVITE" in (pong.headers.get("Allow") or "")
            assert core.calls == {}

    asyncio.run(main())


def test_cancel_while_ringing() -> None:
    async def main() -> None:
        hooks = Recording()
        async with (
            core_running([hooks]) as core,
            ua_running(core, "alice") as alice,
            ua_running(core, "bob", ip="127.0.0.2", answer_delay=5) as bob,
        ):
            provisional: list[Response] = []
            task = asyncio.ensure_future(alice.call(f"sip:bob@{DOMAIN}", provisional=provisional))
            while not provisional:
                await asyncio.sleep(0.01)
            leg = next(iter(alice.legs.values()))
            assert (await alice.cancel(leg)).status == 200
            final = (await asyncio.wait_for(task, 3)).final
            assert final is not None and final.status == 487
            await asyncio.wait_for(hooks.ended.wait(), 2)
            assert hooks.events[-1] == ("end", "cancelled")
            bob_leg = bob.legs[leg.invite.call_id]  # type: ignore[union-attr]
            assert bob_leg.ended.is_set()

    asyncio.run(main())


def test_hook_rejections_and_network_release() -> None:
    async def main() -> None:
        refuse_invite = Recording(invite=Rejection(402, 'DIAMETER;cause=4012;text="no credit"'))
        async with (
            core_running([refuse_invite]) as core,
            ua_running(core, "alice") as alice,
            ua_running(core, "bob", ip="127.0.0.2") as bob,
        ):
            final = (await alice.call(f"sip:bob@{DOMAIN}")).final
            assert final is not None and final.status == 402
            assert final.headers.get("Reason") == 'DIAMETER;cause=4012;text="no credit"'
            assert bob.legs == {}

        refuse_media = Recording(answer=Rejection(488, None, "media not authorized"))
        async with (
            core_running([refuse_media]) as core,
            ua_running(core, "alice") as alice,
            ua_running(core, "bob", ip="127.0.0.2") as bob,
        ):
            final = (await alice.call(f"sip:bob@{DOMAIN}")).final
            assert final is not None and final.status == 488
            assert "media not authorized" in (final.headers.get("Warning") or "")
            bob_leg = next(iter(bob.legs.values()))
            await asyncio.wait_for(bob_leg.ended.wait(), 2)  # ACK + BYE to the callee
            assert bob_leg.bye is not None

        hooks = Recording()
        async with (
            core_running([hooks]) as core,
            ua_running(core, "alice") as alice,
            ua_running(core, "bob", ip="127.0.0.2") as bob,
        ):
            leg = await alice.call(f"sip:bob@{DOMAIN}")
            bob_leg = await asyncio.wait_for(bob.incoming.get(), 2)
            call = next(iter(core.calls.values()))
            core.release(call, 'DIAMETER;cause=4012;text="credit exhausted"', "out of credit")
            await asyncio.wait_for(leg.ended.wait(), 2)
            await asyncio.wait_for(bob_leg.ended.wait(), 2)
            for bye in (leg.bye, bob_leg.bye):
                assert bye is not None and bye.headers.get("Reason", "").startswith("DIAMETER")
            assert leg.bye.to.tag == leg.dialog.local_tag  # type: ignore[union-attr]
            assert bob_leg.bye.to.tag == bob_leg.dialog.local_tag  # type: ignore[union-attr]
            await asyncio.wait_for(hooks.ended.wait(), 2)
            assert hooks.events[-1] == ("end", "out of credit")
            # a late BYE from the caller for the released call: 481
            assert (await alice.bye(leg)).status == 481

    asyncio.run(main())


class SlowInvite(Recording):
    async def on_invite(self, call: Call) -> Rejection | None:
        await asyncio.sleep(0.3)  # e.g. a CCR-I in flight
        return await super().on_invite(call)


def test_cancel_while_a_hook_works_ends_the_call_once() -> None:
    async def main() -> None:
        hooks = SlowInvite()
        async with (
            core_running([hooks]) as core,
            ua_running(core, "alice") as alice,
            ua_running(core, "bob", ip="127.0.0.2") as bob,
        ):
            task = asyncio.ensure_future(alice.call(f"sip:bob@{DOMAIN}"))
            while not alice.legs:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert (await alice.cancel(next(iter(alice.legs.values())))).status == 200
            final = (await asyncio.wait_for(task, 3)).final
            assert final is not None and final.status == 487
            await asyncio.wait_for(hooks.ended.wait(), 2)
            await asyncio.sleep(0.1)
            assert [e[0] for e in hooks.events] == ["invite", "end"]
            assert hooks.events[-1] == ("end", "cancelled")
            assert bob.legs == {} and core.calls == {}

    asyncio.run(main())
