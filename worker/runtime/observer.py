"""What the stages did, counted once by the runtime, where `/stats` and `/metrics` both read it.

The engines count what each stage consumed; the publisher counts what the broker confirmed, by topic,
by dead-letter reason, and by outcome (a stage names the outcome of what it publishes, with the time
its story began, for the latency histogram). Features add their own numbers as named readings.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Histogram
from prometheus_client.registry import CollectorRegistry

#: Seconds; an order normally reaches its outcome in milliseconds, a backlog takes minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


@dataclass(frozen=True)
class Reading:
    """A number a feature contributes to `/metrics`, read at every scrape: one value, or one per
    combination of `labels` (a mapping from label values to numbers)."""

    name: str
    help: str
    read: Callable[[], float | Mapping[tuple[str, ...], float]]
    kind: str = "gauge"  #: "gauge" or "counter"
    labels: tuple[str, ...] = ()


@dataclass
class Observer:
    """The runtime's counts, and the features' readings and `/stats` sections."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    consumed: Counter[str] = field(default_factory=Counter)  #: messages taken by a stage, per topic
    produced: Counter[str] = field(default_factory=Counter)  #: messages the broker confirmed, per topic
    handled: Counter[str] = field(default_factory=Counter)  #: messages taken, per stage
    batches: Counter[str] = field(default_factory=Counter)  #: handler batches run, per stage
    dead_letters: Counter[str] = field(default_factory=Counter)  #: per reason
    processing_errors: Counter[str] = field(default_factory=Counter)  #: per stage
    outcomes: Counter[str] = field(default_factory=Counter)  #: per outcome a stage named
    readings: list[Reading] = field(default_factory=list)
    sections: dict[str, Callable[[], Any]] = field(default_factory=dict)
    dead_letter_topic: str = "dead-letters"

    def __post_init__(self) -> None:
        self.latency = Histogram(
            "streamline_order_to_outcome_seconds",
            "From an order's created_at to the delivery of its payout to a final topic",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[str, Any] = {}

    def took(self, stage: str, topic: str, count: int = 1) -> None:
        """Stage `stage` took `count` messages of `topic`."""
        self.consumed[topic] += count
        self.handled[stage] += count

    def batch(self, stage: str) -> None:
        """Stage `stage` ran a batch (what `took` counted since is handled together)."""
        self.batches[stage] += 1

    def delivered(self, messages: Iterable[Any]) -> None:
        """The broker confirmed `messages` (`worker.runtime.outbox.Message`)."""
        now = time.time()
        for message in messages:
            name = message.topic.get_topic_name()
            self.produced[name] += 1
            if message.note is None:
                continue
            if name == self.dead_letter_topic:
                self.dead_letters[message.note] += 1
                continue
            self.outcomes[message.note] += 1
            if message.since is not None:
                self._latency(message.note).observe(max(0.0, now - message.since.timestamp()))

    def _latency(self, outcome: str) -> Any:
        # Labelled children looked up once: `labels()` costs microseconds on every message otherwise.
        child = self._children.get(outcome)
        if child is None:
            child = self._children[outcome] = self.latency.labels(outcome)
        return child

    def processing_error(self, stage: str) -> None:
        """A handler of `stage` raised something other than `InvalidRecord`."""
        self.processing_errors[stage] += 1

    def reading(
        self,
        name: str,
        help: str,
        read: Callable[[], float | Mapping[tuple[str, ...], float]],
        *,
        kind: str = "gauge",
        labels: tuple[str, ...] = (),
    ) -> None:
        """Export `read()` on `/metrics` as `name` (a feature's number)."""
        self.readings.append(Reading(name, help, read, kind, labels))

    def section(self, name: str, read: Callable[[], Any]) -> None:
        """Add `read()` to `/stats` under `name` (a feature's part of the document)."""
        self.sections[name] = read
