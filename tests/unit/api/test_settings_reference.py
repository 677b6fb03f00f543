"""scripts/settings_reference.py lists every setting with its default, grouped by domain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_reference_lists_every_setting_with_its_default() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_reference.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in out.splitlines()
        if line.startswith("| `OPENPCC_")
    }
    assert set(rows) == {f"OPENPCC_{n.upper()}" for n in Settings.model_fields}
    assert "| `OPENPCC_API_PORT` | `8080` | int |" in rows["OPENPCC_API_PORT"]
    assert "*(unset)*" in rows["OPENPCC_KAFKA_SASL_PASSWORD"]
    assert "`sqlite:///var/openpcc.db`" in rows["OPENPCC_DATABASE_URL"]
    assert "### api: management REST API, console, metrics" in out
