"""The one way every stage and timer publishes: serialize, send, confirm, log, dead-letter.

`Publisher.send` accepts a Record, a dict, a str or bytes, encodes it with `worker.codec`, waits for
the broker's acknowledgement (so a stage never moves past a message that is not safely written), and
turns a message the broker refuses as too large into a dead letter instead of crashing the stage.

A batch agent (`worker.batches`) fills an `Outbox` instead: `Publisher.publish` hands all of it to
the producer at once, in order, and the returned `Delivery` is confirmed when the broker has every
message, which is when the batch's offsets may be committed.

Faust agents (settlement, review) consume with `stream.noack()` and ack an event only after its output
is confirmed. Faust's default acks an event in the iterator's `finally`, even when the agent is
cancelled mid-event (at shutdown or on a crash), and Faust commits acked offsets: the event's output
would be lost. Unacked, the event leaves a gap that Faust's commit does not pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import EventT, TopicT

from worker.codec import b64, encode
from worker.errors import InvalidRecord
from worker.outbox import Batch, Consumed, Message, Outbox, Partitions, Publishable, hand_over
from worker.records import MAX_DEAD_PAYLOAD, DeadLetter

__all__ = ["Delivery", "Origin", "Outbox", "Publishable", "Publisher", "dead_letter_for"]

logger = logging.getLogger(__name__)


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
        """The origin of a consumed message (a Faust `Message` or an aiokafka `ConsumerRecord`)."""
        return cls(message.topic, message.partition, message.offset)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Publisher:
    """Sends to pipeline topics and to the dead-letter topic."""

    def __init__(self, dead_letters: TopicT) -> None:
        self.dead_letters = dead_letters
        self.partitions = Partitions()

    async def send(self, topic: TopicT, value: Publishable, *, key: str | bytes | None) -> bool:
        """Publish `value` to `topic` and wait for the broker; False if it became a dead letter."""
        data, key_bytes = encode(value), _key(key)
        try:
            await _deliver(topic, key_bytes, data)
        except TooLarge as exc:
            await self._too_large((topic, key_bytes, data), exc)
            return False
        logger.debug("published topic=%s key=%r size=%d", _name(topic), key, len(data))
        return True

    async def reject(self, event: EventT[Any], error: InvalidRecord) -> None:
        """Dead-letter the consumed `event`, which a stage could not process."""
        message = event.message
        await self.dead_letter(Origin.of(event), error, key=message.key, value=message.value)

    async def dead_letter(
        self, origin: Origin, error: InvalidRecord, *, key: bytes | None, value: bytes | None
    ) -> None:
        """Keep a message the pipeline cannot process, byte for byte, with its origin and reason."""
        logger.warning("dead letter from %s: %s (%s)", origin, error.reason, error.detail)
        now = datetime.now(UTC)
        try:
            await _deliver(
                self.dead_letters, key, encode(dead_letter_for(origin, error, key=key, value=value, now=now))
            )
        except TooLarge:
            # Whole, the payload does not fit in a message: keep its head, its size and the flag.
            letter = dead_letter_for(origin, error, key=key, value=value, now=now, limit=MAX_DEAD_PAYLOAD)
            await _deliver(self.dead_letters, key, encode(letter))

    async def publish(self, outbox: Outbox) -> Delivery:
        """Hand everything in `outbox` to the producer, in order, without waiting for the broker."""
        messages = outbox.messages + [self._letter(message, error) for message, error in outbox.rejected]
        if not all(_name(topic) for topic, _, _ in messages):  # in-memory channels (tests)
            return Delivery(self, [([m], _ready(await m[0].send(key=m[1], value=m[2]))) for m in messages])
        app = self.dead_letters.app
        limit = app.conf.producer_max_request_size
        fit = [m for m in messages if len(m[2]) + len(m[1] or b"") <= limit]
        for message in messages if len(fit) < len(messages) else ():
            if len(message[2]) + len(message[1] or b"") > limit:
                await self._too_large(message, MessageSizeTooLargeError(f"above {limit} bytes"))
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]
        batches = await hand_over(producer, self.partitions, fit) if fit else []
        _count_sent(app.monitor, batches)
        return Delivery(self, batches)

    async def deliver(self, outbox: Outbox) -> None:
        """`publish` the outbox and wait until the broker confirmed all of it."""
        await (await self.publish(outbox)).confirmed()

    def _letter(self, message: Consumed, error: InvalidRecord) -> Message:
        origin, now = Origin.of_message(message), datetime.now(UTC)
        key = message.key.decode(errors="replace") if message.key is not None else None
        where = {"topic": origin.topic, "partition": origin.partition, "offset": origin.offset, "key": key}
        logger.warning("dead letter from %s: %s (%s)", origin, error.reason, error.detail, extra=where)
        data = encode(dead_letter_for(origin, error, key=message.key, value=message.value, now=now))
        if len(data) > self.dead_letters.app.conf.producer_max_request_size:
            # Whole, the payload does not fit in a message: keep its head, its size and the flag.
            letter = dead_letter_for(
                origin, error, key=message.key, value=message.value, now=now, limit=MAX_DEAD_PAYLOAD
            )
            data = encode(letter)
        return self.dead_letters, message.key, data

    async def _too_large(self, message: Message, exc: Exception) -> None:
        topic, key, value = message
        name = _name(topic) or "<channel>"
        logger.error("refused by the broker as too large: topic=%s key=%r size=%d", name, key, len(value))
        error = InvalidRecord("message_too_large", f"{len(value)} bytes refused for {name}: {exc}")
        await self.dead_letter(Origin(name), error, key=key, value=value)


class Delivery:
    """An outbox handed to the producer; `confirmed()` returns once the broker has all of it."""

    def __init__(self, publisher: Publisher, batches: list[Batch]) -> None:
        self.publisher, self.batches = publisher, batches

    async def confirmed(self) -> None:
        """Wait for every acknowledgement; dead-letter what the broker refused as too large.

        Any other failure is raised: the messages are not safely written, so whatever consumed
        them must not be committed.
        """
        results = await asyncio.gather(
            *(_acked(queued) for _, queued in self.batches), return_exceptions=True
        )
        for (messages, _), result in zip(self.batches, results, strict=True):
            if isinstance(result, MessageSizeTooLargeError):
                await self._one_by_one(messages, result)
            elif isinstance(result, BaseException):
                raise result
            else:
                _sensors_delivered(self.publisher.dead_letters.app, messages)

    async def _one_by_one(self, messages: list[Message], exc: Exception) -> None:
        if len(messages) == 1:
            await self.publisher._too_large(messages[0], exc)
            return
        # The broker's message limit is below the producer's batch size (see README, Performance):
        # send this batch's messages singly, so that only a message that is itself too large is lost.
        logger.error(
            "a batch of %d messages was refused as too large; sending them one by one", len(messages)
        )
        for topic, key, value in messages:
            await self.publisher.send(topic, value, key=key)


async def _ready(sent: Awaitable[Any]) -> Awaitable[Any]:
    return sent


async def _acked(queued: Awaitable[Awaitable[Any]]) -> Any:
    return await (await queued)


def dead_letter_for(
    origin: Origin,
    error: InvalidRecord,
    *,
    key: bytes | None,
    value: bytes | None,
    now: datetime,
    limit: int | None = None,
) -> DeadLetter:
    """The dead letter for a message; a payload over `limit` bytes is cut and marked so."""
    truncated = value is not None and limit is not None and len(value) > limit
    return DeadLetter(
        source_topic=origin.topic,
        source_partition=origin.partition,
        source_offset=origin.offset,
        reason=error.reason,
        detail=error.detail,
        payload_base64=b64(value[:limit] if value is not None and limit is not None else value),
        key_base64=b64(key),
        failed_at=now,
        payload_size=None if value is None else len(value),
        payload_truncated=truncated,
    )


class TooLarge(Exception):
    """The client or the broker refused a message as too large."""


async def _deliver(topic: TopicT, key: bytes | None, value: bytes) -> None:
    try:
        pending = await topic.send(key=key, value=value)
        await pending  # the broker's acknowledgement (acks=all)
    except (MessageSizeTooLargeError, ProducerSendError) as exc:
        # Faust wraps the client's error in its own; only "too large" becomes a dead letter.
        cause = exc if isinstance(exc, MessageSizeTooLargeError) else exc.__cause__
        if isinstance(cause, MessageSizeTooLargeError):
            raise TooLarge(str(cause)) from exc
        raise


def _sensors_delivered(app: Any, messages: list[Message]) -> None:
    """Tell the sensors that have an `on_batch_delivered` hook (metrics) what the broker now has."""
    for sensor in app.sensors:
        hook = getattr(sensor, "on_batch_delivered", None)
        if hook is not None:
            hook([(topic.get_topic_name(), value) for topic, _, value in messages])


def _count_sent(monitor: Any, batches: list[Batch]) -> None:
    """What Faust's monitor counts for each message sent through a topic, counted per batch."""
    for messages, _ in batches:
        monitor.messages_sent_by_topic[messages[0][0].get_topic_name()] += len(messages)
        monitor.messages_sent += len(messages)


def _name(topic: TopicT) -> str:
    """The topic's name; empty for an in-memory channel (as in agent tests)."""
    try:
        return topic.get_topic_name()
    except NotImplementedError:
        return ""


def _key(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key
