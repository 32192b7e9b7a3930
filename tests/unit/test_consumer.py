"""The worker's Faust consumer never commits past a message that was not acked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from faust.transport.consumer import ConsumerMessage
from faust.types import TP, Message

from worker.runtime.app import create_app
from worker.settings import Settings

TP0 = TP("payouts-approved", 0)


@pytest.fixture
def consumer(make_settings: Callable[..., Settings]):  # type: ignore[no-untyped-def]
    app = create_app(make_settings().with_embedded_broker("127.0.0.1:1"))
    return app.consumer  # created, not started: no broker needed


def acked(consumer, committed: int, offsets: list[int]) -> None:  # type: ignore[no-untyped-def]
    consumer._committed_offset[TP0] = committed
    consumer._acked[TP0] = list(offsets)
    consumer._acked_index[TP0] = set(offsets)


def test_acked_messages_right_after_the_committed_offset_are_committed(consumer) -> None:  # type: ignore[no-untyped-def]
    acked(consumer, committed=500, offsets=[500, 501, 502, 504])
    assert consumer._new_offset(TP0) == 503  # up to the first hole


def test_a_single_unacked_message_at_the_committed_offset_holds_the_commit(consumer) -> None:  # type: ignore[no-untyped-def]
    # Faust 0.15.3 would answer 503 here, committing over offset 500 which nobody processed.
    acked(consumer, committed=500, offsets=[501, 502])
    assert consumer._new_offset(TP0) is None
    assert consumer._refetch == {TP0: 500}  # no stream holds it: the next fetch starts from it again


def test_a_longer_hole_holds_the_commit_too(consumer) -> None:  # type: ignore[no-untyped-def]
    acked(consumer, committed=500, offsets=[503, 504])
    assert consumer._new_offset(TP0) is None


def test_a_message_still_in_a_stream_is_waited_for_not_fetched_again(consumer) -> None:  # type: ignore[no-untyped-def]
    in_flight = Message(TP0.topic, 0, 500, 0.0, 0, None, b"k", b"v", None, tp=TP0)
    consumer._unacked_messages.add(in_flight)
    acked(consumer, committed=500, offsets=[501])
    assert consumer._new_offset(TP0) is None
    assert consumer._refetch == {}


def test_a_partition_never_committed_holds_the_commit_at_its_beginning(consumer) -> None:  # type: ignore[no-untyped-def]
    # Faust commits from the lowest acked offset when the group has no committed offset: here 2,
    # over offsets 0 and 1, which a stream skipped.
    consumer._start[TP0] = 0
    acked(consumer, committed=None, offsets=[2, 3])  # type: ignore[arg-type]
    assert consumer._new_offset(TP0) is None
    assert consumer._refetch == {TP0: 0}


def test_a_partition_never_committed_commits_from_its_beginning(consumer) -> None:  # type: ignore[no-untyped-def]
    consumer._start[TP0] = 0
    acked(consumer, committed=None, offsets=[0, 1, 2])  # type: ignore[arg-type]
    assert consumer._new_offset(TP0) == 3


async def test_the_streams_are_handed_at_most_500_fetched_records_at_a_time(consumer) -> None:  # type: ignore[no-untyped-def]
    # Faust's fetch loop takes every record the client holds at once (`max_poll_records` unset): with
    # settlement behind a backlog of 100,000 payouts, 55,000 decoded records were held at a time
    # (peak RSS 262 MB, 214 MB with the bound, settling no slower: docs/performance.md).
    client = consumer._thread._create_worker_consumer(consumer.transport)  # what `getmany` reads
    assert client._max_poll_records == 500


def test_what_the_stages_skipped_is_forgotten_once_the_commit_passed_it(consumer) -> None:  # type: ignore[no-untyped-def]
    # PROCESSING_ERRORS=stop: the offsets an operator skipped, per stage, are kept to go past them when
    # they are fetched again, not for ever.
    first, later = (ConsumerMessage(TP0.topic, 0, n, 0.0, 0, None, b"k", b"v", None) for n in (1, 7))
    consumer.pass_over("settlement", first)
    assert consumer.passed_over(first) and consumer.passed_over(first, "settlement")
    assert not consumer.passed_over(first, "seller-history") and not consumer.passed_over(later)

    consumer._committed_offset[TP0] = 5  # the commit passed offset 1
    consumer.pass_over("settlement", later)

    assert not consumer.passed_over(first) and consumer.passed_over(later, "settlement")


async def test_a_record_is_handed_over_directly_only_when_fausts_delivery_would_not_wait(consumer) -> None:  # type: ignore[no-untyped-def]
    # worker/runtime/fetchloop.py: otherwise it goes Faust's way, which a stop, a hand-over or a full stage
    # interrupts (a direct delivery that waited would hold the fetch loop through them).
    app = consumer.app
    stage = app.topic(TP0.topic)  # a stream stage's channel
    app.topics.add(stage)
    app.topics._update_tp_index({TP0})
    app.flow_control.resume()  # as Faust does once partitions are assigned
    assert consumer._can_hand_over(TP0)

    app.flow_control.suspend()  # a stop or a hand-over
    assert not consumer._can_hand_over(TP0)
    app.flow_control.resume()
    consumer.stop_flow()  # Faust's consumer, at a rebalance
    assert not consumer._can_hand_over(TP0)
    consumer.resume_flow()
    assert consumer._can_hand_over(TP0)

    while not stage.queue.full():  # the stage is behind by a whole buffer
        stage.queue.put_nowait(None)
    assert not consumer._can_hand_over(TP0)
    assert consumer._can_hand_over(TP("payouts-rejected", 0))  # another stage's partition still goes
