"""``openpcc demo``: the whole chain in one process prints a complete, correct call."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from openpcc.commands.demo import run_demo


def test_demo_call_ladder_bearer_balances_and_cdr(tmp_path: Path) -> None:
    out = io.StringIO()
    assert asyncio.run(run_demo(tmp_path, 1.0, out)) == 0
    text = out.getvalue()
    ladder = text.split("== dedicated bearers")[0]
    order = [
        "Gx CCR-I",
        "REGISTER",
        "INVITE",
        "Ro CCR-I",
        "Ro CCA-I 2001",
        "Rx AAR",
        "bearer created",
        "Rx AAA 2001",
        "CSCF ──SIP──▶ alice   200 OK (INVITE)",
        "BYE",
        "Ro CCR-T",
        "Rx STR",
        "bearer removed",
        "Gx CCR-T",
    ]
    positions = [ladder.index(step) for step in order]
    assert positions == sorted(positions), ladder
    assert "alice: rule af-" in text and "QCI 1 GBR UL/DL 51000/51000" in text
    assert "downlink  permit out 17 from 127.0.0.2 40000 to 127.0.0.1 40000" in text
    # alice's national minutes pay the call to bob's mobile number
    assert "alice.minutes: 18000/0 -> 1799" in text
    cdr = json.loads(text.split("== CDR ==\n", 1)[1])
    assert cdr["recordType"] == "sCSCFRecord"
    assert cdr["calledPartyAddress"] == "tel:+491700000002"
    assert cdr["causeForRecordClosing"] == "normalRelease" and cdr["duration"] in (1, 2)
