"""REGISTER against the core over real UDP/TCP sockets (RFC 3261 §10.3)."""

from __future__ import annotations

import asyncio

from ims.sip.headers import Headers
from ims.sip.message import Request, new_branch, new_tag
from ims.sip.transaction import Target
from ims.sip.uri import parse_uri
from tests.integration.ims.harness import DOMAIN, core_running, ua_running


def register_request(
    ua_ep_via: str,
    user: str,
    contacts: list[str],
    call_id: str,
    cseq: int,
    expires: str | None = None,
    domain: str = DOMAIN,
) -> Request:
    headers = Headers()
    headers.add("Via", ua_ep_via)
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:{user}@{domain}>;tag={new_tag()}")
    headers.add("To", f"<sip:{user}@{domain}>")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} REGISTER")
    for contact in contacts:
        headers.add("Contact", contact)
    if expires is not None:
        headers.add("Expires", expires)
    return Request("REGISTER", parse_uri(f"sip:{domain}"), headers)


def test_register_reregister_multiple_contacts_and_deregister() -> None:
    async def main() -> None:
        async with core_running() as core, ua_running(core, "alice", register=False) as ua:
            target = Target("UDP", "127.0.0.1", core.port)
            ep = ua.endpoint

            async def send(contacts: list[str], cseq: int, expires: str | None = None):
                req = register_request(
                    ep.via("UDP", new_branch()), "alice", contacts, "reg-1", cseq, expires
                )
                return await ep.request(req, target).final

            ok = await send([f"<sip:alice@127.0.0.1:{ep.port}>"], 1, "600")
            assert ok.status == 200 and ok.to.tag
            assert ok.headers.get_all("Contact") == [f"<sip:alice@127.0.0.1:{ep.port}>;expires=600"]
            assert ok.headers.get("P-Associated-URI") == f"<sip:alice@{DOMAIN}>"
            # second device, per-contact expires overrides the header; the first is kept
            ok = await send(["<sip:alice@127.0.0.2:5099>;expires=120"], 2, "600")
            assert sorted(ok.headers.get_all("Contact")) == sorted(
                [
                    f"<sip:alice@127.0.0.1:{ep.port}>;expires=600",
                    "<sip:alice@127.0.0.2:5099>;expires=120",
                ]
            )
            # re-register refreshes (no duplicate binding), max_expires clamps
            ok = await send([f"<sip:alice@127.0.0.1:{ep.port}>"], 3, "99999")
            contacts = ok.headers.get_all("Contact")
            assert len(contacts) == 2
            assert f"<sip:alice@127.0.0.1:{ep.port}>;expires=7200" in contacts
            # same Call-ID, lower CSeq: out of order
            assert (await send([f"<sip:alice@127.0.0.1:{ep.port}>"], 2, "60")).status == 500
            # too brief
            brief = await send(["<sip:alice@127.0.0.3:5000>"], 4, "10")
            assert brief.status == 423 and brief.headers.get("Min-Expires") == "60"
            # de-register one contact, then all with '*'
            ok = await send(["<sip:alice@127.0.0.2:5099>"], 5, "0")
            assert len(ok.headers.get_all("Contact")) == 1
            assert (await send(["*"], 6, "600")).status == 400  # '*' needs Expires: 0
            ok = await send(["*"], 7, "0")
            assert ok.status == 200 and ok.headers.get_all("Contact") == []
            assert core.location.aors() == []

    asyncio.run(main())


def test_binding_expires() -> None:
    async def main() -> None:
        async with core_running() as core, ua_running(core, "bob", register=False) as ua:
            clock = [1000.0]
            core.location.clock = lambda: clock[0]
            assert (await ua.register(expires=60)).status == 200
            assert len(core.location.bindings(f"sip:bob@{DOMAIN}")) == 1
            clock[0] += 59
            assert len(core.location.bindings(f"sip:bob@{DOMAIN}")) == 1
            clock[0] += 2
            assert core.location.bindings(f"sip:bob@{DOMAIN}") == []

    asyncio.run(main())


def test_unknown_domain_unauthorized_user_and_tcp() -> None:
    async def main() -> None:
        async with core_running(authorize=lambda aor: aor != f"sip:mallory@{DOMAIN}") as core:
            async with ua_running(core, "carol", transport="TCP", register=False) as ua:
                assert (await ua.register()).status == 200
                ua.domain = "other.example"
                assert (await ua.register()).status == 404
            async with ua_running(core, "mallory", register=False) as ua:
                assert (await ua.register()).status == 403

    asyncio.run(main())
