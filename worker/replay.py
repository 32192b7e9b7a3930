"""Replay dead letters: after a fix, send them back to the topic they came from.

    python -m worker replay                      # every dead letter
    python -m worker replay --reason invalid_json --dry-run

Replaying is safe to repeat: payout ids derive from order ids, so a replayed order that already
became a payout settles as a duplicate in the ledger, never twice.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.cli import AppCommand, option
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from worker.app import PipelineApp
from worker.topics import Topics


@dataclass(frozen=True)
class Replay:
    """One dead letter to send back: where, and the exact original bytes."""

    topic: str
    key: bytes | None
    value: bytes


def replayable(letter: dict[str, Any], reason: str | None) -> Replay | None:
    """The message to re-publish for a dead letter, or None if it is filtered out or cannot be."""
    if reason is not None and letter.get("reason") != reason:
        return None
    payload, key = letter.get("payload_base64"), letter.get("key_base64")
    if payload is None or letter.get("payload_truncated"):
        return None  # a null value has nothing to replay; a truncated one would be corrupt
    return Replay(
        letter["source_topic"], base64.b64decode(key) if key is not None else None, base64.b64decode(payload)
    )


async def replay_dead_letters(
    app: PipelineApp, topics: Topics, reason: str | None, dry_run: bool
) -> Counter[str]:
    """Re-publish the dead letters (matching `reason`) present now; count them by origin topic."""
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials)
    servers = [f"{url.host}:{url.port or 9092}" for url in app.conf.broker]
    counts: Counter[str] = Counter()
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", **auth)
    await producer.start()
    try:
        async for letter in _read_to_end(servers, topics.dead_letters.get_topic_name(), auth):
            replay = replayable(letter, reason)
            if replay is None:
                continue
            counts[replay.topic] += 1
            if not dry_run:
                await producer.send(replay.topic, value=replay.value, key=replay.key)
        await producer.flush()
    finally:
        await producer.stop()
    return counts


async def _read_to_end(servers: list[str], topic: str, auth: Any, timeout: float = 60.0) -> Any:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, **auth)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while partitions and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for records in batch.values() for r in records):
                yield orjson.loads(record.value)
            # The fetch high watermark is the true end (Tansu's ListOffsets(latest) is not).
            if not batch and all([await _at_end(consumer, tp) for tp in partitions]):
                return
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    high = consumer.highwater(tp)
    return high is not None and await consumer.position(tp) >= high


def register(app: PipelineApp, topics: Topics) -> None:
    """Add the `replay` command to the worker's CLI."""

    @app.command(
        option("--reason", default=None, help="Only dead letters with this reason (e.g. invalid_json)."),
        option("--dry-run", is_flag=True, default=False, help="Count, do not send."),
    )
    async def replay(self: AppCommand, reason: str | None, dry_run: bool) -> None:
        """Re-publish dead letters to the topic they came from."""
        counts = await replay_dead_letters(app, topics, reason, dry_run)
        verb = "would replay" if dry_run else "replayed"
        detail = ", ".join(f"{n} to {topic}" for topic, n in sorted(counts.items())) or "nothing matched"
        self.say(f"{verb} {sum(counts.values())} dead letters ({detail})")
