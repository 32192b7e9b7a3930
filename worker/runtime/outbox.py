"""What a batch stage publishes, and how it reaches the producer: whole batches, not messages.

A stage fills an `Outbox`; `hand_over` groups its messages by topic partition, in order, into
aiokafka record batches and queues each with one future. Handing messages over one at a time
costs more than the stage's own work (a future, a partition lookup and murmur2 per message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

import faust
from aiokafka import AIOKafkaProducer
from faust.types import TopicT

from worker.errors import InvalidRecord
from worker.runtime import trace
from worker.runtime.trace import Headers, Span
from worker.wire import encode

Publishable = faust.Record | Mapping[str, Any] | str | bytes
T = TypeVar("T")


class Message(NamedTuple):
    """One message to publish, and what the observer counts it as once the broker has it."""

    topic: TopicT
    key: bytes | None
    value: bytes
    note: str | None = None  #: the outcome it stands for (a dead letter's reason)
    since: datetime | None = None  #: when its story began, for the latency of `note`
    headers: Headers | None = None  #: Kafka headers: the `traceparent` of the hop that published it


#: Messages handed to the producer together, and the broker's acknowledgement (see `Partitions.submit`).
Batch = tuple[list[Message], Awaitable[Awaitable[Any]]]


class Consumed(Protocol):
    """A consumed message: an aiokafka `ConsumerRecord` or a Faust `Message`."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Any: ...


class Outbox:
    """What a stage publishes for a batch of messages: encoded now, sent by `Publisher.publish`."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        #: Dead letters to write: the consumed message, why, and the span of the hop that refused it.
        self.rejected: list[tuple[Consumed, InvalidRecord, Span | None]] = []
        #: The consumed message being handled now (set by the runtime for each one).
        self.source: Consumed | None = None

    def __bool__(self) -> bool:
        return bool(self.messages or self.rejected)

    def mark(self) -> tuple[int, int]:
        """Where the outbox stands now, to `rollback` to if the message being handled fails."""
        return len(self.messages), len(self.rejected)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forget what was added since `mark`: a failed message publishes nothing of its own."""
        del self.messages[mark[0] :], self.rejected[mark[1] :]

    def send(
        self,
        topic: TopicT,
        value: Publishable,
        *,
        key: str | bytes | None,
        outcome: str | None = None,
        since: datetime | None = None,
    ) -> None:
        """Publish `value` to `topic` with the batch (in the order of the calls); `outcome` names what
        it is for `/metrics` (`streamline_payouts_total`), `since` when its story began (latency).
        It carries the `traceparent` of the message being handled (`worker.runtime.trace`)."""
        key_bytes = key.encode() if isinstance(key, str) else key
        span = trace.current.get()
        headers = span.header() if span is not None else None
        self.messages.append(Message(topic, key_bytes, encode(value), outcome, since, headers))

    def reject(self, message: Consumed, error: InvalidRecord) -> None:
        """Dead-letter the consumed `message`, which the stage could not process."""
        self.rejected.append((message, error, trace.current.get()))


async def hand_over(
    producer: AIOKafkaProducer, partitions: Partitions, messages: list[Message]
) -> list[Batch]:
    """Queue `messages` as record batches, one per partition (more when full), keeping their order."""
    names = {topic: topic.get_topic_name() for topic in {message.topic for message in messages}}
    await partitions.refresh(producer, names.values())
    by_partition: dict[tuple[str, int], list[Message]] = {}
    for message in messages:
        name = names[message[0]]
        by_partition.setdefault((name, partitions.of(name, message[1])), []).append(message)
    batches: list[Batch] = []
    for (name, partition), group in by_partition.items():
        for chunk, builder in record_batches(producer, group, _record):
            batches.append((chunk, partitions.submit(producer, builder, name, partition)))
    return batches


def record_batches(
    producer: AIOKafkaProducer, items: list[T], record: Callable[[T], tuple[bytes | None, bytes | None, Any]]
) -> Iterable[tuple[list[T], Any]]:
    """`items` as record batches of at most the producer's batch size, in order (a first one always
    fits); `record` gives an item's key, value and headers."""
    chunk: list[T] = []
    builder = producer.create_batch()
    for item in items:
        key, value, headers = record(item)
        if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            yield chunk, builder
            chunk, builder = [], producer.create_batch()
            builder.append(timestamp=None, key=key, value=value, headers=headers)
        chunk.append(item)
    builder.close()  # only these items: per-message sends must not join it
    yield chunk, builder


def _record(message: Message) -> tuple[bytes | None, bytes, Headers | None]:
    return message[1], message[2], message[5]


class Partitions:
    """The producer's partitioner, asked once per key (sellers repeat batch after batch); and the
    queue of record batches waiting for the producer, per partition."""

    def __init__(self) -> None:
        self.partitioner: Callable[..., int] | None = None
        self.topics: dict[str, list[int]] = {}
        self.known: dict[tuple[str, int, bytes], int] = {}
        self.last: dict[tuple[str, int], asyncio.Future[Awaitable[Any]]] = {}

    def submit(
        self, producer: AIOKafkaProducer, builder: Any, topic: str, partition: int
    ) -> asyncio.Future[Awaitable[Any]]:
        """Queue a record batch after the ones before it for its partition, without waiting here.

        The producer takes a partition's next batch only once the one before has left (one request
        per partition in flight keeps the order), so awaiting `send_batch` here would hold the stage
        up for a broker round trip per partition. The returned future gives the acknowledgement's
        future once the batch is queued; a failure to queue fails every later batch of the partition.
        """
        before = self.last.get((topic, partition))
        queued = asyncio.ensure_future(
            _after(before, producer.send_batch(builder, topic, partition=partition))
        )
        self.last[(topic, partition)] = queued
        return queued

    async def refresh(self, producer: AIOKafkaProducer, topics: Iterable[str]) -> None:
        """Learn the current partitions of `topics` (from the producer's metadata)."""
        self.partitioner = producer._partitioner
        for topic in topics:
            self.topics[topic] = sorted(await producer.partitions_for(topic))

    def of(self, topic: str, key: bytes | None) -> int:
        """The partition for `key` on `topic`, as `producer.send` would choose it."""
        assert self.partitioner is not None
        partitions = self.topics[topic]
        if key is None:
            return int(self.partitioner(None, partitions, partitions))
        known = (topic, len(partitions), key)
        partition = self.known.get(known)
        if partition is None:
            if len(self.known) >= 100_000:
                self.known.clear()
            partition = self.known[known] = int(self.partitioner(key, partitions, []))
        return partition


async def _after(before: asyncio.Future[Awaitable[Any]] | None, send: Awaitable[Any]) -> Awaitable[Any]:
    if before is not None:
        await before  # raises if the batch before could not be queued: keep no later one
    return await send  # type: ignore[no-any-return]
