"""Counters and latency histograms per (direction, application, command, result).

Plain Python objects, cheap on the hot path (one dict lookup and one bisect per message). The api/
layer exports them with :meth:`Metrics.prometheus_collector`, registered on whatever
``prometheus_client`` registry it serves at ``/metrics``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

# Upper bounds in seconds (Prometheus "le"); finer than prometheus_client's defaults at the low
# end because a Diameter answer is typically produced in tens of microseconds.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
)  # fmt: skip

# (direction "in" = requests we answered / "out" = requests we sent, application id, command code,
#  result code; 0 when no answer came, e.g. a timeout)
Key = tuple[str, int, int, int]


@dataclass(slots=True)
class Series:
    """One histogram: per-bucket (non-cumulative) counts plus sum and count."""

    counts: list[int]
    total: float = 0.0
    count: int = 0


@dataclass(slots=True)
class Metrics:
    """The node's metrics registry; one instance may be shared by several nodes."""

    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    series: dict[Key, Series] = field(default_factory=dict)
    peer_events: dict[str, int] = field(default_factory=dict)

    def observe(self, direction: str, app: int, cmd: int, result: int, seconds: float) -> None:
        key = (direction, app, cmd, result)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series([0] * (len(self.buckets) + 1))
        series.counts[bisect_left(self.buckets, seconds)] += 1
        series.total += seconds
        series.count += 1

    def peer_event(self, event: str) -> None:
        self.peer_events[event] = self.peer_events.get(event, 0) + 1

    def count(self, direction: str, app: int, cmd: int, result: int) -> int:
        series = self.series.get((direction, app, cmd, result))
        return series.count if series else 0

    def cumulative(self, key: Key) -> list[tuple[float, int]]:
        """(upper bound, cumulative count) pairs ending with +Inf, as Prometheus exposes them."""
        series = self.series[key]
        out, running = [], 0
        for bound, n in zip((*self.buckets, float("inf")), series.counts, strict=True):
            running += n
            out.append((bound, running))
        return out

    def prometheus_collector(self) -> _Collector:
        """A ``prometheus_client`` custom collector over this registry."""
        return _Collector(self)


class _Collector:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[object]:
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        labels = ["direction", "application", "command", "result"]
        hist = HistogramMetricFamily(
            "openpcc_diameter_request_seconds",
            "Diameter request latency (answered: receive to answer write; sent: send to answer)",
            labels=labels,
        )
        for key, series in list(self._metrics.series.items()):
            buckets = [
                ("+Inf" if bound == float("inf") else repr(bound), n)
                for bound, n in self._metrics.cumulative(key)
            ]
            hist.add_metric([str(part) for part in key], buckets, series.total)
        yield hist
        events = CounterMetricFamily(
            "openpcc_diameter_peer_events", "Diameter peer events", labels=["event"]
        )
        for event, n in list(self._metrics.peer_events.items()):
            events.add_metric([event], n)
        yield events
