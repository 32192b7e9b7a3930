"""GET /metrics: Prometheus text, from Faust's own sensor (`faust_*`) and the runtime's observer.

The runtime's families, read from the same counts as `/stats`:

streamline_stage_messages_total{stage}           messages a stage took
streamline_dead_letters_total{reason}            dead letters the broker confirmed, by reason code
streamline_processing_errors_total{stage}        exceptions that escaped a stage (PROCESSING_ERRORS)
streamline_order_to_outcome_seconds{outcome}     from the start of a message's story to its outcome
streamline_consumer_lag{topic,partition}         high watermark minus the next offset to finish
streamline_ready                                 1 when /readyz says ready

and the features' own readings (`Observer.reading`): `streamline_orders_total`,
`streamline_payouts_total{outcome}`, `streamline_pending_reviews`, `streamline_review_age_seconds`.
Each app has its own registry, so several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor, setup_prometheus_sensors
from faust.types import TP, AppT, CollectionT, EventT, Message, ProducerT, StreamT
from faust.types.tuples import PendingMessage
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from worker.runtime.observer import Observer, Reading
from worker.runtime.progress import Progress


class ObserverCollector(Collector):
    """The observer's counts and the features' readings, read at every scrape."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer

    def collect(self) -> Iterator[Metric]:
        """One family per count, then one per reading."""
        observer = self.observer
        yield _counter("streamline_stage_messages", "Messages a stage took", "stage", observer.handled)
        batches = "Batches a stage handled (messages / batches: its batch size)"
        yield _counter("streamline_stage_batches", batches, "stage", observer.batches)
        yield _counter(
            "streamline_dead_letters", "Dead letters delivered, by reason", "reason", observer.dead_letters
        )
        yield _counter(
            "streamline_processing_errors",
            "Exceptions that escaped a stage's handler",
            "stage",
            observer.processing_errors,
        )
        for reading in observer.readings:
            yield _family(reading)


def _counter(name: str, help: str, label: str, counts: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(name, help, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


def _family(reading: Reading) -> Metric:
    kind = CounterMetricFamily if reading.kind == "counter" else GaugeMetricFamily
    value = reading.read()
    if not isinstance(value, Mapping):
        return kind(reading.name, reading.help, value=value)
    family = kind(reading.name, reading.help, labels=list(reading.labels))
    for labels, number in sorted(value.items()):
        family.add_metric(list(labels), number)
    return family


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


class LabelledOnce(PrometheusMonitor):
    """Faust's Prometheus monitor, looking each labelled metric up once rather than for every message,
    event and table operation (`labels()` takes a lock and checks its labels: 4-5% of a busy worker's
    time, measured). The same samples; the labels are looked up again after Faust clears them at a
    rebalance."""

    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics, **kwargs)
        self._labelled: dict[Hashable, Any] = {}

    def _child(self, key: Hashable, metric: Any, **labels: Any) -> Any:
        child = self._labelled.get(key)
        if child is None:
            child = self._labelled[key] = metric.labels(**labels)
        return child

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        Monitor.on_message_in(self, tp, offset, message)
        metrics = self._metrics
        metrics.messages_received.inc()
        metrics.active_messages.inc()
        self._child(("in", tp.topic), metrics.messages_received_per_topics, topic=tp.topic).inc()
        self._child(
            ("in-partition", tp),
            metrics.messages_received_per_topics_partition,
            topic=tp.topic,
            partition=tp.partition,
        ).set(offset)

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        state = Monitor.on_stream_event_in(self, tp, offset, stream, event)
        metrics = self._metrics
        metrics.total_events.inc()
        metrics.total_active_events.inc()
        key = ("stream", stream)
        if key not in self._labelled:
            label = f"stream.{self._stream_label(stream)}.events"
            self._labelled[key] = metrics.total_events_per_stream.labels(stream=label)
        self._labelled[key].inc()
        return state

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_get(self, table, key)
        self._table(table, self.KEYS_RETRIEVED).inc()

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._table(table, self.KEYS_UPDATED).inc()

    def on_table_del(self, table: CollectionT, key: Any) -> None:
        Monitor.on_table_del(self, table, key)
        self._table(table, self.KEYS_DELETED).inc()

    def _table(self, table: CollectionT, operation: str) -> Any:
        return self._child(
            ("table", table.name, operation),
            self._metrics.table_operations,
            table=f"table.{table.name}",
            operation=operation,
        )

    def on_send_initiated(
        self, producer: ProducerT, topic: str, message: PendingMessage, keysize: int, valsize: int
    ) -> Any:
        self._child(("sent", topic), self._metrics.topic_messages_sent, topic=f"topic.{topic}").inc()
        return Monitor.on_send_initiated(self, producer, topic, message, keysize, valsize)

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        Monitor.track_tp_end_offset(self, tp, offset)
        self._child(
            ("end", tp), self._metrics.topic_partition_end_offset, topic=tp.topic, partition=tp.partition
        ).set(offset)

    def _clear_partition_related_metrics(self) -> None:
        self._labelled.clear()  # Faust removes the topics' labelled metrics from their families
        super()._clear_partition_related_metrics()


def register(app: AppT, observer: Observer, progress: Progress) -> None:
    """Add `/metrics` to `app`: Faust's Prometheus sensor and the observer, in the observer's registry."""
    setup_prometheus_sensors(app, pattern="/metrics", registry=observer.registry, name_prefix="faust")
    app.monitor = LabelledOnce(metrics=app.monitor._metrics)  # type: ignore[attr-defined]
    observer.registry.register(ObserverCollector(observer))
    observer.registry.register(ProgressCollector(progress))
