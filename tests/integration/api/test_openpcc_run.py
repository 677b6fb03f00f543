"""`openpcc run` serves the management API, console and metrics in the same process as the
Diameter listeners, with the PCRF and OCS wired in; SIGTERM stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.auth import generate_key, hash_key

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_openpcc_run_serves_the_api(tmp_path: Path) -> None:
    key, api_port, diameter_port = generate_key(), _free_port(), _free_port()
    env = {
        **os.environ,
        "OPENPCC_DATABASE_URL": f"sqlite:///{tmp_path}/openpcc.db",
        "OPENPCC_CDR_DIR": str(tmp_path / "cdr"),
        "OPENPCC_DIAMETER_HOST": "127.0.0.1",
        "OPENPCC_DIAMETER_PORT": str(diameter_port),
        "OPENPCC_API_PORT": str(api_port),
        "OPENPCC_API_KEYS": f'[{{"name": "ops", "role": "operator", "sha256": "{hash_key(key)}"}}]',
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "openpcc.cli", "run"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the API did not come up"
            time.sleep(0.2)
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["ready"], ready
        auth = {"Authorization": f"Bearer {key}"}
        alice = httpx.get(
            f"{base}/api/v1/subscribers/lookup", params={"msisdn": "491700000001"}, headers=auth
        )
        assert alice.status_code == 200, alice.text  # from examples/provisioning.yaml
        topped = httpx.post(
            f"{base}/api/v1/accounts/{alice.json()['account']}/topups",
            json={"amount": 100, "reason": "smoke"},
            headers=auth,
        )
        assert topped.status_code == 200, topped.text
        metrics = httpx.get(f"{base}/metrics").text
        assert 'openpcc_sessions{application="gx"} 0.0' in metrics
        assert httpx.get(f"{base}/console/").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
