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

from collections.abc import Iterator, Mapping

from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import AppT
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


def register(app: AppT, observer: Observer, progress: Progress) -> None:
    """Add `/metrics` to `app`: Faust's Prometheus sensor and the observer, in the observer's registry."""
    setup_prometheus_sensors(app, pattern="/metrics", registry=observer.registry, name_prefix="faust")
    observer.registry.register(ObserverCollector(observer))
    observer.registry.register(ProgressCollector(progress))
