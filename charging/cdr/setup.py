"""Build the configured sink and exporter from settings (used by ``openpcc run`` and the CLI)."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy.engine import Engine

from charging.cdr.exporter import Exporter
from charging.cdr.file_sink import JsonLinesSink
from charging.cdr.kafka_sink import KafkaConfig, KafkaSink
from charging.cdr.sink import Sink
from charging.cdr.store import OutboxStore
from schemas.settings import Settings


def sink_kind(settings: Settings) -> str:
    """``kafka``, ``file`` or ``off``: "auto" means Kafka when a bootstrap address is set."""
    if settings.cdr_sink == "auto":
        return "kafka" if settings.kafka_bootstrap.strip() else "file"
    if settings.cdr_sink == "kafka" and not settings.kafka_bootstrap.strip():
        raise ValueError("cdr_sink=kafka needs OPENPCC_KAFKA_BOOTSTRAP")
    return settings.cdr_sink


def build_sink(settings: Settings, kind: str | None = None) -> Sink | None:
    """The sink the settings ask for (None when CDR export is off)."""
    kind = kind or sink_kind(settings)
    if kind == "kafka":
        return KafkaSink(KafkaConfig.from_settings(settings))
    if kind == "file":
        return JsonLinesSink(
            settings.cdr_dir,
            rotate_bytes=settings.cdr_rotate_bytes,
            rotate_seconds=settings.cdr_rotate_seconds,
        )
    return None


def exporter_id(settings: Settings) -> str:
    """The claim owner name: configured, else unique per process (``<hostname>-<pid>``)."""
    return settings.cdr_exporter_id or f"{socket.gethostname()}-{os.getpid()}"


def build_exporter(settings: Settings, engine: Engine, sink: Sink | None = None) -> Exporter | None:
    """An exporter from the outbox of ``engine`` to the configured sink (None when off)."""
    sink = sink or build_sink(settings)
    if sink is None:
        return None
    store = OutboxStore(
        engine, exporter_id(settings), timedelta(seconds=settings.cdr_claim_timeout_seconds)
    )
    return Exporter(
        store,
        sink,
        batch_size=settings.cdr_batch_size,
        poll_seconds=settings.cdr_poll_seconds,
        backoff_max_seconds=settings.cdr_backoff_max_seconds,
    )
