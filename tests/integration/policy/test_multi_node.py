"""Two OpenPCC processes on one database: the AAR reaching the process that does not hold the
Gx session still binds to it (found in the database) and its RAR reaches the right PGW; the
STR and the CCR-T work from either side."""

from __future__ import annotations

import asyncio
from typing import Any

from diam.constants import APP_GX, APP_RX, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.node import Node
from openpcc.database import create_engine
from policy.qos import rule_name
from policy.service import Pcrf, PcrfConfig

GX = "pgw.openpcc.test;gx;m"
CALL = "pcscf.openpcc.test;1700000000;m"


def test_aar_on_the_other_process_reaches_the_pgw(any_harness: Any, audio: Any, kit: Any) -> None:
    async def scenario() -> None:
        h = await any_harness().start()  # process A: holds the PGW's Gx session
        engine_b = create_engine(h.url)
        apps = frozenset({(APP_GX, VENDOR_3GPP), (APP_RX, VENDOR_3GPP)})
        node_b = Node(LocalIdentity("pcrf-b.openpcc.test", "openpcc.test", applications=apps),
                      PeerPolicy())  # fmt: skip
        pcrf_b = Pcrf(node_b, engine_b, PcrfConfig(rar_timeout=1.0, af_timeout=0.5))
        await pcrf_b.start()
        _, port_b = await node_b.listen("127.0.0.1", 0)
        pcscf_b = kit.Pcscf(h.wire)  # the same P-CSCF, connected to B as well
        try:
            await h.pgw.attach(GX)  # CCR-I to A
            await h.pgw.node.connect("127.0.0.1", port_b)  # the PGW peers with both PCRFs
            await pcscf_b.connect(port_b)
            aaa = asyncio.create_task(pcscf_b.aar(CALL, audio()))
            rar = await h.pgw.next_rar()
            assert (await aaa).result_code == 2001
            assert rar.get("Session-Id") == GX and rar.get("Origin-Host") == "pcrf-b.openpcc.test"
            # STR at A for the AF session B created: A finds it in the database.
            sta = asyncio.create_task(h.pcscf.str_(CALL))
            rar = await h.pgw.next_rar()
            assert (await sta).result_code == 2001
            removed = rar.first("Charging-Rule-Remove")["Charging-Rule-Name"]
            assert [a.value for a in removed] == [rule_name(CALL, 1).encode()]
            # A new call through B, then the CCR-T at A aborts it (found in the database).
            aaa = asyncio.create_task(pcscf_b.aar(CALL + "2", audio()))
            await h.pgw.next_rar()
            assert (await aaa).result_code == 2001
            await h.pgw.ccr(GX, 3)
            # The P-CSCF peers with both PCRFs too: A reaches it over its own connection.
            asr = await h.pcscf.next_request()
            assert asr.header.command_code == 274 and asr.session_id == CALL + "2"
        finally:
            await pcscf_b.close()
            await pcrf_b.stop()
            await node_b.close()
            engine_b.dispose()
            await h.stop()

    asyncio.run(scenario())
