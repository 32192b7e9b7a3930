"""The one way the worker publishes: encode, hand to the producer, confirm, count, dead-letter.

A stage fills an `Outbox`; `Publisher.publish` hands all of it to the producer at once, in order, and
the returned `Delivery` is confirmed when the broker has every message: only then may what the
stage consumed be acknowledged (so its offset committed). Timers and views publish one message with
`Publisher.send`, which waits for the broker. A message the broker refuses as too large becomes a
dead letter instead of crashing the stage; every confirmed message is counted by the observer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import AppT, TopicT

from worker.errors import InvalidRecord
from worker.reasons import Reason
from worker.runtime import trace
from worker.runtime.deadletters import MAX_DEAD_PAYLOAD, Origin, dead_letter_for
from worker.runtime.logs import handling
from worker.runtime.observer import Observer
from worker.runtime.outbox import Batch, Consumed, Message, Outbox, Partitions, Publishable, hand_over
from worker.runtime.trace import Headers, Span
from worker.wire import encode

logger = logging.getLogger(__name__)


class Publisher:
    """Sends to pipeline topics and to the dead-letter topic; the observer counts what arrives."""

    def __init__(
        self, app: AppT, dead_letters: TopicT, observer: Observer, client: AIOKafkaProducer | None = None
    ) -> None:
        self.app, self.dead_letters, self.observer = app, dead_letters, observer
        self.client = client  #: the producer `publish` hands outboxes to; None: Faust's
        self.partitions = Partitions()

    def own(self, client: AIOKafkaProducer) -> Publisher:
        """A publisher like this one whose outboxes go to `client` (a producer of its own)."""
        return Publisher(self.app, self.dead_letters, self.observer, client)

    async def send(
        self,
        topic: TopicT,
        value: Publishable,
        *,
        key: str | bytes | None,
        outcome: str | None = None,
        span: Span | None = None,
    ) -> bool:
        """Publish `value` to `topic` and wait for the broker; False if it became a dead letter.

        It carries `span` as its `traceparent`; without one, a new span (`trace.child`) under the
        message being handled, if any: a timer's or a view's message starts its own trace."""
        span = span or trace.child(trace.current.get())
        key_bytes = key.encode() if isinstance(key, str) else key
        message = Message(topic, key_bytes, encode(value), outcome, headers=span.header())
        try:
            await self._deliver(message)
        except TooLarge as exc:
            await self._too_large(message, exc)
            return False
        self.observer.delivered([message])
        return True

    async def dead_letter(
        self,
        origin: Origin,
        error: InvalidRecord,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> None:
        """Keep a message the pipeline cannot process, byte for byte, with its origin and reason; it
        carries `headers` (the message's own `traceparent`), or a new span of the trace being handled."""
        logger.warning("dead letter from %s: %s (%s)", origin, error.reason, error.detail)
        headers = headers or trace.child(trace.current.get()).header()
        letter = self._letter(origin, error, key, value, headers=headers)
        try:
            await self._deliver(letter)
        except TooLarge:
            # Whole, the payload does not fit in a message: keep its head, its size and the flag.
            letter = self._letter(origin, error, key, value, limit=MAX_DEAD_PAYLOAD, headers=headers)
            await self._deliver(letter)
        self.observer.delivered([letter])

    async def publish(self, outbox: Outbox) -> Delivery:
        """Hand everything in `outbox` to the producer, in order, without waiting for the broker."""
        messages = outbox.messages + [self._rejected(*rejected) for rejected in outbox.rejected]
        limit = self.app.conf.producer_max_request_size
        fit = [m for m in messages if len(m.value) + len(m.key or b"") <= limit]
        for message in messages if len(fit) < len(messages) else ():
            if len(message.value) + len(message.key or b"") > limit:
                await self._too_large(message, MessageSizeTooLargeError(f"above {limit} bytes"))
        producer = self.client or self.app.producer._ensure_producer()  # type: ignore[attr-defined]
        batches = await hand_over(producer, self.partitions, fit) if fit else []
        return Delivery(self, batches)

    def _rejected(self, message: Consumed, error: InvalidRecord, span: Span | None) -> Message:
        origin = Origin.of_message(message)
        trace_id = span.trace_id if span is not None else None
        token = handling.set(message)  # the line names the message, as the stage's own lines do
        try:
            logger.warning(
                "dead letter from %s: %s (%s)",
                origin,
                error.reason,
                error.detail,
                extra={"trace_id": trace_id},
            )
        finally:
            handling.reset(token)
        headers = span.header() if span is not None else None
        letter = self._letter(origin, error, message.key, message.value, headers=headers)
        if len(letter.value) > self.app.conf.producer_max_request_size:
            # Whole, the payload does not fit in a message: keep its head, its size and the flag.
            letter = self._letter(
                origin, error, message.key, message.value, limit=MAX_DEAD_PAYLOAD, headers=headers
            )
        return letter

    def _letter(
        self,
        origin: Origin,
        error: InvalidRecord,
        key: bytes | None,
        value: bytes | None,
        limit: int | None = None,
        headers: Headers | None = None,
    ) -> Message:
        now = datetime.now(UTC)
        letter = dead_letter_for(origin, error, key=key, value=value, now=now, limit=limit)
        return Message(self.dead_letters, key, encode(letter), error.reason, headers=headers)

    async def _deliver(self, message: Message) -> None:
        """Send one message through this publisher's producer; too large -> TooLarge."""
        try:
            await _send_one(self.client, message)
        except (MessageSizeTooLargeError, ProducerSendError) as exc:
            # Faust wraps the client's error in its own; only "too large" becomes a dead letter.
            cause = exc if isinstance(exc, MessageSizeTooLargeError) else exc.__cause__
            if isinstance(cause, MessageSizeTooLargeError):
                raise TooLarge(str(cause)) from exc
            raise

    async def _too_large(self, message: Message, exc: Exception) -> None:
        name = message.topic.get_topic_name()
        size = len(message.value)
        logger.error("refused by the broker as too large: topic=%s key=%r size=%d", name, message.key, size)
        error = InvalidRecord(Reason.MESSAGE_TOO_LARGE, f"{size} bytes refused for {name}: {exc}")
        origin, key, value = Origin(name), message.key, message.value
        await self.dead_letter(origin, error, key=key, value=value, headers=message.headers)


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
                self.publisher.observer.delivered(messages)

    async def _one_by_one(self, messages: list[Message], exc: Exception) -> None:
        if len(messages) == 1:
            await self.publisher._too_large(messages[0], exc)
            return
        # The broker's message limit is below the producer's batch size (see docs/performance.md):
        # send this batch's messages singly, so that only a message that is itself too large is lost.
        logger.error(
            "a batch of %d messages was refused as too large; sending them one by one", len(messages)
        )
        for message in messages:
            span = trace.of_headers(message.headers)
            await self.publisher.send(
                message.topic, message.value, key=message.key, outcome=message.note, span=span
            )


async def _acked(queued: Awaitable[Awaitable[Any]]) -> Any:
    return await (await queued)


class TooLarge(Exception):
    """The client or the broker refused a message as too large."""


async def _send_one(client: AIOKafkaProducer | None, message: Message) -> None:
    """Send `message` through `client` (Faust's producer if None) and wait for the broker."""
    if client is None:
        pending = await message.topic.send(key=message.key, value=message.value, headers=message.headers)
    else:
        name = message.topic.get_topic_name()
        pending = await client.send(name, message.value, key=message.key, headers=message.headers)
    await pending  # the broker's acknowledgement (acks=all)
