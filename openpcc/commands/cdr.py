"""``openpcc cdr``: charging data records.

openpcc cdr schema                                   JSON Schema of the CDR (docs/cdr.schema.json)
openpcc cdr export [--since T] [--until T] [--format jsonl|csv] [--output FILE]
openpcc cdr replay --since T [--until T]             publish again to Kafka (consumers dedupe)
openpcc cdr exporter [--once]                        run the outbox exporter on its own

Times are ISO 8601 (``2026-03-01``, ``2026-03-01T12:00:00Z``; no offset = UTC) and select by
outbox time, half-open ``[since, until)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from charging.cdr.export import replay, write_csv, write_jsonl
from charging.cdr.setup import build_exporter, build_sink
from charging.cdr.sink import SinkError
from charging.cdr.store import iter_window
from openpcc import logs
from openpcc.database import create_engine, upgrade
from schemas.cdr import cdr_json_schema
from schemas.settings import Settings


def _timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cdr", help="charging data records: schema, export, replay")
    parser.add_argument("--database-url", help="default: OPENPCC_DATABASE_URL")
    commands = parser.add_subparsers(dest="cdr_command", required=True)

    schema = commands.add_parser("schema", help="print the CDR JSON Schema")
    schema.set_defaults(func=_schema)

    export = commands.add_parser("export", help="write the CDRs of a time window")
    export.add_argument("--since", type=_timestamp)
    export.add_argument("--until", type=_timestamp)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("--output", type=Path, help="default: standard output")
    export.set_defaults(func=_export)

    again = commands.add_parser("replay", help="publish the CDRs of a window to Kafka again")
    again.add_argument("--since", type=_timestamp, required=True)
    again.add_argument("--until", type=_timestamp)
    again.add_argument("--bootstrap", help="default: OPENPCC_KAFKA_BOOTSTRAP")
    again.add_argument("--topic", help="default: OPENPCC_KAFKA_TOPIC")
    again.set_defaults(func=_replay)

    run = commands.add_parser("exporter", help="export the outbox to the configured sink")
    run.add_argument("--once", action="store_true", help="drain what is there, then exit")
    run.set_defaults(func=_exporter)


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(cdr_json_schema(), indent=2, ensure_ascii=False))
    return 0


def _engine(args: argparse.Namespace, settings: Settings) -> Any:
    engine = create_engine(args.database_url or settings.database_url)
    upgrade(engine)
    return engine


def _export(args: argparse.Namespace) -> int:
    settings = Settings()
    engine = _engine(args, settings)
    write = write_csv if args.format == "csv" else write_jsonl
    try:
        rows = iter_window(engine, args.since, args.until)
        if args.output is None:
            count = write(rows, sys.stdout)
        else:
            with open(args.output, "w", encoding="utf-8", newline="") as out:
                count = write(rows, out)
    finally:
        engine.dispose()
    print(f"cdr export: {count} records", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    overrides = {"kafka_bootstrap": args.bootstrap, "kafka_topic": args.topic}
    settings = Settings(**{k: v for k, v in overrides.items() if v})
    if not settings.kafka_bootstrap:
        print("cdr replay: set OPENPCC_KAFKA_BOOTSTRAP or --bootstrap", file=sys.stderr)
        return 2
    sink = build_sink(settings, "kafka")
    assert sink is not None
    engine = _engine(args, settings)
    try:
        count = replay(engine, sink, args.since, args.until, settings.cdr_batch_size)
    except SinkError as exc:
        print(f"cdr replay: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"cdr replay: {count} records published to {settings.kafka_topic}", file=sys.stderr)
    return 0


def _exporter(args: argparse.Namespace) -> int:
    logs.configure(logging.INFO)
    settings = Settings()
    engine = _engine(args, settings)
    exporter = build_exporter(settings, engine)
    if exporter is None:
        print("cdr exporter: CDR export is off (OPENPCC_CDR_SINK=off)", file=sys.stderr)
        return 2
    try:
        if args.once:
            exporter.store.release_own_claims()
            try:
                count = exporter.export_available()
            except SinkError as exc:
                print(f"cdr exporter: {exc}", file=sys.stderr)
                return 1
            finally:
                exporter.sink.close()
            print(f"cdr exporter: {count} records exported", file=sys.stderr)
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        exporter.run(stop)
    finally:
        engine.dispose()
    return 0
