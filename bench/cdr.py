"""CDR export benchmark: outbox (PostgreSQL) → exporter → local Kafka broker, acks=all.

Prints:
  1. export throughput: CDRs/s from a pre-filled outbox until every row is acknowledged by the
     broker and marked sent; next to it the two halves measured alone (the producer without the
     database, the database claim+mark without Kafka) to show what limits it;
  2. end-to-end lag at a steady insert load (charging writing CDRs): outbox commit → a
     ``read_committed`` consumer has the record, percentiles.

Uses OPENPCC_TEST_DATABASE_URL / OPENPCC_KAFKA_BOOTSTRAP when set, else starts the local
PostgreSQL and Kafka scripts (and stops what it started). ``python -m bench.cdr [--rows N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from sqlalchemy.engine import Engine, make_url

from charging.cdr.exporter import Exporter
from charging.cdr.kafka_sink import KafkaConfig, KafkaSink
from charging.cdr.sink import Done
from charging.cdr.store import OutboxRow, OutboxStore
from charging.models import CdrOutbox
from openpcc.database import create_engine, upgrade
from schemas.cdr import ChargingDataRecord, make_cdr_id
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 1, tzinfo=UTC)


@contextmanager
def service(env: str, script: str) -> Iterator[str]:
    """A running service's URL: from ``env``, else started by ``script`` (stopped after, when
    this benchmark started it; Kafka is shared with concurrent test sessions through a lease)."""
    if os.environ.get(env):
        yield os.environ[env]
        return
    path = str(ROOT / "scripts" / script)
    if script == "kafka-local.sh":
        user = str(os.getpid())
        out = subprocess.run(["bash", path, "acquire", user], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"cannot start Kafka: {out.stderr.strip()}")
        try:
            yield out.stdout.strip().splitlines()[-1]
        finally:
            subprocess.run(["bash", path, "release", user], capture_output=True, check=False)
        return
    started = subprocess.run(["bash", path, "status"], capture_output=True).returncode != 0
    out = subprocess.run(["bash", path, "start"], capture_output=True, text=True, check=True)
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        if started:
            subprocess.run(["bash", path, "stop"], capture_output=True, check=False)


@contextmanager
def fresh_database(server_url: str) -> Iterator[Engine]:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = create_engine(url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def fresh_topic(bootstrap: str) -> Iterator[str]:
    name = f"bench-cdr-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


def cdr(n: int) -> ChargingDataRecord:
    msisdn = f"49171{n % 10_000:07d}"
    session = f"scscf.ims.example;{uuid.uuid4().hex};{n}"
    seconds = 1 + n % 600
    return ChargingDataRecord.model_validate(
        {
            "cdrId": make_cdr_id("ocs-bench", session),
            "recordType": "sCSCFRecord",
            "servedSubscriptionIds": [
                {"subscriptionIDType": "END_USER_E164", "subscriptionIDData": msisdn}
            ],
            "sessionId": session,
            "iMS-Charging-Identifier": f"icid-{n}",
            "callingPartyAddress": f"sip:+{msisdn}@ims.example",
            "calledPartyAddress": "tel:+4930123456",
            "recordOpeningTime": T0,
            "recordClosureTime": T0 + timedelta(seconds=seconds),
            "duration": seconds,
            "causeForRecordClosing": "normalRelease",
            "listOfServiceData": [{"ratingGroup": 100, "timeUsage": seconds, "charge": seconds}],
            "charge": seconds,
            "currency": "EUR",
            "tariffId": "voice-de",
            "tariffVersion": "1",
            "nodeId": "ocs-bench",
            "localRecordSequenceNumber": n,
        }
    )


def enqueue(engine: Engine, records: Sequence[ChargingDataRecord]) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "cdr_id": r.cdr_id,
            "partition_key": r.partition_key,
            "payload": r.model_dump_json(),
            "created_at": now,
        }
        for r in records
    ]
    with engine.begin() as connection:
        connection.execute(CdrOutbox.__table__.insert(), rows)


class NullSink:
    """Acknowledges at once: measures the database half alone."""

    name = "null"

    def send(self, rows: Sequence[OutboxRow]) -> Done:
        return Done()

    def maintain(self) -> None:
        return None

    def close(self) -> None:
        return None


def new_exporter(engine: Engine, sink, owner: str, batch: int) -> Exporter:
    """An exporter with the default settings (poll interval, back-off) but ``batch``."""
    defaults = Settings.model_fields
    return Exporter(
        OutboxStore(engine, owner, timedelta(minutes=2)),
        sink,
        batch_size=batch,
        poll_seconds=defaults["cdr_poll_seconds"].default,
        backoff_max_seconds=defaults["cdr_backoff_max_seconds"].default,
    )


class CpuMeter:
    """CPU seconds used by this process, the Kafka broker and the database's backends."""

    def __init__(self, engine: Engine, broker_pid: int | None) -> None:
        self.engine = engine
        self.broker_pid = broker_pid
        engine.dispose()  # fresh backends: their lifetime CPU is this phase's
        self.py = time.process_time()
        self.broker = _cpu(broker_pid)

    def read(self) -> tuple[float, float, float]:
        """(python, postgres, broker) seconds since the meter was made."""
        with self.engine.connect() as connection:
            pids = connection.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            ).scalars()
            pg = sum(_cpu(pid) for pid in pids)
        return time.process_time() - self.py, pg, _cpu(self.broker_pid) - self.broker


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The local script's broker (None for an external OPENPCC_KAFKA_BOOTSTRAP)."""
    if os.environ.get("OPENPCC_KAFKA_BOOTSTRAP"):
        return None
    port = os.environ.get("OPENPCC_KAFKA_PORT", "29092")
    path = ROOT / ".cache" / "kafka" / f"run-{port}" / "broker.pid"
    return int(path.read_text()) if path.exists() else None


