"""Start ``openpcc run`` as a real process (PCRF + OCS + CDR exporter + IMS core) for e2e tests."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.sipp_harness import free_port
from tests.fixtures.ocs import TEST_TARIFF

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class OpenPcc:
    diameter_port: int
    sip_port: int
    database_url: str
    process: asyncio.subprocess.Process
    log: Path


async def _ready(process: asyncio.subprocess.Process, log: Path, timeout: float = 30.0) -> bool:
    """True once the process logged readiness; False when it exited on a port already taken
    (free_port() races with other test runs); raises on any other failure."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        text = log.read_text(errors="replace")
        if process.returncode is not None:
            if "already in use" in text:
                return False
            raise RuntimeError(f"openpcc exited: {text[-3000:]}")
        if "event=ready" in text:
            return True
        if loop.time() > end:
            raise TimeoutError(f"openpcc not ready: {text[-3000:]}")
        await asyncio.sleep(0.1)


@asynccontextmanager
async def openpcc_running(
    workdir: Path, charging: dict[str, Any], policy: dict[str, Any], **env: str
) -> AsyncIterator[OpenPcc]:
    (workdir / "tariff.yaml").write_text(TEST_TARIFF)
    (workdir / "provisioning.yaml").write_text(yaml.safe_dump(charging))
    (workdir / "policy.yaml").write_text(yaml.safe_dump({"policy": policy}))
    database_url = f"sqlite:///{workdir / 'openpcc.db'}"
    log = workdir / "openpcc.log"
    for _attempt in range(5):
        diameter_port, sip_port = free_port("127.0.0.1"), free_port("127.0.0.1")
        settings = {
            "OPENPCC_DATABASE_URL": database_url,
            "OPENPCC_DIAMETER_HOST": "127.0.0.1",
            "OPENPCC_DIAMETER_PORT": str(diameter_port),
            "OPENPCC_PROVISIONING": str(workdir / "provisioning.yaml"),
            "OPENPCC_POLICY_PROVISIONING": str(workdir / "policy.yaml"),
            "OPENPCC_CHARGING_TARIFFS": str(workdir / "tariff.yaml"),
            "OPENPCC_CDR_DIR": str(workdir / "cdr"),
            "OPENPCC_IMS_ENABLED": "true",
            "OPENPCC_IMS_SIP_PORT": str(sip_port),
            "OPENPCC_IMS_DOMAIN": "ims.test",
            "OPENPCC_IMS_PCRF_PORT": str(diameter_port),
            "OPENPCC_IMS_OCS_PORT": str(diameter_port),
            # Two processes may run at once: neither binds the management API's port 8080.
            "OPENPCC_API_ENABLED": "false",
            **env,
        }
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "openpcc.cli",
                "run",
                cwd=ROOT,
                env={**os.environ, **settings},
                stdout=out,
                stderr=out,
            )
        if await _ready(process, log):
            break
    else:
        raise RuntimeError("no free ports for openpcc after 5 attempts")
    try:
        yield OpenPcc(diameter_port, sip_port, database_url, process, log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
