"""Start a stage on the engine it asks for (see `worker.runtime.stage`)."""

from __future__ import annotations

from typing import Any

from faust.types import AgentT

from worker.app import PipelineApp
from worker.batches import BatchAgent
from worker.logs import Redact
from worker.publish import Publisher
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.stage import Engine, ErrorPolicy, Runner, Stage
from worker.runtime.streams import stream_agent


def start_stage(
    app: PipelineApp,
    stage: Stage[Any],
    *,
    publisher: Publisher,
    policy: ErrorPolicy,
    observer: Observer,
    halts: Halts,
) -> AgentT[Any] | BatchAgent:
    """Run `stage` in `app`: a batch agent or a Faust agent, with the runtime's rules around it."""
    runner = Runner(stage, policy, observer, Redact(app.secrets).mask)
    if stage.engine is Engine.BATCH:
        agent = BatchAgent(app, runner, publisher, halts)
        app.start_with_agents(agent)
        return agent
    return stream_agent(app, runner, publisher, halts)
