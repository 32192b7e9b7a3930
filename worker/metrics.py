"""The domain's Prometheus metrics, fed by a Faust sensor: the agents' code knows nothing of them.

streamline_orders_total                          orders taken by an agent
streamline_payouts_total{outcome}                payouts delivered to approved | review | rejected
streamline_dead_letters_total{reason}            dead letters delivered, by reason code
streamline_order_to_outcome_seconds{outcome}     an order's created_at to its payout's delivery
streamline_pending_reviews                       payouts waiting for a person (from the review feature)
streamline_review_age_seconds                    age of the oldest of them (from the review feature)
streamline_consumer_lag{topic,partition}         high watermark minus the next offset to finish
streamline_ready                                 1 when /readyz says ready
streamline_processing_errors_total{stage}       exceptions that escaped a stage (PROCESSING_ERRORS)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from faust import Sensor
from faust.types import TP, Message, PendingMessage, RecordMetadata
from faust.types.transports import ProducerT
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.progress import Progress
from worker.runtime.observer import Observer

#: Seconds; an order normally reaches its outcome in milliseconds, a backlog takes minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class DomainMetrics:
    """The collectors, in one registry. A feature can plug its own sources into the review gauges."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.orders = Counter("streamline_orders", "Orders taken by an agent", registry=registry)
        self.payouts = Counter(
            "streamline_payouts", "Payouts delivered to a final topic", ["outcome"], registry=registry
        )
        self.dead_letters = Counter(
            "streamline_dead_letters", "Dead letters delivered, by reason", ["reason"], registry=registry
        )
        self.latency = Histogram(
            "streamline_order_to_outcome_seconds",
            "From an order's created_at to the delivery of its payout to a final topic",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.pending_reviews = Gauge(
            "streamline_pending_reviews", "Payouts waiting for a review", registry=registry
        )
        self.review_age = Gauge(
            "streamline_review_age_seconds", "Age of the oldest payout waiting for review", registry=registry
        )
        self.reviews_from(lambda: math.nan, lambda: math.nan)  # unknown until a review feature says

    def reviews_from(self, pending: Callable[[], float], oldest_age_s: Callable[[], float]) -> None:
        """Read the two review gauges from these callables at every scrape."""
        self.pending_reviews.set_function(pending)
        self.review_age.set_function(oldest_age_s)


class DomainSensor(Sensor):
    """Counts orders, outcomes and dead letters as Faust takes and delivers them."""

    def __init__(
        self, metrics: DomainMetrics, *, orders: str, outcomes: dict[str, str], dead_letters: str
    ) -> None:
        super().__init__()
        self.metrics, self.orders, self.outcomes, self.dead = metrics, orders, outcomes, dead_letters
        # Labelled children looked up once: `labels()` costs microseconds on every message otherwise.
        self._payouts = {o: metrics.payouts.labels(o) for o in outcomes.values()}
        self._latency = {o: metrics.latency.labels(o) for o in outcomes.values()}

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        """An agent takes a message: count orders."""
        if tp.topic == self.orders:
            self.metrics.orders.inc()

    def on_batch_in(self, counts: dict[str, int]) -> None:
        """A batch agent took records: count orders."""
        self.metrics.orders.inc(counts.get(self.orders, 0))

    def on_batch_delivered(self, messages: list[tuple[str, bytes]]) -> None:
        """A batch agent's messages reached the broker: count outcomes and dead letters."""
        for topic, value in messages:
            state = self.on_send_initiated(None, topic, _Pending(value), 0, 0)  # type: ignore[arg-type]
            if state is not None:
                self.on_send_completed(None, state, None)  # type: ignore[arg-type]

    def on_send_initiated(
        self, producer: ProducerT, topic: str, message: PendingMessage, keysize: int, valsize: int
    ) -> Any:
        """Note what a send to a final or dead-letter topic is, to count it once delivered."""
        outcome = self.outcomes.get(topic)
        if outcome is not None:
            return outcome, _field(message.value, "order_created_at")
        if topic == self.dead:
            return None, _field(message.value, "reason") or "unknown"
        return None

    def on_send_completed(self, producer: ProducerT, state: Any, metadata: RecordMetadata) -> None:
        """Count a delivered outcome (with its latency) or dead letter."""
        if state is None:
            return
        outcome, detail = state
        if outcome is None:
            self.metrics.dead_letters.labels(detail).inc()
            return
        self._payouts[outcome].inc()
        created = _timestamp(detail)
        if created is not None:
            self._latency[outcome].observe(max(0.0, time.time() - created))


class ProgressCollector(Collector):
    """Consumer lag per partition and readiness, read from `Progress` at every scrape."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def collect(self) -> Iterator[Metric]:
        """The lag gauge family and the ready gauge."""
        lag = GaugeMetricFamily(
            "streamline_consumer_lag",
            "High watermark minus the next offset an agent must finish",
            labels=["topic", "partition"],
        )
        for tp, value in sorted(self.progress.lags().items()):
            lag.add_metric([tp.topic, str(tp.partition)], value)
        yield lag
        ready = self.progress.readiness()["ready"]
        yield GaugeMetricFamily("streamline_ready", "1 when /readyz says ready", value=1 if ready else 0)


class ObserverCollector(Collector):
    """The runtime's counts (`worker.runtime.observer`), read at every scrape."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def collect(self) -> Iterator[Metric]:
        """The processing-error counter family."""
        errors = CounterMetricFamily(
            "streamline_processing_errors", "Exceptions that escaped a stage's handler", labels=["stage"]
        )
        for stage, count in sorted(self.observer.processing_errors.items()):
            errors.add_metric([stage], count)
        yield errors


class _Pending(NamedTuple):
    """What `on_send_initiated` reads of a pending message: its value."""

    value: bytes


def _field(value: Any, name: str) -> Any:
    try:
        document = orjson.loads(value)
    except (orjson.JSONDecodeError, TypeError):
        return None
    return document.get(name) if isinstance(document, dict) else None


def _timestamp(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if isinstance(text, str) else None
    except ValueError:
        return None
