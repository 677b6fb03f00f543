"""``openpcc run`` and the app wiring: listeners from settings, CER answered, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

from diam.constants import (
    APP_CREDIT_CONTROL,
    APP_GX,
    APP_RX,
    CMD_DISCONNECT_PEER,
    VENDOR_3GPP,
    ResultCode,
)
from openpcc.app import build_app, parse_address, serve
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vsai(cea):
    return {
        (v.get("Vendor-Id"), v.get("Auth-Application-Id"))
        for v in cea["Vendor-Specific-Application-Id"]
    }


def _private_state(tmp_path: Path) -> dict[str, str]:
    """The process's files (database, CDRs) in the test's own directory, and its HTTP API on a
    free port, so that it can run beside anything else."""
    return {
        "OPENPCC_DATABASE_URL": f"sqlite:///{tmp_path}/openpcc.db",
        "OPENPCC_CDR_DIR": str(tmp_path / "cdr"),
        "OPENPCC_API_PORT": str(_free_port()),
    }


def test_openpcc_run_answers_cer_and_exits_cleanly_on_sigterm(dk, tmp_path):
    port = _free_port()

    async def main():
        env = dict(
            os.environ,
            OPENPCC_DIAMETER_HOST="127.0.0.1",
            OPENPCC_DIAMETER_PORT=str(port),
            **_private_state(tmp_path),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "openpcc.cli", "run",
            cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            lines = []
            while not any("event=ready" in line for line in lines):
                line = await asyncio.wait_for(proc.stderr.readline(), 20)
                assert line, f"openpcc run exited early: {lines}"
                lines.append(line.decode())
            assert f"openpcc.localdomain@127.0.0.1:{port}" in lines[-1]
            peer = await dk.RawPeer.connect(port)
            cea = await peer.open(apps=[("vsai", APP_RX)])
            assert cea.get("Result-Code") == ResultCode.SUCCESS
            assert cea.get("Origin-Host") == "openpcc.localdomain"
            assert cea.get("Origin-Realm") == "localdomain"
            assert _vsai(cea) == {
                (VENDOR_3GPP, APP_GX),
                (VENDOR_3GPP, APP_RX),
                (VENDOR_3GPP, APP_CREDIT_CONTROL),
            }
            proc.send_signal(signal.SIGTERM)
            dpr = await peer.recv(5)
            assert dpr.is_request and dpr.command_code == CMD_DISCONNECT_PEER
            peer.send(dpr.answer(ResultCode.SUCCESS, ("Origin-Host", "client.test"),
                                 ("Origin-Realm", "test")))  # fmt: skip
            assert await peer.closed(5)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
            rest = (await proc.stderr.read()).decode()
            assert "event=stopped" in rest
            assert "Traceback" not in rest
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    dk.run(main, timeout=60)


def test_several_listeners_each_with_its_own_identity(dk, monkeypatch, tmp_path):
    pcrf_port, ocs_port = _free_port(), _free_port()
    for name, value in _private_state(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "OPENPCC_DIAMETER_LISTENERS",
        json.dumps([
            {"host": "127.0.0.1", "port": pcrf_port, "origin_host": "pcrf.epc.test",
             "origin_realm": "epc.test", "applications": ["gx", "rx"]},
            {"host": "127.0.0.1", "port": ocs_port, "origin_host": "ocs.epc.test",
             "origin_realm": "epc.test", "applications": ["ro"], "peers": "*@ims.test"},
            {"host": "127.0.0.1", "port": 0, "origin_host": "af.epc.test",
             "origin_realm": "epc.test", "applications": ["rx"],
             "connect": [f"127.0.0.1:{pcrf_port}"]},
        ]),
    )  # fmt: skip

    async def main():
        app = build_app(Settings())
        assert app.node_for(APP_GX).identity.origin_host == "pcrf.epc.test"
        assert app.node_for(APP_CREDIT_CONTROL).identity.origin_host == "ocs.epc.test"
        stop = asyncio.Event()
        ready = asyncio.Event()
        serving = asyncio.create_task(serve(app, stop=stop, on_ready=lambda _: ready.set()))
        await asyncio.wait_for(ready.wait(), 5)
        pcef = await dk.RawPeer.connect(pcrf_port)
        cea = await pcef.open(origin_host="pgw.epc.test", realm="epc.test", apps=[APP_GX])
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert cea.get("Origin-Host") == "pcrf.epc.test"
        assert _vsai(cea) == {(VENDOR_3GPP, APP_GX), (VENDOR_3GPP, APP_RX)}
        # Ro is not served on the PCRF identity, and the OCS has its own allowlist
        scscf = await dk.RawPeer.connect(pcrf_port)
        cea = await scscf.open(origin_host="scscf.ims.test", realm="ims.test",
                               apps=[("vsai", APP_CREDIT_CONTROL)])  # fmt: skip
        assert cea.get("Result-Code") == ResultCode.NO_COMMON_APPLICATION
        scscf = await dk.RawPeer.connect(ocs_port)
        cea = await scscf.open(origin_host="scscf.ims.test", realm="ims.test",
                               apps=[("vsai", APP_CREDIT_CONTROL)])  # fmt: skip
        assert cea.get("Result-Code") == ResultCode.SUCCESS
        assert cea.get("Origin-Host") == "ocs.epc.test"
        stranger = await dk.RawPeer.connect(ocs_port)
        cea = await stranger.open(origin_host="pgw.epc.test", realm="epc.test")
        assert cea.get("Result-Code") == ResultCode.UNKNOWN_PEER
        # the third identity keeps itself connected to the PCRF listener
        pcrf = app.node_for(APP_GX)
        for _ in range(100):
            if pcrf.peer("af.epc.test") is not None:
                break
            await asyncio.sleep(0.02)
        assert pcrf.peer("af.epc.test").applications == frozenset({APP_RX})
        for peer in (pcef, scscf):
            await peer.aclose()
        stop.set()
        await asyncio.wait_for(serving, 5)

    dk.run(main)


def test_parse_address():
    assert parse_address("dra.example.net") == ("dra.example.net", 3868)
    assert parse_address("10.0.0.1:3869") == ("10.0.0.1", 3869)
    assert parse_address("[::1]:3870") == ("::1", 3870)
    assert parse_address("::1") == ("::1", 3868)
