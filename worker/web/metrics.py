"""GET /metrics: Prometheus text format, with Faust's own sensor and the domain's metrics.

Faust's `PrometheusMonitor` (metric names `faust_*`) replaces the app's monitor, so `/stats` keeps
working from the same counts; `worker.metrics` adds the `streamline_*` metrics. Each app has its own
registry, so several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import AppT
from prometheus_client import CollectorRegistry

from worker.metrics import DomainMetrics, DomainSensor, ObserverCollector, ProgressCollector
from worker.progress import Progress
from worker.runtime.observer import Observer
from worker.topics import Topics


def register(app: AppT, topics: Topics, progress: Progress, observer: Observer) -> DomainMetrics:
    """Add `/metrics` to `app`; the returned metrics take the review feature's gauge sources."""
    registry = CollectorRegistry()
    setup_prometheus_sensors(app, pattern="/metrics", registry=registry, name_prefix="faust")
    metrics = DomainMetrics(registry)
    outcomes = {
        topics.payouts_approved.get_topic_name(): "approved",
        topics.payouts_review.get_topic_name(): "review",
        topics.payouts_rejected.get_topic_name(): "rejected",
    }
    app.sensors.add(
        DomainSensor(
            metrics,
            orders=topics.orders.get_topic_name(),
            outcomes=outcomes,
            dead_letters=topics.dead_letters.get_topic_name(),
        )
    )
    registry.register(ProgressCollector(progress))
    registry.register(ObserverCollector(observer))
    return metrics
