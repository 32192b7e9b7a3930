"""The stream engine on Faust's test context (no broker): how it cuts a backlog into batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from faust import Sensor
from faust.types import Message

from worker.runtime import context
from worker.runtime.context import Context
from worker.runtime.halts import Halts
from worker.runtime.observer import Observer
from worker.runtime.outbox import Outbox
from worker.runtime.stage import Engine, ErrorPolicy, Runner, Stage
from worker.runtime.streams import StreamEngine, stream_agent
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


class _StopsFlowAtTheFirstEvent(Sensor):
    """Stops flow as Faust's stop and hand-over do, once a stream has taken its first event."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app
        self.taken: list[Any] = []

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.taken.append(event)
        self.app.consumer.track_message(event.message)  # as Faust does for a topic's message
        if len(self.taken) == 1:
            self.app.flow_control.suspend()


async def test_events_a_stage_took_for_its_next_batch_are_dropped_when_flow_stops(ctx) -> None:
    # The stage takes the first event while two more are queued, so it waits for the rest of its
    # batch; flow stops, and the stream skips the queued two. Without the drop, the batch waited for
    # an event that never came (the stop waited STOP_WAIT_S for it), then was handled stale.
    handled: list[bytes | None] = []
    stage = Stage(
        "probe", ctx.topics.payouts_approved, lambda raw: raw, lambda value, out: handled.append(value),
        Engine.STREAM,
    )  # fmt: skip
    agent = stream_agent(ctx.app, Runner(stage, ErrorPolicy.DEAD_LETTER, Observer(), str), ctx.publisher,
                         Halts(), Observer())  # fmt: skip
    sensor = _StopsFlowAtTheFirstEvent(ctx.app)
    ctx.app.sensors.add(sensor)

    async with agent.test_context() as probe:
        for n in range(3):
            await probe.put(f"{n}".encode(), wait=False)
        deadline = time.monotonic() + 10
        while not (sensor.taken and probe.channel.queue.empty()):  # taken one, skipped two
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert handled == []  # the first is taken, its batch waits for the rest

        ctx.app.flow_control.clear()  # what Faust does next, at a stop or a hand-over
        ctx.app.flow_control.resume()  # and once the hand-over is done
        await probe.put(b"after", wait=False)
        while not handled:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

    assert handled == [b"after"]  # not the stale "0": it is fetched again


async def test_once_flow_stops_a_stop_waits_for_the_batches_being_handled_and_for_no_other(ctx) -> None:
    # Settlement and seller history both consume payouts-approved. When flow stops, Faust drops the
    # events still queued for a stage without acknowledging them: a message the other stage was done
    # with stayed in progress, and the stop waited STOP_WAIT_S for it (CI's failure).
    consumer = ctx.app.consumer
    shared = Message("payouts-approved", 0, 7, 0.0, 0, None, b"k", b"v", None)
    shared.incref(2)  # delivered to two stages
    consumer.track_message(shared)
    shared.ack(consumer)  # one is done with it; the other's copy is dropped when flow stops
    in_hand = Message("payouts-approved", 1, 3, 0.0, 0, None, b"k", b"v", None)
    consumer.track_message(in_hand)

    ctx.app.flow_control.suspend()
    with consumer.handling([in_hand]):
        waiting = asyncio.create_task(consumer.wait_empty())
        deadline = time.monotonic() + 2
        while shared in consumer.unacked:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert not waiting.done() and in_hand in consumer.unacked  # waits for the batch in hand
        consumer.ack(in_hand)  # the batch's acknowledgement (a release, since flow has stopped)
    await asyncio.wait_for(waiting, 2)  # as the batch ends, not after STOP_WAIT_S (4 s)

    assert not consumer.unacked and shared.acked and in_hand.acked


class _Event:
    """What the engine reads of a Faust event: its message (and a weak reference to it)."""

    def __init__(self, message: Message) -> None:
        self.message = message


class _Stream:
    """A stream's acknowledgement of an event: its message's, through the refcount."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    async def ack(self, event: _Event) -> bool:
        return event.message.ack(self.consumer)


class _DeadLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[Any, Any]] = []

    async def dead_letter(self, origin: Any, error: Any, **kwargs: Any) -> None:
        self.letters.append((origin, error))


def _two_stages_of_one_topic(
    ctx: Context, monkeypatch: pytest.MonkeyPatch, fails: set[str]
) -> tuple[Halts, dict[str, StreamEngine], dict[str, list[bytes | None]], list[Any]]:
    """Settlement and seller history as both consume payouts-approved, with one Halts; each stage in
    `fails` raises for the value b"bug". The consumer's seek and pause are recorded, not done."""
    consumer, halts, seeks = ctx.app.consumer, Halts(), []
    handled: dict[str, list[bytes | None]] = {}

    async def seek(tp: Any, offset: int) -> None:
        seeks.append((tp.partition, offset))

    monkeypatch.setattr(consumer, "seek", seek)
    monkeypatch.setattr(consumer, "pause_partitions", lambda tps: None)
    monkeypatch.setattr(consumer, "resume_partitions", lambda tps: None)
    engines = {}
    for name in ("settlement", "seller-history"):
        done = handled.setdefault(name, [])

        def handle(value: bytes | None, out: Outbox, name: str = name, done: list[Any] = done) -> None:
            if value == b"bug" and name in fails:
                raise KeyError("a bug in the rule")
            done.append(value)

        stage = Stage(name, ctx.topics.payouts_approved, lambda raw: raw, handle, Engine.STREAM)
        runner = Runner(stage, ErrorPolicy.STOP, Observer(), str)
        engines[name] = StreamEngine(ctx.app, runner, ctx.publisher, halts, Observer())
    return halts, engines, handled, seeks


