"""Dead letters: a message the pipeline could not process, kept byte for byte with where it came from.

The runtime writes them (`worker.runtime.publish`); `python -m worker replay` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
from faust.models.fields import StringField

from worker import wire as f
from worker.errors import InvalidRecord
from worker.wire import RECORD_OPTIONS, b64, checked

#: The largest payload a dead letter carries whole; beyond it the payload is cut and its size noted.
MAX_DEAD_PAYLOAD = 512 * 1024
#: The largest dead letter `decode_dead_letter` reads (a payload of 512 KiB, base64, and the rest).
MAX_DEAD_LETTER_BYTES = 1024 * 1024


class DeadLetter(faust.Record, namespace="streamline.DeadLetter", **RECORD_OPTIONS):
    """A message the pipeline could not process, kept byte for byte with where it came from."""

    source_topic: str
    source_partition: int | None
    source_offset: int | None
    reason: str
    detail: str
    # `""` for an empty payload, None for a null one: Faust refuses blank strings unless told.
    payload_base64: str | None = StringField(allow_blank=True, required=True)
    key_base64: str | None = StringField(allow_blank=True, required=True)
    failed_at: datetime
    payload_size: int | None = None
    payload_truncated: bool = False


def decode_dead_letter(raw: bytes | None) -> DeadLetter:
    """A record of `dead-letters`, or InvalidRecord when it is not a dead letter."""
    fields = f.json_object(raw, limit=MAX_DEAD_LETTER_BYTES)
    return checked(
        DeadLetter,
        source_topic=f.text(fields, "source_topic"),
        source_partition=f.count(fields, "source_partition"),
        source_offset=f.count(fields, "source_offset"),
        reason=f.text(fields, "reason"),
        detail=f.text(fields, "detail", blank=True),
        payload_base64=f.base64_bytes(fields, "payload_base64"),
        key_base64=f.base64_bytes(fields, "key_base64"),
        failed_at=f.moment(fields, "failed_at"),
        payload_size=f.count(fields, "payload_size"),
        payload_truncated=f.flag(fields, "payload_truncated"),
    )


@dataclass(frozen=True)
class Origin:
    """Where a message came from: enough to find it again on the broker."""

    topic: str
    partition: int | None = None
    offset: int | None = None

    @classmethod
    def of_message(cls, message: Any) -> Origin:
        """The origin of a consumed message (a Faust `Message` or an aiokafka `ConsumerRecord`)."""
        return cls(message.topic, message.partition, message.offset)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


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
