"""The stream engine on Faust's test context (no broker): how it cuts a backlog into batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from worker.runtime import context
from worker.runtime.context import Context
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.outbox import Outbox
from worker.runtime.stage import Engine, ErrorPolicy, Runner, Stage
from worker.runtime.streams import stream_agent
from worker.settings import Settings


@pytest.fixture
def ctx(make_settings: Callable[..., Settings]) -> Context:
    return context.context(make_settings().with_embedded_broker("127.0.0.1:1"))


async def test_a_backlog_is_taken_in_batches_of_at_most_100_events(ctx) -> None:
    # A batch runs on the event loop without a break: with batches of up to 1,000 events the hot stages
    # waited behind it (p99 554 ms at 1,000 orders/s, 219 ms with batches of 100: docs/performance.md).
    batches: list[int] = []
    current: list[bytes | None] = []

    def handle(value: bytes | None, out: Outbox) -> None:
        current.append(value)

    def end_batch(out: Outbox) -> None:
        batches.append(len(current))
        current.clear()

    stage = Stage("probe", ctx.topics.payouts_approved, lambda raw: raw, handle, Engine.STREAM, end_batch)
    runner = Runner(stage, ErrorPolicy.DEAD_LETTER, Observer(), str)
    agent = stream_agent(ctx.app, runner, ctx.publisher, Halts(), Observer())
    backlog = 250

    async with agent.test_context() as probe:
        for n in range(backlog):  # all queued before the agent takes any
            await probe.put(f"{n}".encode(), wait=False)
        deadline = time.monotonic() + 10
        while sum(batches) < backlog:
            assert time.monotonic() < deadline, batches
            await asyncio.sleep(0.01)

    assert max(batches) == 100 and len(batches) >= 3, batches
