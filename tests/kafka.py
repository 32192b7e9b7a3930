"""Plain Kafka clients for tests: produce raw bytes and read topics, as a non-Faust service would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def produce(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None]], **client: Any
) -> None:
    """Write (key, value) pairs to `topic` with a plain aiokafka producer and wait for the acks.

    `client` takes further aiokafka arguments, such as `security_protocol` and `ssl_context`.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    *,
    timeout: float = 30.0,
    decode: Callable[[bytes | None], Any] = lambda raw: orjson.loads(raw) if raw else raw,
    **client: Any,
) -> list[Any]:
    """Read `topic` from the beginning until `done(values)` holds; fail after `timeout` seconds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client)
    await consumer.start()
    values: list[Any] = []
    try:
        partitions = await _partitions(consumer, topic, timeout)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while not done(values):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out after {timeout}s reading {topic}: got {values!r}"
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            values += [decode(record.value) for records in batch.values() for record in records]
    finally:
        await consumer.stop()
    return values


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in sorted(found)]
        assert time.monotonic() < deadline, f"topic {topic} does not exist"
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)


async def topic_partitions(bootstrap: str) -> dict[str, int]:
    """Every topic on the broker with its partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(await admin.list_topics())
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described}
