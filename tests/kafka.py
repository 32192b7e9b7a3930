"""Plain Kafka clients for tests: produce raw bytes and read topics, as a non-Faust service would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes | None]],
    headers: list[tuple[str, bytes]] | None = None,
    **client: Any,
) -> None:
    """Write (key, value) pairs to `topic` with a plain aiokafka producer and wait for the acks;
    each with `headers`, if given.

    `client` takes further aiokafka arguments, such as `security_protocol` and `ssl_context`.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **client)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


def _json(raw: bytes | None) -> Any:
    return orjson.loads(raw) if raw else raw


async def produce_many(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes | None]],
    *,
    chunk: int = 1000,
    every: float = 0.0,
) -> None:
    """Write many (key, value) pairs in chunks, in order, and wait for every ack; with `every`, one
    chunk at most every that many seconds (a steady stream)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for start in range(0, len(messages), chunk):
            sent = [await producer.send(topic, value=v, key=k) for k, v in messages[start : start + chunk]]
            await asyncio.gather(*sent, asyncio.sleep(every))
    finally:
        await producer.stop()


async def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    *,
    timeout: float = 30.0,
    decode: Callable[[bytes | None], Any] | None = _json,
    with_keys: bool = False,
    with_headers: bool = False,
    **client: Any,
) -> list[Any]:
    """Read `topic` from the beginning until `done(values)` holds; fail after `timeout` seconds.

    Values are decoded JSON, or raw bytes with `decode=None`; `(key, value)` pairs with `with_keys`,
    `(headers, value)` pairs with `with_headers` (headers as a dict). Extra keyword arguments go to
    the client (security settings).
    """
    decode = decode or (lambda raw: raw)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **client)
    await consumer.start()
    values: list[Any] = []
    try:
        await _from_the_beginning(consumer, topic, timeout)
        deadline = time.monotonic() + timeout
        while not done(values):
            left = deadline - time.monotonic()
            assert left > 0, (
                f"timed out after {timeout}s reading {topic}: got {len(values)}: {values!r:.2000}"
            )
            batch = await consumer.getmany(timeout_ms=int(min(left, 0.5) * 1000))
            records = [record for records in batch.values() for record in records]
            if with_headers:
                values += [(dict(record.headers), decode(record.value)) for record in records]
            elif with_keys:
                values += [(record.key, decode(record.value)) for record in records]
            else:
                values += [decode(record.value) for record in records]
    finally:
        await consumer.stop()
    return values


async def read_to_end(
    bootstrap: str, topic: str, *, timeout: float = 60.0, with_keys: bool = False
) -> list[Any]:
    """Every record of every partition of `topic`, from the beginning to the end as it is now.

    The end is each partition's high watermark as a fetch response gives it (right on every broker;
    Tansu 0.6 answers ListOffsets with the base offset of the last batch instead).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    values: list[Any] = []
    try:
        partitions = await _from_the_beginning(consumer, topic, timeout)
        deadline = time.monotonic() + timeout
        while not await _all_at_end(consumer, partitions):
            assert time.monotonic() < deadline, f"timed out after {timeout}s reading {topic} to its end"
            batch = await consumer.getmany(timeout_ms=500)
            records = [record for records in batch.values() for record in records]
            values += [(r.key, _json(r.value)) if with_keys else _json(r.value) for r in records]
    finally:
        await consumer.stop()
    return values


async def _from_the_beginning(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> list[TopicPartition]:
    """Assign `consumer` every partition of `topic`, each at its beginning."""
    partitions = await _partitions(consumer, topic, timeout)
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return partitions


def group_members(bootstrap: str, topic: str, group: str, count: int = 2) -> list[AIOKafkaConsumer]:
    """`count` consumers (not started) of `topic` in `group`, with a 6 s session (Kafka's minimum)."""
    return [
        AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            session_timeout_ms=6000,
            heartbeat_interval_ms=1000,
            enable_auto_commit=False,
        )
        for _ in range(count)
    ]


async def _all_at_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    for tp in partitions:
        high = consumer.highwater(tp)
        if high is None or await consumer.position(tp) < high:
            return False
    return True


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


async def wait_for_stats(
    port: int, ready: Callable[[dict[str, Any]], bool], timeout: float = 30
) -> dict[str, Any]:
    """Poll a worker's /stats until `ready(stats)` holds; fail after `timeout` seconds."""
    deadline, stats = time.monotonic() + timeout, None
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(f"http://127.0.0.1:{port}/stats") as response:
                stats = await response.json()
            if ready(stats):
                return stats
            await asyncio.sleep(0.1)
    raise AssertionError(f"/stats not ready in {timeout}s: {stats}")
