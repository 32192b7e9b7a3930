"""GET /stats: what this worker consumed, produced and processed, as JSON.

Also logs a one-line summary every ten seconds (orders taken, outcomes, dead letters, what waits for
review), so the log shows the pipeline flowing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from faust import web
from faust.sensors import Monitor
from faust.types import AgentT

from worker.app import PipelineApp
from worker.batches import BatchAgent
from worker.stats import RateWindow, snapshot, summary_line
from worker.topics import Topics

logger = logging.getLogger(__name__)

#: How often the worker says, in one line, what it did.
SUMMARY_EVERY_S = 10.0


#: A named part of `/stats` that a feature contributes: called for every request, returns JSON data.
Section = Callable[[], Any]


def register(
    app: PipelineApp,
    topics: Topics,
    agents: list[AgentT[Any] | BatchAgent],
    sections: Mapping[str, Section] | None = None,
) -> None:
    """Add `/stats` (with the features' `sections`), the rate sampler and the log summary to `app`."""
    started, window = time.monotonic(), RateWindow()
    names = [topic.get_topic_name() for topic in topics.all()]
    dead = topics.dead_letters.get_topic_name()

    def current() -> dict[str, Any]:
        monitor = app.monitor
        document = snapshot(
            names,
            consumed=monitor.messages_received_by_topic,
            produced=monitor.messages_sent_by_topic,
            agents=_events_by_agent(monitor, agents),
            dead_letter_topic=dead,
            rate_per_s=window.rate(),
            uptime_s=time.monotonic() - started,
        )
        document.update({name: section() for name, section in (sections or {}).items()})
        return document

    @app.page("/stats")
    async def stats(view: web.View, request: web.Request) -> web.Response:
        """Pipeline statistics of this worker."""
        return view.json(current())

    @app.timer(1.0, name="stats-sampler")
    async def sample() -> None:
        window.add(time.monotonic(), app.monitor.events_total)

    last: list[tuple[float, dict[str, int]]] = [(started, {})]  # the last line's time and counts

    @app.timer(SUMMARY_EVERY_S, name="stats-summary")
    async def summary() -> None:
        at, now = time.monotonic(), counts()
        waiting = (sections or {}).get("reviews", dict)().get("pending")
        logger.info("%s", summary_line(last[0][1], now, at - last[0][0], waiting))
        last[:] = [(at, now)]

    def counts() -> dict[str, int]:
        monitor = app.monitor
        sent = monitor.messages_sent_by_topic
        return {
            "orders": monitor.messages_received_by_topic[topics.orders.get_topic_name()],
            "approved": sent[topics.payouts_approved.get_topic_name()],
            "review": sent[topics.payouts_review.get_topic_name()],
            "rejected": sent[topics.payouts_rejected.get_topic_name()],
            "dead_letters": sent[dead],
        }


def _events_by_agent(monitor: Monitor, agents: list[AgentT[Any] | BatchAgent]) -> dict[str, int]:
    """Faust's monitor counts events per stream; sum them per agent, by the topics it consumes."""
    by_topics: Counter[tuple[str, ...]] = Counter()
    for stream, label in monitor.stream_lookup.items():
        by_topics[_topics_of(stream.channel)] += monitor.events_by_stream[label]
    return {agent.name: by_topics[_topics_of(agent.channel)] for agent in agents}


def _topics_of(channel: object) -> tuple[str, ...]:
    return tuple(getattr(channel, "topics", ()))
