"""The settlement ledger: repeated orders and payouts collapse; each payout settles exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.types import TP

from tests.integration.test_pipeline import order
from tests.kafka import produce, produce_many, read_until, wait_for_stats
from tests.reviews import until
from tests.stores import each_store
from tests.unit.test_review_rules import payout
from worker.payouts.records import Payout
from worker.runtime.stores import key_partition
from worker.wire import encode


@each_store
async def test_redelivered_orders_settle_once_and_conflicts_are_reported(
    bootstrap, start_pipeline, table_store: str
) -> None:
    pipeline = await start_pipeline(table_store=table_store)
    topics = pipeline.topics
    first = [(b"s-1", order("o-1", "10.00")), (b"s-2", order("o-2", "20.00", seller="s-2"))]
    repeats = [(b"s-1", order("o-1", "10.00")), (b"s-1", order("o-1", "10.00"))]
    conflict = [(b"s-2", order("o-2", "25.00", seller="s-2"))]  # same order id, other amount

    await produce(bootstrap, topics.orders.get_topic_name(), first + repeats + conflict)

    approved = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 5)
    assert len({p["payout_id"] for p in approved}) == 2  # repeats reach the topic, one id each
    [letter] = await read_until(bootstrap, topics.dead_letters.get_topic_name(), bool)
    assert letter["reason"] == "conflicting_duplicate"
    assert letter["source_topic"] == topics.payouts_approved.get_topic_name()
    stats = await wait_for_stats(pipeline.app.conf.web_port, lambda s: s["ledger"]["conflicts"] == 1)
    ledger = stats["ledger"]
    assert ledger == {
        "settled": 2,
        "by_state": {"approved": {"EUR": {"count": 2, "net": "28.53"}}},  # 9.41 + 19.12
        "duplicates_collapsed": 2,
        "conflicts": 1,
    }


async def test_table_recovery_reads_a_changelog_to_its_very_end(bootstrap, start_pipeline):
    # Faust recovers a table up to `consumer.highwaters()`. Tansu 0.6 answers ListOffsets with the
    # base offset of the last record batch, so a recovery stopped short of it and the ledger forgot
    # settled payouts; the worker's consumer reads the high watermark of a fetch response too.
    pipeline = await start_pipeline()
    app = pipeline.app
    changelog = app.topic(f"{app.conf.id}-recovery-probe", partitions=1, value_serializer="raw")
    await changelog.maybe_declare()
    name = changelog.get_topic_name()
    await produce_many(bootstrap, name, [(b"k", b"v")] * 5)  # one batch
    await produce_many(bootstrap, name, [(b"k", b"v")] * 7)  # and another: the end is offset 12
    tp = TP(name, 0)

    assert await app.consumer.highwaters(tp) == {tp: 12}


@pytest.mark.parametrize("list_offsets", ["answers", "fails"])
async def test_a_partition_never_committed_is_read_from_its_beginning_again_after_a_rebalance(
    bootstrap, start_pipeline, monkeypatch, list_offsets: str
) -> None:
    # In a rebalance, Faust throws away what a fetch returns while flow is stopped, then seeks every
    # partition back to the group's committed offset before it resumes. A partition the group had
    # never committed stayed where the fetch had got to, past what was thrown away: those payouts
    # were never settled (and, on review-decisions, those decisions never applied).
    pipeline = await start_pipeline()
    app, consumer = pipeline.app, pipeline.app.consumer
    if list_offsets == "fails":  # the broker does not say where the partition begins: seek there anyway

        async def timed_out(*partitions: TP) -> None:
            raise KafkaTimeoutError()

        monkeypatch.setattr(consumer, "earliest_offsets", timed_out)
    await wait_for_stats(app.conf.web_port, lambda s: s["readiness"]["ready"])
    rejected = pipeline.topics.payouts_rejected.get_topic_name()
    partition = key_partition(b"s-1", app.conf.topic_partitions)
    payouts = [payout(f"po-never-committed-{n}", "10.00") for n in range(3)]

    app.flow_control.suspend()  # a rebalance starts
    consumer.stop_flow()
    await produce(bootstrap, rejected, [(b"s-1", encode(p)) for p in payouts])
    await consumer.seek(TP(rejected, partition), 3)  # the fetch got past them: they were thrown away
    await consumer.perform_seek()  # as Faust does before it resumes
    app.flow_control.resume()
    consumer.resume_flow()

    ledger = f"{app.conf.id}-settlement-ledger-changelog"
    entries = await read_until(bootstrap, ledger, lambda v: len(v) >= 3, timeout=30)
    assert {e["payout_id"] for e in entries} == {p.payout_id for p in payouts}
    assert {e["state"] for e in entries} == {"rejected"}


@each_store
async def test_a_backlog_settles_with_its_table_writes_sent_as_record_batches(
    bootstrap, start_pipeline, table_store: str
) -> None:
    # Faust's producer buffer hands the client one changelog record at a time (a third of a settling
    # worker's time): a stream batch's table writes go as record batches instead. Nothing of a
    # stream stage may reach a changelog one message at a time, every entry must arrive, and on
    # RocksDB each partition must remember the changelog offset it holds, as Faust's own send did.
    pipeline = await start_pipeline(table_store=table_store)
    app = pipeline.app
    await wait_for_stats(app.conf.web_port, lambda s: s["readiness"]["ready"])
    client = app.producer._ensure_producer()
    singly: Counter[str] = Counter()
    send = client.send

    async def counted(topic: str, *args: Any, **kwargs: Any) -> Any:  # a spy: the real send runs
        singly[topic] += 1
        return await send(topic, *args, **kwargs)

    client.send = counted
    count = 400
    sellers = [f"s-{n % 7}".encode() for n in range(count)]
    payouts = [(seller, _of_seller(payout(f"po-b-{n}", "10.00"), seller)) for n, seller in enumerate(sellers)]
    await produce_many(bootstrap, pipeline.topics.payouts_approved.get_topic_name(), payouts)

    await wait_for_stats(app.conf.web_port, lambda s: s["ledger"]["settled"] == count, timeout=60)
    ledger = f"{app.conf.id}-settlement-ledger-changelog"
    entries = await read_until(bootstrap, ledger, lambda v: len(v) >= count)
    assert sorted(e["payout_id"] for e in entries) == sorted(f"po-b-{n}" for n in range(count))
    assert not [topic for topic in singly if topic.endswith("-changelog")], singly
    if table_store == "rocksdb://":
        table = app.tables["settlement-ledger"]
        ends = await app.consumer.highwaters(*(TP(ledger, p) for p in range(app.conf.topic_partitions)))
        expected = {tp.partition: end - 1 for tp, end in ends.items() if end}

        async def persisted() -> dict[int, int | None]:
            return {p: table.data.persisted_offset(TP(ledger, p)) for p in expected}

        await until(persisted, lambda held: held == expected, timeout=10)


def _of_seller(entry: Payout, seller: bytes) -> bytes:
    return encode({**orjson.loads(encode(entry)), "seller_id": seller.decode()})


async def test_a_backlog_reaches_settlement_without_tasks_per_record(bootstrap, start_pipeline):
    # Faust's fetch loop hands each record to its channels through four futures (three of them cancelled
    # again): on a busy worker that capped the stream stages at about 1,100 records a second, and they
    # fell behind 1,000 orders a second (docs/performance.md). The worker's loop hands them over directly.
    pipeline = await start_pipeline()
    port, count = pipeline.app.conf.web_port, 1000
    await wait_for_stats(port, lambda s: s["ledger"]["settled"] == 0)
    payouts = [payout(f"po-{n}", "10.00") for n in range(count)]
    loop = asyncio.get_running_loop()
    created = 0

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)  # type: ignore[arg-type]
    try:
        await produce_many(
            bootstrap,
            pipeline.topics.payouts_approved.get_topic_name(),
            [(b"s-1", encode(p)) for p in payouts],
        )
        await wait_for_stats(port, lambda s: s["ledger"]["settled"] == count)
    finally:
        loop.set_task_factory(None)

    assert created < count, f"{created} tasks for {count} records"
