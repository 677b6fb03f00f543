"""Prometheus metrics of the CDR exporter (default registry, served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

OUTBOX_LAG = Gauge(
    "openpcc_cdr_outbox_lag",
    "CDRs in the outbox not yet acknowledged by the sink",
)
OUTBOX_OLDEST_AGE = Gauge(
    "openpcc_cdr_outbox_oldest_unsent_age_seconds",
    "Age of the oldest CDR not yet acknowledged by the sink (0 when none)",
)
EXPORTED = Counter(
    "openpcc_cdr_exported",
    "CDRs acknowledged by the sink and marked sent",
    ["sink"],
)
EXPORT_FAILURES = Counter(
    "openpcc_cdr_export_failures",
    "Batches the sink or the database failed (the rows stay in the outbox)",
    ["sink"],
)