def drain_rate(exporter: Exporter, rows: int) -> float:
    """Run the exporter loop until ``rows`` are marked sent; CDRs/s."""
    stop = threading.Event()
    thread = threading.Thread(target=exporter.run, args=(stop,))
    start = time.perf_counter()
    thread.start()
    while exporter.exported < rows:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    stop.set()
    thread.join()
    return rows / elapsed


def producer_rate(bootstrap: str, topic: str, payloads: list[OutboxRow], batch: int) -> float:
    """The Kafka half alone: send + wait for acks, two batches in flight, no database."""
    sink = KafkaSink(KafkaConfig(bootstrap, topic))
    sink.send(payloads[:100]).wait()  # connect, metadata
    start = time.perf_counter()
    pending = None
    for i in range(0, len(payloads), batch):
        delivery = sink.send(payloads[i : i + batch])
        if pending is not None:
            pending.wait()
        pending = delivery
    if pending is not None:
        pending.wait()
    elapsed = time.perf_counter() - start
    sink.close()
    return len(payloads) / elapsed


def report(name: str, rate: float, cpu: tuple[float, float, float], rows: int) -> None:
    py, pg, broker = (seconds / rows * 1e6 for seconds in cpu)
    print(
        f"{name:<40} {rate:>8,.0f} CDRs/s   CPU us/CDR: exporter {py:5.1f}  "
        f"postgres {pg:5.1f}  broker {broker:5.1f}  total {py + pg + broker:5.1f}"
    )


