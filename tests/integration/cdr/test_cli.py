"""``openpcc cdr export`` (time window, JSON lines or CSV) and ``openpcc cdr schema``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openpcc.cli", "cdr", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_export_window_as_jsonl_and_csv(outbox_engine, database_url, cdr_factory, enqueue_cdrs):
    records = [cdr_factory(n) for n in range(9)]
    enqueue_cdrs(outbox_engine, records[0:3], datetime(2026, 3, 1, 23, 59, tzinfo=UTC))
    enqueue_cdrs(outbox_engine, records[3:6], datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    enqueue_cdrs(outbox_engine, records[6:9], datetime(2026, 3, 3, 0, 0, tzinfo=UTC))
    window = ["--database-url", database_url, "export", "--since", "2026-03-02"]
    window += ["--until", "2026-03-03T00:00:00+00:00"]

    result = cli(*window)
    assert result.returncode == 0, result.stderr
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert exported == [json.loads(r.model_dump_json()) for r in records[3:6]]
    assert "3 records" in result.stderr

    result = cli(*window, "--format", "csv")
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["cdrId"] for row in table] == [r.cdr_id for r in records[3:6]]
    first = records[3]
    assert table[0]["servedSubscriptionIds"] == f"END_USER_E164:{first.partition_key}"
    assert table[0]["charge"] == str(first.charge)
    assert table[0]["listOfServiceData.ratingGroup"] == "100"
    assert table[0]["listOfServiceData.timeUsage"] == str(first.duration)
    assert table[0]["iMS-Charging-Identifier"] == "icid-3"


def test_export_to_file_and_bad_time(
    outbox_engine, database_url, cdr_factory, enqueue_cdrs, tmp_path
):
    enqueue_cdrs(outbox_engine, [cdr_factory(1)])
    out = tmp_path / "cdrs.jsonl"
    result = cli("--database-url", database_url, "export", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["cdrId"] == cdr_factory(1).cdr_id
    result = cli("--database-url", database_url, "export", "--since", "yesterday")
    assert result.returncode == 2 and "ISO 8601" in result.stderr
