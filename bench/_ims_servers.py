"""Where ``bench.ims`` runs the PCRF and the OCS: in its own process, or as two ``openpcc run``
processes on the shared database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench._servers import ROOT, cpu_seconds, free_port, wait_listening
from charging.config import OcsConfig
from charging.ro import OcsApplication
from diam.constants import APP_CREDIT_CONTROL, APP_GX, APP_RX, VENDOR_3GPP
from diam.identity import LocalIdentity, PeerPolicy
from diam.node import Node
from openpcc.database import create_engine
from policy.service import Pcrf, PcrfConfig
from rating.plan import Plan


class InProcess:
    """PCRF and OCS in this process, each on its own Diameter listener (the `openpcc demo` shape);
    their CPU is this process's."""

    def __init__(self, database_url: str, plan: Plan) -> None:
        self.engine = create_engine(database_url)
        self.plan = plan
        self.closers: list[Callable[[], Awaitable[None]]] = []

    async def start(self) -> tuple[int, int]:
        """Start both; returns (PCRF port, OCS port)."""
        gx_rx = frozenset({(APP_GX, VENDOR_3GPP), (APP_RX, VENDOR_3GPP)})
        pcrf_node = Node(LocalIdentity("pcrf.bench", "bench", applications=gx_rx), PeerPolicy())
        pcrf = Pcrf(pcrf_node, self.engine, PcrfConfig())
        await pcrf.start()
        self.closers += [pcrf.stop, pcrf_node.close]
        _, pcrf_port = await pcrf_node.listen("127.0.0.1", 0)
        ocs = OcsApplication(
            self.engine,
            OcsConfig(tariffs={self.plan.name: self.plan}, node_id="ocs.bench"),
            sweep_interval=0,
        )
        ro = frozenset({(APP_CREDIT_CONTROL, VENDOR_3GPP)})
        ocs_node = Node(LocalIdentity("ocs.bench", "bench", applications=ro), PeerPolicy())
        ocs.install(ocs_node.router, [ocs_node])
        await ocs.start()
        self.closers += [ocs.stop, ocs_node.close]
        _, ocs_port = await ocs_node.listen("127.0.0.1", 0)
        return pcrf_port, ocs_port

    def cpu(self) -> dict[str, float]:
        return {}

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.engine.dispose()


class ServerProcesses:
    """PCRF and OCS as two `openpcc run` processes on the shared database, as operators scale
    out: the IMS core (this process) reaches them over Diameter like any P-CSCF/S-CSCF."""

    ROLES = (("PCRF", "pcrf.bench", "gx,rx"), ("OCS", "ocs.bench", "ro"))

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    async def start(self) -> tuple[int, int]:
        """Start both and wait until they listen; returns (PCRF port, OCS port)."""
        ports = []
        for name, host, applications in self.ROLES:
            port = free_port()
            env = dict(
                os.environ,
                OPENPCC_DATABASE_URL=self.database_url,
                OPENPCC_DIAMETER_HOST="127.0.0.1",
                OPENPCC_DIAMETER_PORT=str(port),
                OPENPCC_DIAMETER_ORIGIN_HOST=host,
                OPENPCC_DIAMETER_ORIGIN_REALM="bench",
                OPENPCC_DIAMETER_APPLICATIONS=applications,
                OPENPCC_CHARGING_NODE_ID=host,
                OPENPCC_PROVISIONING="",
                OPENPCC_CHARGING_TARIFFS=str(ROOT / "examples" / "tariff.yaml"),
                OPENPCC_CDR_SINK="off",
                OPENPCC_IMS_ENABLED="false",
                OPENPCC_API_ENABLED="false",
            )
            log = self.workdir / f"{name}.log"
            with log.open("wb") as out:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "openpcc.cli", "run", "--log-level", "ERROR"],
                    cwd=ROOT, env=env, stdout=out, stderr=out,
                )  # fmt: skip
            await asyncio.to_thread(wait_listening, port, self.processes[name], log)
            ports.append(port)
        return ports[0], ports[1]

    def cpu(self) -> dict[str, float]:
        return {f"{name} process": cpu_seconds(p.pid) for name, p in self.processes.items()}

    async def close(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            await asyncio.to_thread(process.wait, 30)
