"""The one way every stage and timer publishes: serialize, send, confirm, log, dead-letter.

`Publisher.send` accepts a Record, a dict, a str or bytes, encodes it with `worker.codec`, waits for
the broker's acknowledgement, and turns a message the broker refuses as too large into a dead letter
instead of crashing the stage.

Stages consume with `stream.noack()` and ack an event only after its output is confirmed. Faust's
default acks an event in the iterator's `finally`, even when the agent is cancelled mid-event (at
shutdown or on a crash), and Faust commits acked offsets: the event's output would be lost. Unacked,
the event leaves a gap that Faust's commit does not pass, so it is redelivered instead.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.types import EventT, TopicT

from worker.codec import b64, encode
from worker.errors import InvalidRecord
from worker.records import MAX_DEAD_PAYLOAD, DeadLetter

logger = logging.getLogger(__name__)

Publishable = faust.Record | Mapping[str, Any] | str | bytes


@dataclass(frozen=True)
class Origin:
    """Where a message came from: enough to find it again on the broker."""

    topic: str
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def of(cls, event: EventT[Any]) -> Origin:
        """The origin of a consumed Faust event."""
        message = event.message
        return cls(message.topic, message.partition, message.offset)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class Publisher:
    """Sends to pipeline topics and to the dead-letter topic."""

    def __init__(self, dead_letters: TopicT) -> None:
        self.dead_letters = dead_letters

    async def send(self, topic: TopicT, value: Publishable, *, key: str | bytes | None) -> bool:
        """Publish `value` to `topic` and wait for the broker; False if it became a dead letter."""
        data, key_bytes = encode(value), _key(key)
        try:
            await _deliver(topic, key_bytes, data)
        except TooLarge as exc:
            name = _name(topic)
            logger.error("refused by the broker as too large: topic=%s key=%r size=%d", name, key, len(data))
            error = InvalidRecord("message_too_large", f"{len(data)} bytes refused for {name}: {exc}")
            await self.dead_letter(Origin(name), error, key=key_bytes, value=data)
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


def _name(topic: TopicT) -> str:
    try:
        return topic.get_topic_name()
    except NotImplementedError:  # an in-memory channel, as in agent tests
        return "<channel>"


def _key(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key
