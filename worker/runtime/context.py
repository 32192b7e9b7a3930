"""The runtime as the features see it: a frozen `Context` for every `register`, and `start`, which
runs the composition root's list of stages and serves what every worker serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faust.types import AgentT

from worker.runtime import health, memory, metrics, otel, progress, replay, skip, stats
from worker.runtime.app import PipelineApp, create_app
from worker.runtime.batches import BatchAgent
from worker.runtime.halts import Halts
from worker.runtime.logs import Redact
from worker.runtime.observer import Observer
from worker.runtime.publish import Publisher
from worker.runtime.stage import Engine, ErrorPolicy, Runner, Stage
from worker.runtime.streams import stream_agent
from worker.runtime.topics import Topics
from worker.settings import Settings

#: A running stage: a batch agent, or the Faust agent of a stream stage.
Agent = AgentT[Any] | BatchAgent


@dataclass(frozen=True)
class Context:
    """What a feature registers itself with: the app, the settings, and the runtime's services."""

    app: PipelineApp
    settings: Settings
    topics: Topics
    publisher: Publisher
    observer: Observer
    halts: Halts


def context(settings: Settings) -> Context:
    """A new app for `settings`, with the runtime's services around it."""
    app = create_app(settings)
    topics = Topics(app)
    observer = Observer(dead_letter_topic=topics.dead_letters.get_topic_name())
    return Context(app, settings, topics, Publisher(app, topics.dead_letters, observer), observer, Halts())


def start(
    ctx: Context,
    stages: Sequence[Stage[Any]],
    summary: stats.Summary | None = None,
    replayable: Sequence[str] = (),
) -> dict[str, Agent]:
    """Run every stage with the runtime's rules, and serve `/healthz`, `/readyz`, `/metrics`, `/stats`,
    the skip view and the `skip` and `replay` commands (replay sends only to `replayable` topics); hand
    the heap's free pages back every MEMORY_TRIM_INTERVAL_S."""
    policy = ErrorPolicy(ctx.settings.processing_errors)
    mask, spans = Redact(ctx.settings.secrets).mask, otel.exporter()
    agents = {stage.name: _engine(ctx, Runner(stage, policy, ctx.observer, mask, spans)) for stage in stages}
    streams = [name for name, agent in agents.items() if not isinstance(agent, BatchAgent)]
    tracker = progress.register(ctx.app, ctx.settings.stall_timeout_s, ctx.halts, streams)
    for agent in agents.values():
        if isinstance(agent, BatchAgent):
            tracker.watch(agent)
    ctx.observer.section("readiness", tracker.readiness)
    health.register(ctx.app, tracker)
    metrics.register(ctx.app, ctx.observer, tracker)
    stats.register(ctx.app, ctx.topics, ctx.observer, summary)
    skip.register(ctx.app, ctx.publisher, ctx.halts, ctx.settings)
    replay.register(ctx.app, ctx.topics, replayable)
    memory.register(ctx.app, ctx.observer, ctx.settings.memory_trim_interval_s)
    return agents


def _engine(ctx: Context, runner: Runner) -> Agent:
    if runner.stage.engine is Engine.BATCH:
        agent = BatchAgent(ctx.app, runner, ctx.publisher, ctx.halts, ctx.observer)
        ctx.app.start_with_agents(agent)
        return agent
    return stream_agent(ctx.app, runner, ctx.publisher, ctx.halts, ctx.observer)
