"""Outbox → exporter → rotating JSON-lines files, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from charging.cdr.exporter import Exporter
from charging.cdr.file_sink import JsonLinesSink
from charging.cdr.sink import SinkError
from charging.cdr.store import OutboxStore
from charging.models import CdrOutbox
from openpcc.database import create_engine, upgrade
from schemas.cdr import cdr_json_schema

SCHEMA = jsonschema.Draft202012Validator(cdr_json_schema())


def read_files(directory: Path) -> list[dict]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            records.extend(json.loads(line) for line in handle)
    return records


def unsent(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).where(CdrOutbox.sent_at.is_(None))
        ).scalar_one()


def test_every_cdr_lands_once_across_rotations(
    outbox_engine, cdr_factory, enqueue_cdrs, tmp_path
) -> None:
    records = [cdr_factory(n) for n in range(2500)]
    enqueue_cdrs(outbox_engine, records)
    sink = JsonLinesSink(tmp_path / "cdr", rotate_bytes=100_000, rotate_seconds=3600)
    exporter = Exporter(OutboxStore(outbox_engine, "t1", _minutes(2)), sink, batch_size=300)

    assert exporter.export_available() == 2500
    sink.close()

    files = sorted((tmp_path / "cdr").glob("*"))
    assert len(files) >= 5, "100 kB files: the ~1 MB export must have rotated"
    assert all(f.suffix == ".jsonl" for f in files), "no file left half-written"
    written = read_files(tmp_path / "cdr")
    assert [r["cdrId"] for r in written] == [r.cdr_id for r in records]  # all, once, in order
    assert written[7] == json.loads(records[7].model_dump_json())
    for record in written:
        SCHEMA.validate(record)
    assert unsent(outbox_engine) == 0


def test_background_exporter_drains_while_charging_writes(
    outbox_engine, cdr_factory, enqueue_cdrs, tmp_path
) -> None:
    sink = JsonLinesSink(tmp_path / "cdr", rotate_bytes=1 << 20, rotate_seconds=0.3)
    exporter = Exporter(
        OutboxStore(outbox_engine, "t2", _minutes(2)),
        sink,
        batch_size=100,
        poll_seconds=0.05,
        metrics_every_seconds=0.0,
    )
    stop = threading.Event()
    thread = threading.Thread(target=exporter.run, args=(stop,))
    thread.start()
    try:
        for chunk in range(10):
            enqueue_cdrs(outbox_engine, [cdr_factory(chunk * 50 + i) for i in range(50)])
            time.sleep(0.08)
        _wait(lambda: unsent(outbox_engine) == 0)
        time.sleep(0.5)  # idle past rotate_seconds: the open file is completed
        assert not list((tmp_path / "cdr").glob("*.part"))
    finally:
        stop.set()
        thread.join(10)
    ids = [r["cdrId"] for r in read_files(tmp_path / "cdr")]
    assert ids == [cdr_factory(n).cdr_id for n in range(500)]
    assert len(list((tmp_path / "cdr").glob("*.jsonl"))) >= 2  # time rotation happened
    assert REGISTRY.get_sample_value("openpcc_cdr_outbox_lag") == 0


def test_lag_metrics_show_waiting_cdrs(outbox_engine, cdr_factory, enqueue_cdrs) -> None:
    enqueue_cdrs(outbox_engine, [cdr_factory(n) for n in range(7)])
    time.sleep(0.2)
    lag = OutboxStore(outbox_engine, "t3", _minutes(2)).lag()
    assert lag.unsent == 7
    assert lag.oldest_created_at is not None
    assert 0.2 <= lag.oldest_age_seconds(datetime.now(UTC)) < 30


def test_failed_sink_leaves_rows_unsent(outbox_engine, cdr_factory, enqueue_cdrs, tmp_path) -> None:
    enqueue_cdrs(outbox_engine, [cdr_factory(n) for n in range(20)])
    blocked = tmp_path / "not-a-dir"
    sink = JsonLinesSink(tmp_path / "cdr")
    exporter = Exporter(OutboxStore(outbox_engine, "t4", _minutes(2)), sink, batch_size=8)
    (tmp_path / "cdr").rename(blocked)  # the directory vanishes: writes fail
    blocked.with_name("cdr").write_text("a file, not a directory")
    with pytest.raises(SinkError):
        exporter.export_available()
    assert unsent(outbox_engine) == 20
    # Claims were released: a second exporter takes the rows at once.
    other = JsonLinesSink(tmp_path / "cdr2")
    assert Exporter(OutboxStore(outbox_engine, "t5", _minutes(2)), other).export_available() == 20


def _minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def _wait(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_sqlite_claims_exclude_others_until_stale(
    sqlite_url, cdr_factory, enqueue_cdrs, tmp_path
) -> None:
    engine = create_engine(sqlite_url)
    upgrade(engine)
    enqueue_cdrs(engine, [cdr_factory(n) for n in range(10)])
    a = OutboxStore(engine, "a", _minutes(2))
    first = a.claim(5)  # exporter "a" dies holding these
    assert len(first.rows) == 5
    second = OutboxStore(engine, "b", _minutes(2)).claim(10)
    assert second.ids == list(range(first.ids[-1] + 1, first.ids[-1] + 6))  # not a's rows
    assert OutboxStore(engine, "c", _minutes(2)).claim(10).rows == []  # all claimed, none stale
    assert [r.id for r in OutboxStore(engine, "d", timedelta(0)).claim(3).rows] == first.ids[:3]
    restarted = OutboxStore(engine, "a", _minutes(2))
    restarted.release_own_claims()  # "a" restarts: its own remaining claims come back at once
    assert restarted.claim(10).ids == first.ids[3:]
    engine.dispose()
