"""Offline export and replay of the outbox: ``openpcc cdr export`` / ``openpcc cdr replay``.

The time window is the outbox time (``created_at``: when charging closed the record and wrote its
row), half-open ``[since, until)``. Every row in it counts, exported to the sink or not.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice
from typing import Any, TextIO

from sqlalchemy.engine import Engine

from charging.cdr.sink import Sink
from charging.cdr.store import OutboxRow, iter_window

#: CDR-level CSV columns (TS 32.298 names); one CSV row per ``listOfServiceData`` container.
CDR_COLUMNS = (
    "cdrId",
    "schemaVersion",
    "recordType",
    "servedSubscriptionIds",
    "sessionId",
    "iMS-Charging-Identifier",
    "callingPartyAddress",
    "calledPartyAddress",
    "recordOpeningTime",
    "recordClosureTime",
    "duration",
    "causeForRecordClosing",
    "charge",
    "currency",
    "tariffId",
    "tariffVersion",
    "nodeId",
    "localRecordSequenceNumber",
    "recordSequenceNumber",
)
SERVICE_COLUMNS = (
    "ratingGroup",
    "serviceIdentifier",
    "timeUsage",
    "dataVolumeUplink",
    "dataVolumeDownlink",
    "serviceSpecificUnits",
    "timeOfFirstUsage",
    "timeOfLastUsage",
    "resultCode",
    "charge",
)
CSV_HEADER = (*CDR_COLUMNS, *(f"listOfServiceData.{c}" for c in SERVICE_COLUMNS))


def write_jsonl(rows: Iterable[OutboxRow], out: TextIO) -> int:
    """One CDR JSON per line; returns the number of CDRs."""
    count = 0
    for row in rows:
        out.write(json.dumps(json.loads(row.payload), separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _subscriptions(cdr: dict[str, Any]) -> str:
    ids = cdr.get("servedSubscriptionIds") or []
    return ";".join(f"{i['subscriptionIDType']}:{i['subscriptionIDData']}" for i in ids)


def write_csv(rows: Iterable[OutboxRow], out: TextIO) -> int:
    """CSV, one line per service-data container (CDR columns repeated); returns CDRs written.
    The CDR total is ``charge``; ``listOfServiceData.charge`` is the container's share."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for row in rows:
        cdr = json.loads(row.payload)
        head = [
            _subscriptions(cdr) if c == "servedSubscriptionIds" else _cell(cdr.get(c))
            for c in CDR_COLUMNS
        ]
        services = cdr.get("listOfServiceData") or [{}]
        for service in services:
            writer.writerow([*head, *(_cell(service.get(c)) for c in SERVICE_COLUMNS)])
        count += 1
    return count


def _chunks(rows: Iterator[OutboxRow], size: int) -> Iterator[list[OutboxRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def replay(
    engine: Engine,
    sink: Sink,
    since: datetime | None,
    until: datetime | None = None,
    batch_size: int = 1000,
) -> int:
    """Publish every CDR of the window again, in order (consumers deduplicate by ``cdrId``).
    The outbox is not changed. Raises ``SinkError`` on the first unacknowledged batch."""
    count = 0
    try:
        for chunk in _chunks(iter_window(engine, since, until), batch_size):
            sink.send(chunk).wait()
            count += len(chunk)
    finally:
        sink.close()
    return count