def _delivered_to_two(ctx: Context, values: list[bytes]) -> list[_Event]:
    """Messages of payouts-approved[0], each delivered to two stages (as Faust's conductor does)."""
    consumer, events = ctx.app.consumer, []
    for offset, value in enumerate(values):
        message = Message(
            ctx.topics.payouts_approved.get_topic_name(), 0, offset, 0.0, 0, None, b"s-1", value, None,
            generation_id=ctx.app.consumer_generation_id,
        )  # fmt: skip
        message.incref(2)
        consumer.track_message(message)
        events.append(_Event(message))
    return events


async def test_a_stage_stopped_at_a_message_does_not_stop_another_stage_of_the_same_partition(
    ctx, monkeypatch
) -> None:
    # One Halts for every stage, by partition: once settlement stopped at o-bug, seller history
    # released every message of the partition it had not handled yet (o-bug included, and the ones
    # before it), and those were never processed there, nor committed (on the broker: the partition
    # went back to its start after the skip, and stopped at o-bug again).
    halts, engines, handled, seeks = _two_stages_of_one_topic(ctx, monkeypatch, fails={"settlement"})
    events = _delivered_to_two(ctx, [b"a", b"bug", b"b"])
    stream, consumer = _Stream(ctx.app.consumer), ctx.app.consumer

    await engines["settlement"].handle(stream, events)  # type: ignore[arg-type]
    await engines["seller-history"].handle(stream, events)  # type: ignore[arg-type]

    assert handled == {"settlement": [b"a"], "seller-history": [b"a", b"bug", b"b"]}
    [halt] = halts.describe()
    assert (halt["stage"], halt["offset"]) == ("settlement", 1)
    stopped = events[1].message
    assert not stopped.acked and stopped in consumer.unacked  # not committed: settlement is not past it
    letters = _DeadLetters()
    [skipped] = await halts.skip(halt["topic"], 0, 1, reason="known", by="me", publisher=letters)  # type: ignore[arg-type]
    assert skipped.stage == "settlement" and stopped.acked and seeks == [(0, 2)]  # b: fetched again


async def test_a_skipped_message_is_acknowledged_once_every_stage_that_got_it_is_done_with_it(
    ctx, monkeypatch
) -> None:
    # The skip acknowledged the message whatever its refcount: it could be committed before seller
    # history had handled its copy, and a crash then lost that payout for seller history.
    halts, engines, handled, _ = _two_stages_of_one_topic(ctx, monkeypatch, fails={"settlement"})
    events = _delivered_to_two(ctx, [b"a", b"bug"])
    stream, stopped = _Stream(ctx.app.consumer), events[1].message
    await engines["settlement"].handle(stream, events)  # type: ignore[arg-type]
    topic = halts.describe()[0]["topic"]

    await halts.skip(topic, 0, 1, reason="known", by="me", publisher=_DeadLetters())  # type: ignore[arg-type]

    assert not stopped.acked and stopped in ctx.app.consumer.unacked  # seller history has not handled it
    await engines["seller-history"].handle(stream, events)  # type: ignore[arg-type]
    assert stopped.acked and handled["seller-history"] == [b"a", b"bug"]


async def test_one_skip_gets_every_stage_stopped_at_the_message_past_it_and_then_it_is_acknowledged(
    ctx, monkeypatch
) -> None:
    # Both stages stopped at the same message: the second stop replaced the first (one skip moved one
    # stage, the other stayed stopped with no /readyz entry), and the skip acknowledged the message
    # whatever its refcount.
    halts, engines, handled, seeks = _two_stages_of_one_topic(
        ctx, monkeypatch, fails={"settlement", "seller-history"}
    )
    events = _delivered_to_two(ctx, [b"a", b"bug"])
    stream, stopped = _Stream(ctx.app.consumer), events[1].message

    for engine in engines.values():
        await engine.handle(stream, events)  # type: ignore[arg-type]

    assert [(h["stage"], h["offset"]) for h in halts.describe()] == [("seller-history", 1), ("settlement", 1)]
    letters = _DeadLetters()
    with pytest.raises(ValueError, match="stopped at offset 1, not 0"):
        await halts.skip(halts.describe()[0]["topic"], 0, 0, reason="known", by="me", publisher=letters)  # type: ignore[arg-type]
    skipped = await halts.skip(halts.describe()[0]["topic"], 0, 1, reason="known", by="me", publisher=letters)  # type: ignore[arg-type]

    assert [halt.stage for halt in skipped] == ["seller-history", "settlement"] and not halts.describe()
    [(_, error)] = letters.letters  # one dead letter, with each stage's error
    bug = "KeyError: 'a bug in the rule'"
    assert error.detail == f"stage seller-history: {bug}; stage settlement: {bug}; skipped by me: known"
    assert stopped.acked and stopped.refcount == 0 and seeks == [(0, 2), (0, 2)]
    assert handled == {"settlement": [b"a"], "seller-history": [b"a"]}


async def test_a_stop_does_not_wait_for_the_message_a_stage_stopped_at(ctx, monkeypatch) -> None:
    # The stopped message stays unacknowledged (so nothing from it on is committed): once flow stops,
    # the consumer's wait releases it, as it does every message no batch is handling.
    halts, engines, _, _ = _two_stages_of_one_topic(ctx, monkeypatch, fails={"settlement"})
    events = _delivered_to_two(ctx, [b"bug"])
    for engine in engines.values():
        await engine.handle(_Stream(ctx.app.consumer), events)  # type: ignore[arg-type]
    assert halts.describe() and not events[0].message.acked

    ctx.app.flow_control.suspend()
    started = time.monotonic()
    await asyncio.wait_for(ctx.app.consumer.wait_empty(), 3)

    assert time.monotonic() - started < 1 and events[0].message.acked and not ctx.app.consumer.unacked
