"""SIPp UAC and UAS calling each other through the IMS core; malformed SIP → 400; unknown
callee → 404; unregistered caller → 403."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ims.call import Call, CallHooks
from ims.proxy import CoreConfig, ImsCore
from ims.sip.transaction import Target, Timers
from ims.ua import UserAgent
from tests.e2e.sipp_harness import SCENARIOS, SIPP, free_port, register_binding, run_sipp

pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (sip-tester) not installed")
DOMAIN = "ims.test"


class Ends(CallHooks):
    def __init__(self) -> None:
        self.causes: list[str] = []

    async def on_end(self, call: Call, cause: str) -> None:
        self.causes.append(cause)


async def start_core(hooks: list[CallHooks], transport: str = "UDP") -> tuple[ImsCore, UserAgent]:
    core = ImsCore(
        CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0), hooks, Timers(t1=0.1, t2=0.8)
    )
    await core.start()
    admin = UserAgent("admin", Target(transport, "127.0.0.1", core.port), DOMAIN)
    await admin.start()
    assert (await admin.register()).status == 200
    return core, admin


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_sipp_uac_calls_sipp_uas_through_core(tmp_path: Path, transport: str) -> None:
    calls = 3

    async def main() -> None:
        ends = Ends()
        core, admin = await start_core([ends], transport)
        try:
            target = Target(transport, "127.0.0.1", core.port)
            uas_port = free_port("127.0.0.2")
            suffix = ";transport=tcp" if transport == "TCP" else ""
            (tmp_path / "reg").mkdir()
            code, out = await run_sipp(
                SCENARIOS / "register.xml",
                target,
                "127.0.0.2",
                free_port("127.0.0.2"),
                tmp_path / "reg",
                "-key",
                "user",
                "bob",
                "-key",
                "contact",
                f"127.0.0.2:{uas_port}{suffix}",
                timeout=10,
            )
            assert code == 0, out
            assert [b.contact.port for b in core.location.bindings(f"sip:bob@{DOMAIN}")] == [
                uas_port
            ]
            assert await register_binding(admin, "alice", "sip:alice@127.0.0.1:5999", DOMAIN) == 200
            uas_dir, uac_dir = tmp_path / "uas", tmp_path / "uac"
            uas_dir.mkdir()
            uac_dir.mkdir()
            uas = asyncio.ensure_future(
                run_sipp(
                    SCENARIOS / "uas.xml",
                    target,
                    "127.0.0.2",
                    uas_port,
                    uas_dir,
                    "-s",
                    "bob",
                    calls=calls,
                )
            )
            await asyncio.sleep(0.3)
            code, out = await run_sipp(
                SCENARIOS / "uac.xml",
                target,
                "127.0.0.1",
                free_port("127.0.0.1"),
                uac_dir,
                "-s",
                "bob",
                "-d",
                "300",
                "-key",
                "caller",
                "alice",
                "-l",
                str(calls),
                calls=calls,
            )
            assert code == 0, out
            uas_code, uas_out = await uas
            assert uas_code == 0, uas_out
            assert sorted(ends.causes) == ["BYE from caller"] * calls
            assert core.calls == {}
        finally:
            await admin.close()
            await core.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("callee", "caller_registered", "status"), [("nobody", True, 404), ("bob", False, 403)]
)
def test_sipp_rejected_calls(
    tmp_path: Path, callee: str, caller_registered: bool, status: int
) -> None:
    async def main() -> None:
        core, admin = await start_core([])
        try:
            target = Target("UDP", "127.0.0.1", core.port)
            await register_binding(admin, "bob", "sip:bob@127.0.0.2:5999", DOMAIN)
            if caller_registered:
                await register_binding(admin, "caller1", "sip:caller1@127.0.0.1:5999", DOMAIN)
            scenario = tmp_path / "rejected.xml"
            scenario.write_text(
                (SCENARIOS / "uac_rejected.xml").read_text().replace("EXPECTED_STATUS", str(status))
            )
            code, out = await run_sipp(
                scenario,
                target,
                "127.0.0.1",
                free_port("127.0.0.1"),
                tmp_path,
                "-s",
                callee,
                timeout=10,
            )
            assert code == 0, out
        finally:
            await admin.close()
            await core.close()

    asyncio.run(main())


def test_sipp_malformed_gets_400_with_warning(tmp_path: Path) -> None:
    async def main() -> None:
        core, admin = await start_core([])
        try:
            target = Target("UDP", "127.0.0.1", core.port)
            code, out = await run_sipp(
                SCENARIOS / "malformed.xml",
                target,
                "127.0.0.1",
                free_port("127.0.0.1"),
                tmp_path,
                "-s",
                "bob",
                timeout=10,
            )
            assert code == 0, out
            assert core.endpoint.transport.stats["malformed"] == 1
        finally:
            await admin.close()
            await core.close()

    asyncio.run(main())
