"""Kafka sink: an idempotent ``kafka-python`` producer, one message per CDR.

Message key = the outbox row's ``partition_key`` (the subscriber), so a subscriber's CDRs land in
one partition (Kafka's default murmur2 partitioning, as a Java client would pick it) in outbox
order; value = the CDR JSON; header ``cdrId`` lets consumers deduplicate without parsing.
``acks=all`` + idempotence: a record counts as delivered only when every in-sync replica has it,
and producer retries cannot duplicate it.

A batch whose records are not all acknowledged within ``flush_timeout`` fails, and the producer is
thrown away and rebuilt: after a delivery timeout an idempotent kafka-python producer can wedge for
good (flush/close only time out), see ../shared/notes/kafka.md. The rows then stay unsent and the
exporter retries them with a fresh producer (same ``cdrId``, so a rare duplicate is harmless).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from charging.cdr.sink import SinkError
from charging.cdr.store import OutboxRow
from schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    """Where and how to publish (from the ``kafka_*`` settings)."""

    bootstrap: str
    topic: str
    client_id: str = "openpcc-cdr"
    flush_timeout_seconds: float = 15.0
    security: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaConfig:
        security: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
        if settings.kafka_sasl_mechanism:
            security["sasl_mechanism"] = settings.kafka_sasl_mechanism
            security["sasl_plain_username"] = settings.kafka_sasl_username
            password = settings.kafka_sasl_password
            security["sasl_plain_password"] = password.get_secret_value() if password else None
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(settings, f"kafka_{name}")
            if value:
                security[name] = value
        return cls(
            bootstrap=settings.kafka_bootstrap,
            topic=settings.kafka_topic,
            client_id=settings.kafka_client_id,
            flush_timeout_seconds=settings.kafka_flush_timeout_seconds,
            security=tuple(security.items()),
        )

    def producer_options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": [s.strip() for s in self.bootstrap.split(",") if s.strip()],
            "client_id": self.client_id,
            "acks": "all",
            "enable_idempotence": True,
            # Bounded retries with back-off inside the client; beyond them the batch fails and
            # the exporter backs off and retries with a new producer.
            "retries": 10,
            "retry_backoff_ms": 200,
            "delivery_timeout_ms": 120_000,
            "request_timeout_ms": 10_000,
            "max_in_flight_requests_per_connection": 5,  # ordered with idempotence (<= 5)
            # Measured: ~25k msg/s with these vs ~12k with the defaults (notes/kafka.md).
            "linger_ms": 20,
            "batch_size": 256 * 1024,
            # Without it the client may resume up to 30 s after the broker is back.
            "reconnect_backoff_ms": 100,
            "reconnect_backoff_max_ms": 1000,
            # send() must not block long when the cluster is unreachable (metadata wait).
            "max_block_ms": 5_000,
            **dict(self.security),
        }


class KafkaDelivery:
    """The futures of one batch; ``wait`` returns when the broker acknowledged all of them."""

    def __init__(self, sink: KafkaSink, producer: KafkaProducer, futures: list[Any]) -> None:
        self._sink = sink
        self._producer = producer
        self._futures = futures

    def wait(self) -> None:
        deadline = time.monotonic() + self._sink.config.flush_timeout_seconds
        try:
            for future in self._futures:
                if not future.is_done:
                    future.get(timeout=max(0.0, deadline - time.monotonic()))
                elif future.failed():
                    raise future.exception
        except Exception as exc:  # KafkaError, or anything a failed future carries
            self._sink.discard(self._producer, exc)
            raise SinkError(f"Kafka did not acknowledge the batch: {exc!r}") from exc


class KafkaSink:
    """Publishes outbox rows to one topic."""

    name = "kafka"

    def __init__(self, config: KafkaConfig) -> None:
        self.config = config
        self._producer: KafkaProducer | None = None
        self._hashes: dict[bytes, int] = {}
        self.rebuilds = 0

    def _ensure_producer(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(**self.config.producer_options())
            except KafkaError as exc:
                reason = f"cannot connect to Kafka {self.config.bootstrap}: {exc!r}"
                raise SinkError(reason) from exc
        return self._producer

    def send(self, rows: Sequence[OutboxRow]) -> KafkaDelivery:
        producer = self._ensure_producer()
        topic = self.config.topic
        futures = []
        try:
            partitions = sorted(producer.partitions_for(topic))
            for row in rows:
                key = row.partition_key.encode()
                futures.append(
                    producer.send(
                        topic,
                        value=row.payload.encode(),
                        key=key,
                        partition=partitions[self._key_hash(key) % len(partitions)],
                        headers=[("cdrId", row.cdr_id.encode())],
                    )
                )
        except KafkaError as exc:
            self.discard(producer, exc)
            raise SinkError(f"cannot publish to Kafka: {exc!r}") from exc
        return KafkaDelivery(self, producer, futures)

    def _key_hash(self, key: bytes) -> int:
        """Kafka's default partitioner hash (positive murmur2, as the Java client computes it),
        memoised per subscriber: it is pure Python and a tenth of the send cost otherwise."""
        value = self._hashes.get(key)
        if value is None:
            if len(self._hashes) >= 1_000_000:
                self._hashes.clear()
            value = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return value

    def discard(self, producer: KafkaProducer, reason: BaseException) -> None:
        """Throw a failed producer away; the next ``send`` builds a new one (new producer id)."""
        if self._producer is producer:
            self._producer = None
            self.rebuilds += 1
            log.warning("cdr kafka: rebuilding the producer after %r", reason)
        _force_close(producer)

    def maintain(self) -> None:
        return None

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=self.config.flush_timeout_seconds)
            except KafkaError:
                _force_close(producer)


def _force_close(producer: KafkaProducer) -> None:
    """Close without waiting for pending records: ``close(0)`` raises on a wedged producer
    before it stops its I/O thread, so stop that thread first (kafka-python 3.0 internals)."""
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        sender.force_close()
        sender.join(5)
    try:
        producer.close(timeout=0)
    except KafkaError:
        log.debug("cdr kafka: discarded producer did not close cleanly", exc_info=True)
