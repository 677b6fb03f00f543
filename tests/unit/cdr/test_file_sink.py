"""The rotating JSON-lines sink: complete files only, nothing lost across rotation or a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from charging.cdr.file_sink import JsonLinesSink
from charging.cdr.store import OutboxRow

T = datetime(2026, 3, 1, tzinfo=UTC)


def rows(start: int, count: int) -> list[OutboxRow]:
    return [
        OutboxRow(n, f"cdr-{n}", f"key-{n % 3}", json.dumps({"cdrId": f"cdr-{n}", "n": n}), T)
        for n in range(start, start + count)
    ]


def lines(directory: Path, pattern: str = "*.jsonl") -> list[dict]:
    out = []
    for path in sorted(directory.glob(pattern)):
        out.extend(json.loads(line) for line in path.read_text().splitlines())
    return out


def test_size_rotation_keeps_every_record_in_order(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path, rotate_bytes=2000, rotate_seconds=3600)
    for start in range(0, 500, 25):
        sink.send(rows(start, 25)).wait()
    sink.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) > 5 and all(f.name.endswith(".jsonl") for f in files)
    assert all(f.stat().st_size < 2000 + 25 * 60 for f in files)
    assert [r["n"] for r in lines(tmp_path)] == list(range(500))


def test_time_rotation_completes_an_idle_file(tmp_path: Path) -> None:
    now = [1000.0]
    sink = JsonLinesSink(tmp_path, rotate_seconds=60, clock=lambda: now[0])
    sink.send(rows(0, 3))
    sink.maintain()
    assert [p.suffix for p in tmp_path.iterdir()] == [".part"], "still being written"
    now[0] += 61
    sink.maintain()
    assert [p.suffix for p in tmp_path.iterdir()] == [".jsonl"]
    sink.send(rows(3, 2))  # a new file after rotation
    sink.close()
    assert [r["n"] for r in lines(tmp_path)] == [0, 1, 2, 3, 4]


def test_pretty_printed_payload_becomes_one_line(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path)
    sink.send([OutboxRow(1, "a", "k", json.dumps({"cdrId": "a", "x": [1, 2]}, indent=2), T)])
    sink.close()
    assert lines(tmp_path) == [{"cdrId": "a", "x": [1, 2]}]


def test_a_crashed_writers_file_is_cut_to_whole_lines_and_completed(tmp_path: Path) -> None:
    # A writer process dies (os._exit) after a full batch and a torn half line.
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
from charging.cdr.file_sink import JsonLinesSink
from charging.cdr.store import OutboxRow
from datetime import datetime, UTC
sink = JsonLinesSink({str(tmp_path)!r})
sink.send([OutboxRow(n, str(n), "k", '{{"n": %d}}' % n, datetime.now(UTC)) for n in range(10)])
sink._file.write(b'{{"n": 10, "tor')
sink._file.flush()
os._exit(9)
"""
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == 9
    [part] = tmp_path.iterdir()
    assert part.name.endswith(".jsonl.part")

    sink = JsonLinesSink(tmp_path)  # the next start recovers it
    [done] = tmp_path.iterdir()
    assert done.name == part.name.removesuffix(".part")
    assert [r["n"] for r in lines(tmp_path)] == list(range(10))
    sink.send(rows(10, 2))  # the torn batch was never marked sent: written again
    sink.close()
    assert sorted(r["n"] for r in lines(tmp_path)) == list(range(12))


def test_a_live_writers_file_is_left_alone(tmp_path: Path) -> None:
    writer = JsonLinesSink(tmp_path)
    writer.send(rows(0, 1))
    other = JsonLinesSink(tmp_path)  # e.g. a second exporter process on the same directory
    assert other.recover() == []
    assert [p.suffix for p in tmp_path.iterdir()] == [".part"]
    writer.close()
    assert os.listdir(tmp_path)[0].endswith(".jsonl")
