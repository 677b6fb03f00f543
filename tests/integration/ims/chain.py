"""The whole chain on loopback sockets: PCRF (policy/) and OCS (charging/) on their own Diameter
listeners over one database, the PCEF simulator attached for each UE, the IMS core with its Rx
and Ro clients, and user agents on 127.0.0.1 / 127.0.0.2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from charging.config import OcsConfig
from charging.provisioning import apply as apply_charging
from charging.ro import OcsApplication
from diam.constants import APP_GX, APP_RX, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.node import Node
from ims.pcef import PcefSimulator
from ims.proxy import CoreConfig
from ims.service import DiameterPeer, ImsConfig, ImsService
from openpcc.database import create_engine, upgrade
from policy import provisioning as policy_provisioning
from policy.service import Pcrf, PcrfConfig
from tests.fixtures.ocs import RO_APPS, account, provisioning, subscriber, test_plan
from tests.integration.ims.harness import DOMAIN, FAST

CALLER = ("001010000000001", "491700000001", "127.0.0.1")  # IMSI, MSISDN, UE IP
CALLEE = ("001010000000002", "4915112345678", "127.0.0.2")  # DE_MOBILE in the test tariff
ABROAD = ("001010000000003", "15551234567", "127.0.0.3")  # WORLD: per second
POLICY = policy_provisioning.PolicyProvisioning.model_validate(
    {
        "profiles": [
            {
                "name": "volte",
                "apns": [
                    {
                        "apn": "ims",
                        "qci": 5,
                        "arp": {"priority": 1},
                        "ambr": {"ul": 256_000, "dl": 256_000},
                        "predefined_rules": ["ims-signalling"],
                    }
                ],
            }
        ],
        "subscribers": [
            {"imsi": CALLER[0], "msisdn": CALLER[1], "profile": "volte"},
            {"imsi": CALLEE[0], "msisdn": CALLEE[1], "profile": "volte"},
            {"imsi": ABROAD[0], "msisdn": ABROAD[1], "profile": "volte"},
        ],
    }
)


def ocs_spec(money: int) -> Any:
    return provisioning(subscriber("alice", CALLER[1]), accounts=[account("alice", money)])


@dataclass
class Chain:
    engine: sa.Engine
    pcrf: Pcrf
    ocs: OcsApplication
    pcef: PcefSimulator
    ims: ImsService
    ocs_node: Node


@asynccontextmanager
async def chain_running(
    database_url: str,
    money: int = 1000,
    *,
    ocs_config: OcsConfig | None = None,
    ro_buffer: float = 5.0,
    requested: int = 60,
    rx_mandatory: bool = True,
    register_aar: bool = False,
) -> AsyncIterator[Chain]:
    engine = create_engine(database_url)
    upgrade(engine)
    apply_charging(engine, ocs_spec(money))
    policy_provisioning.apply(engine, POLICY)
    gx_rx = frozenset({(APP_GX, VENDOR_3GPP), (APP_RX, VENDOR_3GPP)})
    pcrf_node = Node(LocalIdentity("pcrf.test", "test", applications=gx_rx), PeerPolicy())
    pcrf = Pcrf(pcrf_node, engine, PcrfConfig())
    await pcrf.start()
    _, pcrf_port = await pcrf_node.listen("127.0.0.1", 0)
    ocs = OcsApplication(
        engine, ocs_config or OcsConfig(tariffs={"Test": test_plan()}, node_id="ocs.test")
    )
    ocs_node = Node(LocalIdentity("ocs.test", "test", applications=RO_APPS), PeerPolicy())
    ocs.install(ocs_node.router, [ocs_node])
    await ocs.start()
    _, ocs_port = await ocs_node.listen("127.0.0.1", 0)
    pcef = PcefSimulator("pgw.test", "test", "127.0.0.1", pcrf_port, "test")
    ims = ImsService(
        ImsConfig(
            core=CoreConfig(domain=DOMAIN, host="127.0.0.1", port=0),
            origin_host="cscf.test",
            origin_realm="test",
            pcrf=DiameterPeer("127.0.0.1", pcrf_port, "test"),
            ocs=DiameterPeer("127.0.0.1", ocs_port, "test"),
            rx_mandatory=rx_mandatory,
            rx_register_aar=register_aar,
            ro_buffer_seconds=ro_buffer,
            ro_requested_seconds=requested,
            timers=FAST,
        )
    )
    await ims.start()
    try:
        yield Chain(engine, pcrf, ocs, pcef, ims, ocs_node)
    finally:
        await ims.close()
        await pcef.close()
        await ocs_node.close()
        await ocs.stop()
        await pcrf_node.close()
        await pcrf.stop()
        engine.dispose()
