"""GET /stats: what this worker's stages took, what the broker confirmed, and the features' sections.

Every number comes from the runtime's observer, the same one `/metrics` reads. A line every ten
seconds says in words what happened since the last one (`Summary`, written by the composition root).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from faust import web

from worker.runtime.app import PipelineApp
from worker.runtime.observer import Observer
from worker.runtime.topics import Topics

logger = logging.getLogger(__name__)

#: How often the worker says, in one line, what it did.
SUMMARY_EVERY_S = 10.0


@dataclass(frozen=True)
class Counts:
    """The observer's counts at one moment: what a summary line compares with the line before."""

    consumed: Counter[str]  #: per topic
    outcomes: Counter[str]  #: per outcome the stages named
    dead_letters: int

    @classmethod
    def of(cls, observer: Observer) -> Counts:
        """The counts now."""
        return cls(
            Counter(observer.consumed), Counter(observer.outcomes), sum(observer.dead_letters.values())
        )

    def since(self, before: Counts) -> Counts:
        """What happened between `before` and these counts."""
        return Counts(
            self.consumed - before.consumed,
            self.outcomes - before.outcomes,
            self.dead_letters - before.dead_letters,
        )


#: Says in words what `Counts` (since the last line) mean, over that many seconds.
Summary = Callable[[Counts, float], str]


def register(app: PipelineApp, topics: Topics, observer: Observer, summary: Summary | None) -> None:
    """Add `/stats`, its rate sampler and the summary line every SUMMARY_EVERY_S to `app`."""
    started, window = time.monotonic(), RateWindow()

    def current() -> dict[str, Any]:
        names = [topic.get_topic_name() for topic in topics.all()]
        document = snapshot(
            names,
            consumed=observer.consumed,
            produced=observer.produced,
            agents=observer.handled,
            dead_letters=sum(observer.dead_letters.values()),
            rate_per_s=window.rate(),
            uptime_s=time.monotonic() - started,
        )
        document["processing_errors"] = dict(observer.processing_errors)
        document["batches"] = dict(observer.batches)
        document.update({name: section() for name, section in observer.sections.items()})
        return document

    @app.page("/stats")
    async def stats(view: web.View, request: web.Request) -> web.Response:
        """Pipeline statistics of this worker."""
        return view.json(current())

    @app.timer(1.0, name="stats-sampler")
    async def sample() -> None:
        window.add(time.monotonic(), sum(observer.handled.values()))

    last = [(started, Counts.of(observer))]  # the last line's time and counts

    @app.timer(SUMMARY_EVERY_S, name="stats-summary")
    async def say() -> None:
        at, now = time.monotonic(), Counts.of(observer)
        if summary is not None:
            logger.info("%s", summary(now.since(last[0][1]), at - last[0][0]))
        last[:] = [(at, now)]


class RateWindow:
    """Events per second over the last `span` seconds, from samples of a running total."""

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, total: int) -> None:
        """Record that `total` events had happened by monotonic time `now`."""
        self._samples.append((now, total))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.span:
            self._samples.popleft()

    def rate(self) -> float:
        """Events per second between the oldest and newest sample in the window."""
        if len(self._samples) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0


def snapshot(
    topics: Iterable[str],
    consumed: Mapping[str, int],
    produced: Mapping[str, int],
    agents: Mapping[str, int],
    dead_letters: int,
    rate_per_s: float,
    uptime_s: float,
) -> dict[str, Any]:
    """The `/stats` document: per topic, per agent, dead letters, recent rate and uptime."""
    return {
        "topics": {
            name: {"consumed": consumed.get(name, 0), "produced": produced.get(name, 0)} for name in topics
        },
        "agents": dict(agents),
        "dead_letters": dead_letters,
        "rate_per_s": round(rate_per_s, 2),
        "uptime_s": round(uptime_s, 1),
    }
