"""Property-based fuzz of every operation of the published OpenAPI (schemathesis): whatever the
input, the API answers without a server error (no 5xx)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from schemas.api import Role

ST = Path(sys.executable).with_name("st")


def test_no_server_errors_on_any_operation(stack: Any, tmp_path: Path) -> None:
    st = str(ST) if ST.exists() else shutil.which("st")
    assert st, "schemathesis is a test dependency (pip install schemathesis)"
    stack.subscriber("fuzz", "491709999999", "001010000000099", 100)
    result = subprocess.run(
        [
            st,
            "run",
            f"{stack.base_url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {stack.keys[Role.ADMIN]}",
            "--max-examples",
            "25",
            "--max-time",
            "45",
            "--seed",
            "20261125",
            "--phases",
            "examples,fuzzing",
            "--workers",
            "2",
            "--generation-database",
            "none",
            "--no-color",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        cwd=tmp_path,
    )
    (Path(__file__).parents[3] / "test-artifacts").mkdir(exist_ok=True)
    (Path(__file__).parents[3] / "test-artifacts" / "schemathesis.txt").write_text(result.stdout)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
