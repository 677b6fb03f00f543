"""The PCRF inside the real process wiring (openpcc.app): the policy section of the provisioning
file is applied at start-up and a PGW attaching to the Gx listener gets its default bearer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from openpcc.app import build_app, serve
from schemas.settings import Settings


def test_openpcc_app_serves_gx_from_the_provisioning_file(tmp_path: Path, kit: Any) -> None:
    provisioning = tmp_path / "policy.yaml"
    provisioning.write_text(yaml.safe_dump({"policy": kit.POLICY}))
    settings = Settings(
        diameter_host="127.0.0.1",
        diameter_port=0,
        diameter_origin_host="pcrf.openpcc.test",
        diameter_origin_realm="openpcc.test",
        database_url=f"sqlite:///{tmp_path / 'openpcc.db'}",
        provisioning="",
        policy_provisioning=str(provisioning),
    )

    async def main() -> None:
        app = build_app(settings)
        stop = asyncio.Event()
        ready = asyncio.Event()
        server = asyncio.create_task(serve(app, stop=stop, on_ready=lambda _: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        pgw = kit.Pgw(kit.Wire())
        try:
            await pgw.connect(app.listeners[0].bound[1])
            cca = await pgw.attach("pgw.openpcc.test;wiring;1")
            assert cca.get("Result-Code") == 2001
            assert cca.first("Default-EPS-Bearer-QoS").get("QoS-Class-Identifier") == 5
            unknown = await pgw.ccr("pgw.openpcc.test;wiring;2", 1, (
                "Subscription-Id", [("Subscription-Id-Type", 1),
                                    ("Subscription-Id-Data", "001019999999999")]))  # fmt: skip
            assert unknown.get("Result-Code") == 5030
        finally:
            await pgw.node.close()
            stop.set()
            await server

    asyncio.run(main())
