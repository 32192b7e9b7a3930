"""Stages run as the runtime runs them, with no broker: consumed records in, an Outbox out."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord

from worker.runtime.observer import Observer
from worker.runtime.outbox import Outbox
from worker.runtime.stage import ErrorPolicy, Runner, Stage


def record(
    value: bytes, key: bytes | None = b"s-9", offset: int = 0, *, topic: str = "orders", partition: int = 2
) -> ConsumerRecord[bytes, bytes]:
    """A consumed record, as the batch engine gets it from aiokafka."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=(),
    )


def run(stage: Stage[Any], *records: ConsumerRecord[bytes, bytes]) -> Outbox:
    """Run `stage` on `records` as the runtime does: every rule of every stage, no broker."""
    outbox, runner = Outbox(), Runner(stage, ErrorPolicy.DEAD_LETTER, Observer(), str)
    for consumed in records:
        assert runner.run(consumed, outbox) is None
    runner.end_batch(outbox)
    return outbox
