"""The README stays true to the code: its configuration reference is the generated one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_reference_matches_the_settings() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_reference.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    readme = (ROOT / "README.md").read_text()
    stale = [
        line
        for line in generated.splitlines()
        if line.startswith("| `OPENPCC_") and line not in readme
    ]
    assert not stale, (
        "README configuration reference is out of date; regenerate with "
        "`python scripts/settings_reference.py`. Missing or changed rows:\n" + "\n".join(stale)
    )


def test_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
