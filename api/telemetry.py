"""Prometheus collectors of the API: HTTP requests, live sessions, CDR outbox lag, peer states,
and the Diameter counters/histograms of ``diam.metrics`` (one registry per app instance)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import ApiContext
from charging import admin as ledger
from charging.cdr import search as cdrs

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def live_counts(ctx: ApiContext) -> dict[str, int]:
    """Live sessions by application: Gx/Rx held by this node's PCRF, Ro open in the ledger."""
    gx = ctx.pcrf.store.all_gx() if ctx.pcrf is not None else []
    with ctx.engine.connect() as conn:
        ro = ledger.count_open_sessions(conn)
    return {"gx": len(gx), "rx": sum(len(g.rx_sessions) for g in gx), "ro": ro}


def outbox_status(ctx: ApiContext) -> dict[str, Any]:
    with ctx.engine.connect() as conn:
        lag, total, claimed = cdrs.status(conn)
    return {
        "unsent": lag.unsent,
        "oldest_unsent_at": lag.oldest_created_at,
        "oldest_unsent_age_seconds": lag.oldest_age_seconds(datetime.now(UTC)),
        "claimed": claimed,
        "total": total,
    }


class StateCollector:
    """Gauges read at scrape time from the live state (cheap indexed queries)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Any]:
        sessions = GaugeMetricFamily(
            "openpcc_sessions", "Live sessions by Diameter application", labels=["application"]
        )
        for app, n in live_counts(self.ctx).items():
            sessions.add_metric([app], n)
        yield sessions
        status = outbox_status(self.ctx)
        yield GaugeMetricFamily(
            "openpcc_outbox_unsent_cdrs",
            "CDRs in the outbox not yet exported",
            value=status["unsent"],
        )
        yield GaugeMetricFamily(
            "openpcc_outbox_oldest_unsent_age_seconds",
            "Age of the oldest CDR not yet exported (0 when none)",
            value=status["oldest_unsent_age_seconds"],
        )
        peers = GaugeMetricFamily(
            "openpcc_diameter_peers",
            "Diameter connections by listener and state",
            labels=["listener", "state"],
        )
        up = GaugeMetricFamily(
            "openpcc_diameter_peer_up",
            "1 when the peer connection is Open",
            labels=["listener", "origin_host"],
        )
        for endpoint in self.ctx.nodes():
            states: dict[str, int] = {}
            for peer in endpoint.node.connections:
                states[peer.state.value] = states.get(peer.state.value, 0) + 1
                if peer.origin_host:
                    up.add_metric(
                        [endpoint.label, peer.origin_host], 1 if peer.state.value == "open" else 0
                    )
            for state, n in states.items():
                peers.add_metric([endpoint.label, state], n)
        yield peers
        yield up


def build_registry(ctx: ApiContext) -> tuple[CollectorRegistry, Counter, Histogram]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ctx.metrics.prometheus_collector())  # type: ignore[arg-type]
    registry.register(StateCollector(ctx))  # type: ignore[arg-type]
    requests = Counter(
        "openpcc_http_requests",
        "HTTP requests by route template, method and status",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "openpcc_http_request_seconds",
        "HTTP request latency by route template",
        ["method", "route"],
        buckets=HTTP_BUCKETS,
        registry=registry,
    )
    return registry, requests, latency


#: Methods counted under their own name; any other token a client sends is "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Counts and times every HTTP request under its route template (bounded label values)."""

    def __init__(self, app: ASGIApp, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        #: (method, route, status) -> its counter and histogram children (labels() once each).
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _children(self, method: str, template: str, status: int) -> tuple[Any, Any]:
        if method not in METHODS:
            method = "other"
        key = (method, template, status)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = (
                self.requests.labels(method, template, str(status)),
                self.latency.labels(method, template),
            )
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            count, latency = self._children(scope.get("method", "GET"), template, status)
            count.inc()
            latency.observe(time.perf_counter() - started)


def diameter_totals(ctx: ApiContext) -> tuple[int, list[tuple[float, int]]]:
    """Answered (inbound) Diameter requests so far and their cumulative latency buckets."""
    m = ctx.metrics
    total = 0
    counts = [0] * (len(m.buckets) + 1)
    for key, series in list(m.series.items()):
        if key[0] != "in":
            continue
        total += series.count
        for i, n in enumerate(series.counts):
            counts[i] += n
    running, cumulative = 0, []
    for bound, n in zip((*m.buckets, float("inf")), counts, strict=True):
        running += n
        cumulative.append((bound, running))
    return total, cumulative
