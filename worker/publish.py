"""The one way every stage and timer publishes: serialize, send, confirm, log, dead-letter.

`Publisher.send` accepts a Record, a dict, a str or bytes, encodes it with `worker.codec`, waits for
the broker's acknowledgement (so a stage never moves past a message that is not safely written), and
turns a message the broker refuses as too large into a dead letter instead of crashing the stage.

A batch stage (`worker.batches`) fills an `Outbox` instead, and `Publisher.deliver` sends all of it
at once, in order, without waiting message by message: it returns when the broker has confirmed
every message, which is when the batch's offsets may be committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import EventT, TopicT

from worker.codec import b64, encode
from worker.errors import InvalidRecord
from worker.records import MAX_DEAD_PAYLOAD, DeadLetter

logger = logging.getLogger(__name__)

Publishable = faust.Record | Mapping[str, Any] | str | bytes


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


@dataclass(frozen=True)
class Origin:
    """Where a message came from: enough to find it again on the broker."""

    topic: str
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def of(cls, event: EventT[Any]) -> Origin:
        """The origin of a consumed Faust event."""
        return cls.of_message(event.message)

    @classmethod
    def of_message(cls, message: Consumed) -> Origin:
        """The origin of a consumed message."""
        return cls(message.topic, message.partition, message.offset)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Outbox:
    """What a batch stage publishes for one batch: encoded now, sent by `Publisher.deliver`."""

    def __init__(self) -> None:
        self.messages: list[tuple[TopicT, bytes | None, bytes]] = []
        self.rejected: list[tuple[Consumed, InvalidRecord]] = []

    def send(self, topic: TopicT, value: Publishable, *, key: str | bytes | None) -> None:
        """Publish `value` to `topic` once the batch is delivered (in the order of the calls)."""
        self.messages.append((topic, _key(key), encode(value)))

    def reject(self, message: Consumed, error: InvalidRecord) -> None:
        """Dead-letter the consumed `message`, which the stage could not process."""
        self.rejected.append((message, error))


Sent = tuple[TopicT, bytes | None, bytes]


class Delivery:
    """Messages handed to the producer; `confirmed()` returns once the broker has all of them."""

    def __init__(self, publisher: Publisher, sent: list[tuple[Sent, Awaitable[Any]]]) -> None:
        self.publisher, self.sent = publisher, sent

    async def confirmed(self) -> None:
        """Wait for every acknowledgement; dead-letter what the broker refused as too large.

        Any other failure is raised: the messages are not safely written, so whatever consumed
        them must not be committed.
        """
        results = await asyncio.gather(*(future for _, future in self.sent), return_exceptions=True)
        for (message, _), result in zip(self.sent, results, strict=True):
            if isinstance(result, MessageSizeTooLargeError):
                await self.publisher._too_large(*message, result)
            elif isinstance(result, BaseException):
                raise result


class Publisher:
    """Sends to pipeline topics and to the dead-letter topic."""

    def __init__(self, dead_letters: TopicT) -> None:
        self.dead_letters = dead_letters

    async def send(self, topic: TopicT, value: Publishable, *, key: str | bytes | None) -> bool:
        """Publish `value` to `topic` and wait for the broker; False if it became a dead letter."""
        data, key_bytes = encode(value), _key(key)
        try:
            await _deliver(topic, key_bytes, data)
        except MessageSizeTooLargeError as exc:
            name = _name(topic)
            logger.error("refused by the broker as too large: topic=%s key=%r size=%d", name, key, len(data))
            error = InvalidRecord("message_too_large", f"{len(data)} bytes refused for {name}: {exc}")
            await self.dead_letter(Origin(name), error, key=key_bytes, value=data)
            return False
        logger.debug("published topic=%s key=%r size=%d", _name(topic), key, len(data))
        return True

    async def reject(self, event: EventT[Any], error: InvalidRecord) -> None:
        """Dead-letter the consumed `event`, which a stage could not process."""
        await self.reject_message(event.message, error)

    async def deliver(self, outbox: Outbox) -> None:
        """Send everything in `outbox`, in order, and return once the broker confirmed all of it."""
        await (await self.publish(outbox)).confirmed()

    async def publish(self, outbox: Outbox) -> Delivery:
        """Hand everything in `outbox` to the producer, in order, without waiting for the broker."""
        messages = outbox.messages + [self._letter(message, error) for message, error in outbox.rejected]
        started = [(message, await self._start(*message)) for message in messages]
        return Delivery(self, [(message, future) for message, future in started if future is not None])

    async def reject_message(self, message: Consumed, error: InvalidRecord) -> None:
        """Dead-letter a consumed `message` (a Faust `Message` or an aiokafka `ConsumerRecord`)."""
        await self.dead_letter(Origin.of_message(message), error, key=message.key, value=message.value)

    def _letter(self, message: Consumed, error: InvalidRecord) -> Sent:
        origin = Origin.of_message(message)
        letter = dead_letter_for(origin, error, key=message.key, value=message.value, now=datetime.now(UTC))
        logger.warning("dead letter from %s: %s (%s)", origin, error.reason, error.detail)
        return self.dead_letters, message.key, encode(letter)

    async def _start(self, topic: TopicT, key: bytes | None, value: bytes) -> Awaitable[Any] | None:
        """Hand one message to the producer; None if it is refused as too large (then dead-lettered)."""
        try:
            return await _send(topic, key, value)
        except MessageSizeTooLargeError as exc:
            await self._too_large(topic, key, value, exc)
            return None

    async def _too_large(self, topic: TopicT, key: bytes | None, value: bytes, exc: Exception) -> None:
        name = _name(topic)
        logger.error("refused by the broker as too large: topic=%s key=%r size=%d", name, key, len(value))
        error = InvalidRecord("message_too_large", f"{len(value)} bytes refused for {name}: {exc}")
        await self.dead_letter(Origin(name), error, key=key, value=value)

    async def dead_letter(
        self, origin: Origin, error: InvalidRecord, *, key: bytes | None, value: bytes | None
    ) -> None:
        """Keep a message the pipeline cannot process, byte for byte, with its origin and reason."""
        letter = dead_letter_for(origin, error, key=key, value=value, now=datetime.now(UTC))
        logger.warning("dead letter from %s: %s (%s)", origin, error.reason, error.detail)
        await _deliver(self.dead_letters, key, encode(letter))


def dead_letter_for(
    origin: Origin, error: InvalidRecord, *, key: bytes | None, value: bytes | None, now: datetime
) -> DeadLetter:
    """The dead letter for a message; payloads over MAX_DEAD_PAYLOAD are cut and marked so."""
    truncated = value is not None and len(value) > MAX_DEAD_PAYLOAD
    return DeadLetter(
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
        reason=error.reason,
        detail=error.detail,
        payload_base64=b64(value[:MAX_DEAD_PAYLOAD] if value is not None else None),
        key_base64=b64(key),
        failed_at=now,
        payload_size=None if value is None else len(value),
        payload_truncated=truncated,
    )


async def _deliver(topic: TopicT, key: bytes | None, value: bytes) -> None:
    pending = await topic.send(key=key, value=value)
    await pending  # the broker's acknowledgement (acks=all)


async def _send(topic: TopicT, key: bytes | None, value: bytes) -> Awaitable[Any]:
    """Hand a message to the producer; the returned future is the broker's acknowledgement."""
    try:
        name = topic.get_topic_name()
    except NotImplementedError:  # an in-memory channel, as in agent tests
        return await topic.send(key=key, value=value)
    # The app's producer directly: Topic.send's per-message bookkeeping costs more than the send.
    app = topic.app
    app.monitor.messages_sent += 1
    app.monitor.messages_sent_by_topic[name] += 1
    return await app.producer.send(name, key, value, partition=None, timestamp=None, headers=None)


def _name(topic: TopicT) -> str:
    try:
        return topic.get_topic_name()
    except NotImplementedError:  # an in-memory channel, as in agent tests
        return "<channel>"


def _key(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key
