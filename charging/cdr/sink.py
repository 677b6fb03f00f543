"""What an exporter sink is: start publishing a batch, then wait until it is durable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from charging.cdr.store import OutboxRow


class SinkError(Exception):
    """The sink did not make a batch durable: none of its rows may be marked sent."""


class Delivery(Protocol):
    """A batch on its way to the sink."""

    def wait(self) -> None:
        """Return once every record of the batch is durable; raise ``SinkError`` otherwise."""


class Sink(Protocol):
    """A destination for CDRs (Kafka topic, JSON-lines files)."""

    name: str

    def send(self, rows: Sequence[OutboxRow]) -> Delivery:
        """Start publishing ``rows`` in order (may raise ``SinkError`` at once)."""

    def maintain(self) -> None:
        """Periodic housekeeping while idle (e.g. time-based file rotation)."""

    def close(self) -> None:
        """Finish and release resources; pending deliveries may be lost (rows stay unsent)."""


class Done:
    """A delivery that was complete when ``send`` returned (synchronous sinks)."""

    def wait(self) -> None:
        return None