def refill(engine: Engine, records: Sequence[ChargingDataRecord]) -> None:
    """An outbox holding exactly ``records``, unsent, vacuumed and analysed (steady state)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE cdr_outbox")
    for i in range(0, len(records), 5000):
        enqueue(engine, records[i : i + 5000])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE cdr_outbox")


def throughput(engine: Engine, bootstrap: str, rows: int, batch: int) -> None:
    records = [cdr(n) for n in range(rows)]
    size = sum(len(r.model_dump_json()) for r in records[:100]) // 100
    pid = broker_pid()
    print(f"{rows} CDRs of ~{size} bytes JSON, batches of {batch}, 3 partitions, acks=all, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before")  # fmt: skip
    with fresh_topic(bootstrap) as topic:
        refill(engine, records)
        meter = CpuMeter(engine, pid)
        sink = KafkaSink(KafkaConfig(bootstrap, topic))
        rate = drain_rate(new_exporter(engine, sink, "bench", batch), rows)
        report("export outbox -> Kafka (acked + marked)", rate, meter.read(), rows)
        payloads = [
            OutboxRow(0, r.cdr_id, r.partition_key, r.model_dump_json(), T0) for r in records
        ]
        meter = CpuMeter(engine, pid)
        rate = producer_rate(bootstrap, topic, payloads, batch)
        report("  Kafka producer alone (no database)", rate, meter.read(), rows)
    refill(engine, records)
    meter = CpuMeter(engine, pid)
    rate = drain_rate(new_exporter(engine, NullSink(), "bench-null", batch), rows)
    report("  database claim+mark alone (no Kafka)", rate, meter.read(), rows)


def steady_lag(engine: Engine, bootstrap: str, rate: int, seconds: float) -> None:
    """Insert ``rate`` CDRs/s in small transactions (as charging does) with the exporter running
    and a consumer reading the topic; lag = outbox commit → the consumer has the record."""
    inserted: dict[str, float] = {}
    received: dict[str, float] = {}
    refill(engine, [])
    with fresh_topic(bootstrap) as topic:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=10,
        )
        reading = threading.Event()
        reading.set()

        def consume() -> None:
            while reading.is_set():
                for batch in consumer.poll(timeout_ms=50).values():
                    now = time.time()
                    for record in batch:
                        received[dict(record.headers)["cdrId"].decode()] = now

        reader = threading.Thread(target=consume)
        reader.start()
        exporter = new_exporter(engine, KafkaSink(KafkaConfig(bootstrap, topic)), "lag", 1000)
        stop = threading.Event()
        thread = threading.Thread(target=exporter.run, args=(stop,))
        thread.start()
        tick = 0.05
        per_tick = max(1, int(rate * tick))
        n = 0
        next_at = time.perf_counter()
        while n < rate * seconds:
            batch = [cdr(10_000_000 + n + i) for i in range(per_tick)]
            enqueue(engine, batch)
            committed = time.time()
            inserted.update((r.cdr_id, committed) for r in batch)
            n += per_tick
            next_at += tick
            time.sleep(max(0.0, next_at - time.perf_counter()))
        deadline = time.monotonic() + 30
        while len(received) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join()
        reading.clear()
        reader.join()
        consumer.close()
    lags = sorted((received[i] - inserted[i]) * 1000 for i in inserted if i in received)
    q = statistics.quantiles(lags, n=100)
    print(
        f"steady load {rate} CDRs/s for {seconds:.0f} s: {len(lags)}/{n} CDRs read back; "
        f"lag outbox commit -> consumer, ms: p50 {q[49]:.0f}  p95 {q[94]:.0f}  "
        f"p99 {q[98]:.0f}  max {lags[-1]:.0f}"
    )


def scale_out(engine: Engine, bootstrap: str, rows: int, processes: int) -> None:
    """``processes`` exporter processes (``openpcc cdr exporter``) share one outbox: the rows
    are committed in one transaction, timed from the commit until all are marked sent."""
    refill(engine, [])
    url = engine.url.render_as_string(hide_password=False)
    records = [cdr(20_000_000 + n) for n in range(rows)]
    with fresh_topic(bootstrap) as topic, tempfile.TemporaryDirectory() as logs:
        env = {**os.environ, "OPENPCC_DATABASE_URL": url, "OPENPCC_KAFKA_BOOTSTRAP": bootstrap,
               "OPENPCC_KAFKA_TOPIC": topic, "OPENPCC_CDR_SINK": "kafka"}  # fmt: skip
        procs = []
        for n in range(processes):
            log = Path(logs) / f"{n}.log"
            with open(log, "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "openpcc.cli", "cdr", "exporter"], cwd=ROOT,
                    env={**env, "OPENPCC_CDR_EXPORTER_ID": f"bench-{n}"}, stdout=out,
                    stderr=subprocess.STDOUT,
                ))  # fmt: skip
        try:
            logs_of = [Path(logs) / f"{n}.log" for n in range(processes)]
            while not all(b"cdr export: started" in log.read_bytes() for log in logs_of):
                time.sleep(0.05)
            enqueue(engine, records)
            start = time.perf_counter()
            unsent = sa.select(sa.func.count()).where(CdrOutbox.__table__.c.sent_at.is_(None))
            while True:
                with engine.connect() as connection:
                    if connection.execute(unsent).scalar_one() == 0:
                        break
                time.sleep(0.01)
            elapsed = time.perf_counter() - start
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
    print(f"{processes} exporter processes on one outbox: {rows / elapsed:>8,.0f} CDRs/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000, help="steady insert load, CDRs/s")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2, help="scale-out run; 0 = skip")
    args = parser.parse_args()
    with (
        service("OPENPCC_TEST_DATABASE_URL", "postgres-local.sh") as pg,
        service("OPENPCC_KAFKA_BOOTSTRAP", "kafka-local.sh") as bootstrap,
        fresh_database(pg) as engine,
    ):
        throughput(engine, bootstrap, args.rows, args.batch)
        if args.processes:
            scale_out(engine, bootstrap, args.rows, args.processes)
        steady_lag(engine, bootstrap, args.rate, args.seconds)


if __name__ == "__main__":
    main()
