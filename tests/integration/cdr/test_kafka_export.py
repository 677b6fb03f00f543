"""Outbox on PostgreSQL → exporter → a real Kafka broker, read back by a real consumer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
from kafka.partitioner.default import murmur2
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from charging.cdr.exporter import Exporter
from charging.cdr.kafka_sink import KafkaConfig, KafkaSink
from charging.cdr.store import OutboxStore
from charging.models import CdrOutbox
from schemas.cdr import cdr_json_schema

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = jsonschema.Draft202012Validator(cdr_json_schema())


def unsent(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).where(CdrOutbox.sent_at.is_(None))
        ).scalar_one()


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def exporter(engine, topic, name: str = "t", flush_timeout: float = 15.0, **kw) -> Exporter:
    sink = KafkaSink(KafkaConfig(topic.bootstrap, topic.name, flush_timeout_seconds=flush_timeout))
    return Exporter(OutboxStore(engine, name, timedelta(minutes=2)), sink, **kw)


def spawn_exporter(url: str, topic, name: str, log: Path, batch: int = 1000) -> subprocess.Popen:
    env = {
        **os.environ,
        "OPENPCC_DATABASE_URL": url,
        "OPENPCC_CDR_SINK": "kafka",
        "OPENPCC_KAFKA_BOOTSTRAP": topic.bootstrap,
        "OPENPCC_KAFKA_TOPIC": topic.name,
        "OPENPCC_CDR_EXPORTER_ID": name,
        "OPENPCC_CDR_POLL_SECONDS": "0.05",
        "OPENPCC_CDR_BATCH_SIZE": str(batch),
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "openpcc.cli", "cdr", "exporter"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def check_records(records, expected) -> Counter:
    """Every expected CDR arrived, as produced (schema-valid, keyed, cdrId header);
    returns how often each cdrId arrived."""
    by_id = {r.cdr_id: r for r in expected}
    seen: Counter = Counter()
    for record in records:
        body = json.loads(record.value)
        SCHEMA.validate(body)
        cdr = by_id[body["cdrId"]]
        assert record.key == cdr.partition_key.encode()
        assert dict(record.headers)["cdrId"] == cdr.cdr_id.encode()
        assert body == json.loads(cdr.model_dump_json())
        seen[body["cdrId"]] += 1
    missing = set(by_id) - set(seen)
    assert not missing, f"{len(missing)} CDRs never arrived"
    return seen


def test_every_cdr_once_keyed_by_subscriber_in_order(
    pg_engine, cdr_factory, enqueue_cdrs, kafka_topic
) -> None:
    records = [cdr_factory(n) for n in range(3000)]
    enqueue_cdrs(pg_engine, records)
    worker = exporter(pg_engine, kafka_topic)
    try:
        assert worker.export_available() == 3000
    finally:
        worker.sink.close()
    assert unsent(pg_engine) == 0

    consumed = kafka_topic.consume_all()
    seen = check_records(consumed, records)
    assert set(seen.values()) == {1}, "no duplicates in normal operation"
    # One subscriber's CDRs: one partition, in outbox (charging) order.
    order = {r.cdr_id: i for i, r in enumerate(records)}
    per_key: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    for record in consumed:
        per_key[record.key].append((record.partition, order[json.loads(record.value)["cdrId"]]))
    for record in consumed:  # the partition Kafka's default (Java) partitioner picks for the key
        assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % kafka_topic.partitions
    for sequence in per_key.values():
        assert len({partition for partition, _ in sequence}) == 1
        assert [i for _, i in sequence] == sorted(i for _, i in sequence)


def test_replay_publishes_the_window_again(
    pg_engine, postgres_url, cdr_factory, enqueue_cdrs, kafka_topic
) -> None:
    records = [cdr_factory(n) for n in range(200)]
    enqueue_cdrs(pg_engine, records)
    env = {**os.environ, "OPENPCC_DATABASE_URL": postgres_url}
    command = [sys.executable, "-m", "openpcc.cli", "cdr", "replay", "--since", "2000-01-01"]
    command += ["--bootstrap", kafka_topic.bootstrap, "--topic", kafka_topic.name]
    for _ in range(2):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "200 records" in result.stderr
    seen = check_records(kafka_topic.consume_all(), records)
    assert set(seen.values()) == {2}
    assert unsent(pg_engine) == 200, "replay does not touch the outbox"


def test_broker_outage_under_load_loses_nothing(
    pg_engine, cdr_factory, enqueue_cdrs, local_kafka
) -> None:
    topic = local_kafka.topic()  # a broker of its own: stopping it disturbs no other test
    records = [cdr_factory(n) for n in range(3000)]
    # Short flush timeout: the outage outlasts it, so the producer-rebuild path runs too.
    worker = exporter(
        pg_engine,
        topic,
        flush_timeout=3.0,
        batch_size=200,
        poll_seconds=0.05,
        backoff_initial_seconds=0.2,
        backoff_max_seconds=1.0,
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    lag_in_outage = 0
    try:
        for i in range(0, 3000, 100):  # ~6 s of steady load
            enqueue_cdrs(pg_engine, records[i : i + 100])
            time.sleep(0.2)
            if i == 600:
                local_kafka.stop()  # SIGTERM via scripts/kafka-local.sh
            if i == 2000:
                lag_in_outage = unsent(pg_engine)
                # What an operator sees meanwhile: the lag metrics of the exporter.
                wait_for(lambda: metric("openpcc_cdr_outbox_lag") >= 1000, 30, "lag metric")
                assert metric("openpcc_cdr_outbox_oldest_unsent_age_seconds") >= 1.0
                local_kafka.start()
        wait_for(lambda: unsent(pg_engine) == 0, 90, "the outbox to drain after the outage")
    finally:
        stop.set()
        thread.join(30)
    assert lag_in_outage >= 1000, "rows waited in the outbox while Kafka was down"
    assert worker.failures >= 1
    assert worker.sink.rebuilds >= 1, "a fresh producer took over after the outage"
    seen = check_records(topic.consume_all(), records)
    assert sum(seen.values()) - len(records) < 200, "at most a batch or so duplicated"


def test_kill_9_mid_export_then_restart(
    pg_engine, postgres_url, cdr_factory, enqueue_cdrs, kafka_topic, tmp_path
) -> None:
    records = [cdr_factory(n) for n in range(10_000)]
    enqueue_cdrs(pg_engine, records)
    # Small batches: the export takes long enough to be caught in the middle on a busy machine.
    first = spawn_exporter(postgres_url, kafka_topic, "node-a", tmp_path / "a.log", batch=100)
    try:
        wait_for(lambda: unsent(pg_engine) <= 9_000, 60, "the export to start")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    left = unsent(pg_engine)
    assert 0 < left < 10_000, f"killed mid-export: {(tmp_path / 'a.log').read_text()}"
    second = spawn_exporter(postgres_url, kafka_topic, "node-a", tmp_path / "b.log")
    try:
        wait_for(lambda: unsent(pg_engine) == 0, 90, "the restarted exporter to drain")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0
    seen = check_records(kafka_topic.consume_all(), records)
    # Duplicates can only be rows acknowledged but not yet marked when the kill came.
    assert sum(seen.values()) - len(records) <= 2 * 1000


def test_two_exporters_on_one_database_never_publish_a_row_twice(
    pg_engine, postgres_url, cdr_factory, enqueue_cdrs, kafka_topic, tmp_path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    procs = [
        spawn_exporter(postgres_url, kafka_topic, name, log)
        for name, log in zip(("node-a", "node-b"), logs, strict=True)
    ]
    records = [cdr_factory(n) for n in range(10_000)]
    try:
        wait_for(
            lambda: all(b"cdr export: started" in log.read_bytes() for log in logs),
            60,
            "both exporters to start",
        )
        for i in range(0, len(records), 500):  # a steady stream both compete for
            enqueue_cdrs(pg_engine, records[i : i + 500])
            time.sleep(0.05)
        wait_for(lambda: unsent(pg_engine) == 0, 90, "the outbox to drain")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(30) for proc in procs]
    assert codes == [0, 0]
    seen = check_records(kafka_topic.consume_all(), records)
    assert set(seen.values()) == {1}, "a row was published twice"
    with pg_engine.connect() as connection:
        owners = connection.execute(
            select(CdrOutbox.claimed_by, func.count()).group_by(CdrOutbox.claimed_by)
        ).all()
    assert {owner for owner, _ in owners} == {"node-a", "node-b"}, "both exporters shared work"
