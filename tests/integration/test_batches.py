"""Batch agents on a real broker: partitions and order as a plain producer's, commits before hand-over."""

from __future__ import annotations

import asyncio
import time
import warnings

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from tests.integration.test_pipeline import order
from tests.kafka import produce, read_until
from tests.reviews import until
from worker.runtime.batches import BatchAgent
from worker.runtime.outbox import Outbox


async def read_all(bootstrap: str, topic: str, count: int, partitions: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of the first `count` records of `topic`, each partition in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[tuple[int, bytes, bytes]] = []
        deadline = time.monotonic() + 30
        while len(found) < count:
            assert time.monotonic() < deadline, f"{len(found)}/{count} records on {topic}"
            batch = await consumer.getmany(timeout_ms=500)
            found += [(r.partition, r.key, r.value) for rs in batch.values() for r in rs]
        return found
    finally:
        await consumer.stop()


async def test_an_outbox_lands_where_a_plain_producer_would_put_it_in_order(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    probe = pipeline.app.topic(f"{pipeline.app.conf.id}-probe", partitions=3, value_serializer="raw")
    await probe.maybe_declare()
    outbox = Outbox()
    for n in range(600):
        outbox.send(probe, f"{n}".encode(), key=f"s-{n % 37}")
    publisher = pipeline.agents["orders-to-payouts"].publisher  # type: ignore[union-attr]

    await (await publisher.publish(outbox)).confirmed()

    records = await read_all(bootstrap, probe.get_topic_name(), 600, 3)
    assert len(records) == 600
    for partition, key, _ in records:
        assert partition == DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2]), key
    by_key: dict[bytes, list[int]] = {}
    for _, key, value in records:
        by_key.setdefault(key, []).append(int(value))
    assert all(values == sorted(values) for values in by_key.values())  # each seller's order kept


async def test_a_stopping_worker_commits_what_it_delivered(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    with warnings.catch_warnings(action="ignore"):  # Faust warns that the setting was read already
        pipeline.app.conf.broker_commit_interval = 3600  # so that only the hand-over at stop commits
    topics, app_id = pipeline.topics, pipeline.app.conf.id
    await produce(
        bootstrap, topics.orders.get_topic_name(), [(b"s-1", order(f"o-{n}", "10.00")) for n in range(5)]
    )
    await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) == 5)

    await pipeline.app.stop()

    group = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{app_id}-orders-to-payouts")
    await group.start()  # not subscribed: reads the group's offsets without joining it
    try:
        orders = topics.orders.get_topic_name()
        committed = [await group.committed(TopicPartition(orders, p)) for p in range(3)]
    finally:
        await group.stop()
    assert sum(offset or 0 for offset in committed) == 5


async def test_a_stopped_batch_agent_asks_the_broker_nothing_and_leaves_no_connection_open(start_pipeline):
    # The progress timer reads every agent's end offsets, and the app stops it only after its agents:
    # a stopped aiokafka consumer asked anything opens a connection that nobody closes (CI saw its
    # read tasks left running after a restart test).
    pipeline = await start_pipeline()
    agent = pipeline.agents["orders-to-payouts"]
    assert isinstance(agent, BatchAgent)

    async def assigned() -> list[TP]:
        return agent.assigned()

    partitions = await until(assigned, bool)

    await agent.stop()

    assert agent.assigned() == []
    assert await agent.end_offsets(partitions) == {}
    connections = agent._client._client._conns  # type: ignore[union-attr]  # aiokafka's own
    assert [conn for conn in connections.values() if conn.connected()] == []


async def test_the_hot_stages_deliver_while_the_table_writes_wait_on_the_broker(bootstrap, start_pipeline):
    # aiokafka's producer sends one request per broker at a time: the batch stages' output waited
    # behind every table write of the stream stages (each hop +5 ms at p50 at 1,000 orders/s). Each
    # batch stage publishes through a producer of its own. Here the tables' producer (Faust's) has a
    # request that the broker does not answer, and orders must still become approved payouts.
    pipeline = await start_pipeline()
    sender = pipeline.app.producer._ensure_producer()._sender
    held, send = asyncio.Event(), sender._send_produce_req

    async def unanswered(node_id: int, batches: object) -> None:
        await held.wait()
        await send(node_id, batches)

    sender._send_produce_req = unanswered
    try:
        await produce(
            bootstrap,
            pipeline.topics.orders.get_topic_name(),
            [(b"s-1", order(f"o-{n}", "10.00")) for n in range(5)],
        )
        approved = await read_until(
            bootstrap, pipeline.topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 5
        )
        assert sorted(p["order_id"] for p in approved) == [f"o-{n}" for n in range(5)]
    finally:
        held.set()
