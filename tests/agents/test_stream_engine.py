"""The stream engine on Faust's test context (no broker): how it cuts a backlog into batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from faust import Sensor
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage

from worker.runtime import context
from worker.runtime.context import Context
from worker.runtime.halts import Halt, Halts
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

    def offsets(self) -> list[int]:
        return [origin.offset for origin, _ in self.letters]


class _Published:
    """What the stages publish (their dead letters, here), as if the broker confirmed it at once."""

    def __init__(self) -> None:
        self.rejected: list[tuple[int, str]] = []

    async def publish(self, out: Outbox) -> _Published:
        self.rejected += [(message.offset, error.detail) for message, error, _ in out.rejected]
        return self

    async def confirmed(self) -> None:
        return None


class _Shared:
    """Faust's one consumer, as the stream stages share it, running as in a worker (flow on, acks on:
    a final ack makes the message committable). Only its seek is recorded, not done (no broker), and
    its assignment is `assigned`; pausing and resuming are Faust's own."""

    def __init__(self, ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
        self.consumer, self.tp = ctx.app.consumer, TP(ctx.topics.payouts_approved.get_topic_name(), 0)
        self.seeks: list[int] = []
        self.assigned = {self.tp}
        ctx.app.flow_control.resume()
        monkeypatch.setattr(ctx.app.topics, "acks_enabled_for", lambda topic: True)
        monkeypatch.setattr(self.consumer, "seek", self.seek)
        monkeypatch.setattr(self.consumer, "assignment", lambda: set(self.assigned))
        self.consumer._committed_offset[self.tp] = 0

    async def seek(self, tp: TP, offset: int) -> None:
        assert tp == self.tp
        self.seeks.append(offset)

    def paused(self) -> bool:
        return self.tp in self.consumer._paused_partitions

    def committed(self) -> int:
        """Where the partition is committed after a commit now (what Faust's commit stores)."""
        offset = self.consumer._new_offset(self.tp)
        if offset is not None:
            self.consumer._committed_offset[self.tp] = offset
        return int(self.consumer._committed_offset[self.tp])


def _two_stages_of_one_topic(
    ctx: Context, fails: dict[str, bytes]
) -> tuple[Halts, dict[str, StreamEngine], dict[str, list[bytes | None]]]:
    """Settlement and seller history as both consume payouts-approved, with one Halts; each stage in
    `fails` raises for its value there."""
    halts, handled, engines = Halts(), {}, {}
    for name in ("settlement", "seller-history"):
        done = handled.setdefault(name, [])

        def handle(value: bytes | None, out: Outbox, name: str = name, done: list[Any] = done) -> None:
            if value == fails.get(name):
                raise KeyError(f"a bug in {name}")
            done.append(value)

        stage = Stage(name, ctx.topics.payouts_approved, lambda raw: raw, handle, Engine.STREAM)
        runner = Runner(stage, ErrorPolicy.STOP, Observer(), str)
        engines[name] = StreamEngine(ctx.app, runner, ctx.publisher, halts, Observer())
    return halts, engines, handled


def _delivered_to_two(ctx: Context, values: list[bytes], start: int = 0) -> list[_Event]:
    """Messages of payouts-approved[0] from offset `start`, each delivered to two stages (as Faust's
    conductor does)."""
    consumer, events = ctx.app.consumer, []
    for offset, value in enumerate(values, start):
        message = ConsumerMessage(
            ctx.topics.payouts_approved.get_topic_name(), 0, offset, 0.0, 0, None, b"s-1", value, None,
            generation_id=ctx.app.consumer_generation_id,
        )  # fmt: skip
        message.incref(2)
        consumer.track_message(message)
        events.append(_Event(message))
    return events


async def _settlement_stopped_at_the_bug(
    ctx: Context, shared: _Shared, values: list[bytes]
) -> tuple[Halts, dict[str, StreamEngine], dict[str, list[bytes | None]], list[_Event]]:
    """Settlement and seller history on payouts-approved[0], `values` delivered to both; settlement,
    first to handle them, stops at b"bug"."""
    halts, engines, handled = _two_stages_of_one_topic(ctx, fails={"settlement": b"bug"})
    events = _delivered_to_two(ctx, values)
    await engines["settlement"].handle(_Stream(shared.consumer), events)  # type: ignore[arg-type]
    return halts, engines, handled, events


async def _both_handle(engines: dict[str, StreamEngine], events: list[_Event], consumer: Any) -> None:
    for engine in engines.values():
        await engine.handle(_Stream(consumer), events)  # type: ignore[arg-type]


async def _skip(halts: Halts, shared: _Shared, offset: int, letters: _DeadLetters) -> list[Any]:
    return await halts.skip(shared.tp.topic, 0, offset, reason="known", by="me", publisher=letters)  # type: ignore[arg-type]


async def test_a_stage_stopped_at_a_message_does_not_stop_another_stage_of_the_same_partition(
    ctx, monkeypatch
) -> None:
    # One Halts for every stage, by partition: once settlement stopped at o-bug, seller history
    # released every message of the partition it had not handled yet (o-bug included, and the ones
    # before it), and those were never processed there, nor committed (on the broker: the partition
    # went back to its start after the skip, and stopped at o-bug again).
    shared = _Shared(ctx, monkeypatch)
    halts, engines, handled = _two_stages_of_one_topic(ctx, fails={"settlement": b"bug"})
    events = _delivered_to_two(ctx, [b"a", b"bug", b"b"])

    await _both_handle(engines, events, shared.consumer)

    assert handled == {"settlement": [b"a"], "seller-history": [b"a", b"bug", b"b"]}
    [halt] = halts.describe()
    assert (halt["stage"], halt["offset"]) == ("settlement", 1) and shared.paused()
    assert shared.committed() == 1  # not past the stopped message
    [skipped] = await _skip(halts, shared, 1, _DeadLetters())
    assert skipped.stage == "settlement" and shared.seeks == [2] and not shared.paused()  # b: fetched again
    assert shared.committed() == 2


async def test_a_skipped_message_is_acknowledged_once_every_stage_that_got_it_is_done_with_it(
    ctx, monkeypatch
) -> None:
    # The skip acknowledged the message whatever its refcount: it could be committed before seller
    # history had handled its copy, and a crash then lost that payout for seller history.
    shared = _Shared(ctx, monkeypatch)
    halts, engines, handled, events = await _settlement_stopped_at_the_bug(ctx, shared, [b"a", b"bug"])

    await _skip(halts, shared, 1, _DeadLetters())

    assert shared.committed() == 0  # nor @0: seller history has handled neither
    await engines["seller-history"].handle(_Stream(shared.consumer), events)  # type: ignore[arg-type]
    assert shared.committed() == 2 and handled["seller-history"] == [b"a", b"bug"]


async def test_one_skip_gets_every_stage_stopped_at_the_message_past_it_and_then_it_is_acknowledged(
    ctx, monkeypatch
) -> None:
    # Both stages stopped at the same message: the second stop replaced the first (one skip moved one
    # stage, the other stayed stopped with no /readyz entry), and the skip acknowledged the message
    # whatever its refcount. Each stage's resume then sought and resumed the shared consumer.
    shared = _Shared(ctx, monkeypatch)
    halts, engines, handled = _two_stages_of_one_topic(
        ctx, fails={"settlement": b"bug", "seller-history": b"bug"}
    )
    events = _delivered_to_two(ctx, [b"a", b"bug"])

    await _both_handle(engines, events, shared.consumer)

    assert [(h["stage"], h["offset"]) for h in halts.describe()] == [("seller-history", 1), ("settlement", 1)]
    letters = _DeadLetters()
    with pytest.raises(ValueError, match="stopped at offset 1, not 0"):
        await _skip(halts, shared, 0, letters)
    skipped = await _skip(halts, shared, 1, letters)

    assert [halt.stage for halt in skipped] == ["seller-history", "settlement"] and not halts.describe()
    [(_, error)] = letters.letters  # one dead letter, with each stage's error
    assert error.detail == (
        "stage seller-history: KeyError: 'a bug in seller-history'; "
        "stage settlement: KeyError: 'a bug in settlement'; skipped by me: known"
    )
    assert shared.committed() == 2 and shared.seeks == [2] and not shared.paused()
    assert handled == {"settlement": [b"a"], "seller-history": [b"a"]}


@pytest.mark.parametrize("order", [(3, 1), (1, 3)], ids=["3-then-1", "1-then-3"])
async def test_stages_stopped_at_different_messages_resume_the_partition_after_the_last_skip(
    ctx, monkeypatch, order
) -> None:
    # Seller history stopped at @1, settlement at @3. Each stage's skip sought and resumed the shared
    # consumer: the first skip set the partition flowing while the other stage was still stopped, the
    # second sought it back to @2, and settlement met @3 (skipped) again: stopped again, a second dead
    # letter.
    shared = _Shared(ctx, monkeypatch)
    halts, engines, handled = _two_stages_of_one_topic(
        ctx, fails={"seller-history": b"A", "settlement": b"B"}
    )
    await _both_handle(engines, _delivered_to_two(ctx, [b"a", b"A", b"c", b"B", b"d"]), shared.consumer)
    assert [(h["stage"], h["offset"]) for h in halts.describe()] == [("seller-history", 1), ("settlement", 3)]
    letters = _DeadLetters()

    first, last = order
    await _skip(halts, shared, first, letters)
    assert shared.paused() and shared.seeks == [] and len(halts.describe()) == 1  # the other is stopped
    await _skip(halts, shared, last, letters)
    assert not shared.paused() and shared.seeks == [2]  # seller history left @2 behind
    await _both_handle(engines, _delivered_to_two(ctx, [b"c", b"B", b"d"], start=2), shared.consumer)

    assert not halts.describe() and letters.offsets() == [first, last]  # one dead letter each
    assert handled == {
        "settlement": [b"a", b"A", b"c", b"c", b"d"],
        "seller-history": [b"a", b"c", b"B", b"d"],
    }
    assert shared.committed() == 5


async def test_a_stage_failing_on_a_message_skipped_before_it_got_there_dead_letters_it(
    ctx, monkeypatch, caplog
) -> None:
    # Settlement stopped and was skipped while seller history, behind, had not reached the message: it
    # then stopped at it too, and needed a second skip. Then it went past it with no record of its own
    # error, and its log line said it stopped.
    shared, published = _Shared(ctx, monkeypatch), _Published()
    monkeypatch.setattr(ctx.publisher, "publish", published.publish)
    halts, engines, handled = _two_stages_of_one_topic(
        ctx, fails={"settlement": b"bug", "seller-history": b"bug"}
    )
    events = _delivered_to_two(ctx, [b"a", b"bug", b"b"])
    await engines["settlement"].handle(_Stream(shared.consumer), events)  # type: ignore[arg-type]
    letters = _DeadLetters()
    await _skip(halts, shared, 1, letters)

    await engines["seller-history"].handle(_Stream(shared.consumer), events)  # type: ignore[arg-type]

    assert not halts.describe() and letters.offsets() == [1] and not shared.paused()
    assert published.rejected == [(1, "stage seller-history: KeyError: 'a bug in seller-history'")]
    [logged] = [r.getMessage() for r in caplog.records if "stage seller-history" in r.getMessage()]
    assert logged.endswith("(dead-lettered)"), logged
    assert shared.committed() == 2  # @2: settlement released its copy, it is fetched again
    await _both_handle(engines, _delivered_to_two(ctx, [b"b"], start=2), shared.consumer)
    assert shared.committed() == 3 and handled == {
        "settlement": [b"a", b"b"],
        "seller-history": [b"a", b"b", b"b"],
    }


async def test_a_skip_whose_seek_fails_can_be_skipped_again_and_acknowledges_its_copy_once(
    ctx, monkeypatch
) -> None:
    # Each skip acknowledged the stage's copy again: a retry after a failure would give the message its
    # final acknowledgement before the other stage had handled its copy.
    shared = _Shared(ctx, monkeypatch)
    halts, engines, _, events = await _settlement_stopped_at_the_bug(ctx, shared, [b"a", b"bug"])
    letters, seek = _DeadLetters(), shared.seek

    async def fails_once(tp: TP, offset: int) -> None:
        monkeypatch.setattr(shared.consumer, "seek", seek)
        raise KafkaConnectionError("the broker is away")

    monkeypatch.setattr(shared.consumer, "seek", fails_once)
    with pytest.raises(KafkaConnectionError):
        await _skip(halts, shared, 1, letters)
    assert [h["stage"] for h in halts.describe()] == ["settlement"] and shared.paused()  # still stopped
    await _skip(halts, shared, 1, letters)

    assert not halts.describe() and not shared.paused() and shared.seeks == [2]
    assert events[1].message.refcount == 1 and shared.committed() == 0  # seller history's copy
    await engines["seller-history"].handle(_Stream(shared.consumer), events)  # type: ignore[arg-type]
    assert shared.committed() == 2


async def test_a_skip_of_a_partition_revoked_meanwhile_leaves_it_to_its_next_owner(ctx, monkeypatch) -> None:
    # The revocation dropped the stop while the dead letter was on its way; the seek then failed (no
    # current assignment) and the skip put the stop back: /readyz answered 503 until a restart.
    shared = _Shared(ctx, monkeypatch)
    halts, *_ = await _settlement_stopped_at_the_bug(ctx, shared, [b"bug"])

    class _RevokedMeanwhile(_DeadLetters):
        async def dead_letter(self, origin: Any, error: Any, **kwargs: Any) -> None:
            await super().dead_letter(origin, error, **kwargs)
            shared.assigned.clear()
            halts.drop([shared.tp], ["settlement", "seller-history"])

    await _skip(halts, shared, 0, _RevokedMeanwhile())

    assert not halts.describe() and shared.seeks == []
    with pytest.raises(LookupError):
        await _skip(halts, shared, 0, _DeadLetters())


async def test_the_stops_of_a_revoked_partition_are_dropped_for_the_stages_of_that_consumer_only(ctx) -> None:
    # A batch stage's revocation (its own group) dropped a stream stage's stop on the same partition,
    # which then stayed paused with no /readyz entry, and could not be skipped.
    halts, [message] = Halts(), [event.message for event in _delivered_to_two(ctx, [b"bug"])]

    async def resume() -> None:
        raise AssertionError("not skipped")

    for stage in ("settlement", "a-batch-stage"):
        halts.add(Halt(stage, message, "KeyError", datetime.now(UTC), resume))
    halts.drop([(message.topic, 0)], ["a-batch-stage"])

    assert [h["stage"] for h in halts.describe()] == ["settlement"]


async def test_a_stop_does_not_wait_for_the_message_a_stage_stopped_at(ctx, monkeypatch) -> None:
    # The stopped message stays unacknowledged (so nothing from it on is committed): once flow stops,
    # the consumer's wait releases it, as it does every message no batch is handling.
    shared = _Shared(ctx, monkeypatch)
    halts, engines, _ = _two_stages_of_one_topic(ctx, fails={"settlement": b"bug"})
    events = _delivered_to_two(ctx, [b"bug"])
    await _both_handle(engines, events, shared.consumer)
    assert halts.describe() and not events[0].message.acked

    ctx.app.flow_control.suspend()
    started = time.monotonic()
    await asyncio.wait_for(ctx.app.consumer.wait_empty(), 3)

    assert time.monotonic() - started < 1 and events[0].message.acked and not ctx.app.consumer.unacked
