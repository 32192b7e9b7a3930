"""Plain aiokafka helpers for the bench: topics, bulk produce, and a reader that counts arrivals."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.orders import Message
from worker.runtime.kafka import hold_empty_fetches

PARTITIONS = 6
#: How long the bench's readers wait after a fetch that brought nothing. noida-db answers such a fetch
#: at once: a reader that does not wait sent 3,300 fetches a second and used 85% of a core, idle, on a
#: machine the measured process shares (714 a second and 22% with this wait). It adds at most this much
#: to what the bench times, the same for every variant.
READER_HOLD_S = 0.001


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = PARTITIONS) -> None:
    """Create `names` with `partitions` each (the worker would create them too, on start)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, names: Iterable[str]) -> None:
    """Drop a variant's topics, so the in-memory broker does not grow run after run."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):  # best effort: the next variant uses other names
            await admin.delete_topics(list(names))
    finally:
        await admin.close()


async def topic_names(bootstrap: str) -> list[str]:
    """The topics the broker holds (not its own, `__`-prefixed ones)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(name for name in await admin.list_topics() if not name.startswith("__"))
    finally:
        await admin.close()


def producer(bootstrap: str, *, linger_ms: int = 5) -> AIOKafkaProducer:
    """A producer as a well-tuned client would use it: batched, acks from all replicas."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=linger_ms, max_batch_size=256 * 1024
    )


async def produce(
    bootstrap: str, topic: str, messages: Sequence[Message], progress: Callable[[int], None]
) -> None:
    """Write every (key, value) to `topic` and wait until the broker has all of them."""
    client = producer(bootstrap)
    await client.start()
    try:
        for start in range(0, len(messages), 5000):
            chunk = messages[start : start + 5000]
            pending = [await client.send(topic, value, key=key) for key, value in chunk]
            await asyncio.gather(*pending)
            progress(start + len(chunk))
    finally:
        await client.stop()


class Tally:
    """Reads topics from the beginning, counting distinct orders and noting when they arrive.

    `done_at` is the wall-clock time when `expected` distinct ids had arrived over all topics;
    `records - count` are duplicates (allowed by at-least-once, reported). An id is the record's order
    id, or with `by_key` its key (a table's changelog: one key per entry).
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        expected: int,
        *,
        fetch_wait_ms: int = 50,
        by_key: bool = False,
    ):
        self.bootstrap, self.topics, self.expected = bootstrap, list(topics), expected
        self.fetch_wait_ms, self.by_key = fetch_wait_ms, by_key
        self.records = 0
        self.ids: dict[str, set[Any]] = {topic: set() for topic in self.topics}
        self.order_ids: set[Any] = set()
        self.first_seen: list[float] = []  #: when each distinct id first arrived, in order
        #: Called with (read at, topic, value, the record's create time) for each record, epoch seconds.
        self.on_record: Callable[[float, str, dict[str, Any], float], None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None  #: once started

    @property
    def done_at(self) -> float | None:
        """When the `expected`-th distinct id arrived, if it has."""
        return self.first_seen[self.expected - 1] if self.count >= self.expected > 0 else None

    async def start(self) -> Tally:
        self._task = asyncio.create_task(self._run())
        await self._ready.wait()
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, timeout: float, alive: Callable[[], None], tick: Callable[[Tally], None]) -> float:
        """Wait until every expected record arrived; return the wall time it happened."""
        deadline = time.monotonic() + timeout
        while (done_at := self.done_at) is None:
            alive()
            tick(self)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count}/{self.expected} ids on {self.topics} after {timeout}s")
            await asyncio.sleep(0.25)
        tick(self)
        return done_at

    async def _run(self) -> None:
        self.consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        hold_empty_fetches(consumer, READER_HOLD_S)
        try:
            partitions = [TopicPartition(t, p) for t in self.topics for p in range(PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            self._ready.set()
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
                self._note(time.time(), batch)
        finally:
            self._ready.set()
            await consumer.stop()

    @property
    def count(self) -> int:
        """Distinct ids seen so far."""
        return len(self.order_ids)

    def _note(self, now: float, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        seen, on_record, by_key = self.order_ids, self.on_record, self.by_key
        for tp, records in batch.items():
            self.records += len(records)
            on_topic = self.ids[tp.topic]
            for record in records:
                value = orjson.loads(record.value or b"{}")
                found = record.key if by_key else value.get("order_id")
                on_topic.add(found)
                if found not in seen:
                    seen.add(found)
                    self.first_seen.append(now)
                if on_record is not None:
                    on_record(now, tp.topic, value, record.timestamp / 1000)


async def first_timestamp(bootstrap: str, topic: str) -> float:
    """The create time (epoch seconds) of the earliest record on `topic`: when the stage began."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        first: dict[TopicPartition, int] = {}  # each partition's first record is its earliest
        deadline = time.monotonic() + 3
        while len(first) < PARTITIONS and time.monotonic() < deadline:
            for tp, records in (await consumer.getmany(timeout_ms=500, max_records=1000)).items():
                if records:
                    first.setdefault(tp, records[0].timestamp)
                    consumer.pause(tp)
        return min(first.values()) / 1000
    finally:
        await consumer.stop()
