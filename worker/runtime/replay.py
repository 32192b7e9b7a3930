"""Replay dead letters: after a fix, send them back to the input topic they came from.

    python -m worker replay --dry-run            # what would be replayed, refused and skipped, and why
    python -m worker replay                      # every replayable dead letter
    python -m worker replay --reason unknown_currency

Replay writes only to the topics the pipeline validates as input: `orders`, `payouts` (screened
again), `payouts-review` (held for a person) and `review-decisions` (applied only to a payout still
waiting). A letter that names an outcome topic (`payouts-approved`, `payouts-rejected`,
`payouts-review-escalated`, `dead-letters`), an internal or an unknown topic, or a record that is not
a dead letter at all, is refused and listed: otherwise whoever can write to `dead-letters` could put
a payout on `payouts-approved`, past review, with the operator's credentials. `conflicting_duplicate`
letters (a second version of a payout) are skipped unless asked for by `--reason`, and so are letters
with nothing whole to send (a null or truncated payload).

Replaying is safe to repeat: payout ids derive from the seller and order ids, so a replayed order
that already became a payout settles as a duplicate in the ledger, never twice.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.cli import AppCommand, option

from worker.errors import InvalidRecord
from worker.runtime.app import PipelineApp
from worker.runtime.deadletters import DeadLetter, decode_dead_letter
from worker.runtime.kafka import client_config
from worker.runtime.logs import printable
from worker.runtime.topics import Topics
from worker.settings import Settings

#: At most this many refused or skipped letters are listed one by one; the rest are counted.
LISTED = 100


@dataclass(frozen=True)
class Replay:
    """One dead letter to send back: where, and the exact original bytes."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Verdict:
    """What replay does with one record of `dead-letters`: replay it, refuse it, skip it, or leave
    it out (another `--reason`); `why` is a reason code, `detail` says more for the listing."""

    action: str  # "replay" | "refuse" | "skip" | "other"
    why: str = ""
    detail: str = ""
    replay: Replay | None = None


@dataclass(frozen=True)
class Destinations:
    """Which topics replay may write to, and which it names as outcomes or internal topics."""

    inputs: frozenset[str]
    outcomes: frozenset[str]
    internal_prefix: str

    @classmethod
    def of(cls, topics: Topics, app_id: str, inputs: Sequence[str]) -> Destinations:
        """`inputs` (the topics whose stages validate what they read) and every other pipeline topic
        as an outcome, by their full names."""
        names = frozenset(topics[name].get_topic_name() for name in inputs)
        every = frozenset(topic.get_topic_name() for topic in (*topics.all(), topics.dead_letters))
        return cls(names, every - names, f"{app_id}-")

    def refusal(self, topic: str) -> str | None:
        """Why replay may not write to `topic`, or None when it may."""
        if topic in self.inputs:
            return None
        if topic in self.outcomes:
            return "outcome_topic"
        return "internal_topic" if topic.startswith(self.internal_prefix) else "unknown_topic"


def judge(raw: bytes | None, reason: str | None, destinations: Destinations) -> Verdict:
    """What replay does with the record `raw` of `dead-letters`, given the `--reason` asked for."""
    try:
        letter = decode_dead_letter(raw)
    except InvalidRecord as error:
        return Verdict("refuse", "not_a_dead_letter", f"{error.reason}: {error.detail}")
    if reason is not None and letter.reason != reason:
        return Verdict("other")
    refused = destinations.refusal(letter.source_topic)
    if refused is not None:
        return Verdict("refuse", refused, f"names {letter.source_topic} ({letter.reason})")
    if letter.reason == "conflicting_duplicate" and reason != "conflicting_duplicate":
        return Verdict("skip", "conflicting_duplicate", "a second version of a payout: compare by hand")
    if letter.payload_base64 is None:
        return Verdict("skip", "null_payload", "the message had no value: nothing to send")
    if letter.payload_truncated:
        kept, size = len(base64.b64decode(letter.payload_base64)), letter.payload_size
        detail = f"only {kept} of {size} bytes were kept: replay the original from {_origin(letter)}"
        return Verdict("skip", "truncated", detail)
    key = None if letter.key_base64 is None else base64.b64decode(letter.key_base64)
    return Verdict("replay", replay=Replay(letter.source_topic, key, base64.b64decode(letter.payload_base64)))


def _origin(letter: DeadLetter) -> str:
    return f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"


@dataclass
class Report:
    """What a replay did (or would do): counts by topic and by reason, and the letters it left."""

    replayed: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    other: int = 0
    listed: list[str] = field(default_factory=list)

    def add(self, where: str, verdict: Verdict) -> None:
        """Count one record of `dead-letters`, found at `where`."""
        if verdict.action == "other":
            self.other += 1
            return
        if verdict.replay is not None:
            self.replayed[verdict.replay.topic] += 1
            return
        refused = verdict.action == "refuse"
        (self.refused if refused else self.skipped)[verdict.why] += 1
        self.listed.append(
            f"  {'refused' if refused else 'skipped'} {where}: {verdict.why}: {verdict.detail}"
        )

    def lines(self, dry_run: bool) -> list[str]:
        """The report, one line each; control characters from the letters escaped."""
        verb = "would replay" if dry_run else "replayed"
        lines = [f"{verb} {sum(self.replayed.values())} dead letters ({_counts(self.replayed, 'to ')})"]
        for title, counts in (("refused", self.refused), ("skipped", self.skipped)):
            if counts:
                lines.append(f"{title} {sum(counts.values())}: {_counts(counts)}")
        lines += self.listed[:LISTED]
        if len(self.listed) > LISTED:
            lines.append(f"  ... and {len(self.listed) - LISTED} more")
        if self.other:
            lines.append(f"left {self.other} with another reason")
        return [printable(line) for line in lines]


def _counts(counts: Mapping[str, int], prefix: str = "") -> str:
    return ", ".join(f"{n} {prefix}{name}" for name, n in sorted(counts.items())) or "nothing matched"


async def replay_dead_letters(
    settings: Settings, destinations: Destinations, dead_letters: str, reason: str | None, dry_run: bool
) -> Report:
    """Re-publish the replayable dead letters (matching `reason`) present now; report on all of them."""
    report = Report()
    producer = AIOKafkaProducer(**client_config(settings), acks="all")
    await producer.start()
    try:
        async for where, raw in _read_to_end(settings, dead_letters):
            verdict = judge(raw, reason, destinations)
            report.add(where, verdict)
            if verdict.replay is not None and not dry_run:
                sent = verdict.replay
                await producer.send(sent.topic, value=sent.value, key=sent.key)
        await producer.flush()
    finally:
        await producer.stop()
    return report


async def _read_to_end(
    settings: Settings, topic: str, timeout: float = 60.0
) -> AsyncIterator[tuple[str, bytes | None]]:
    """Each record of `topic` present now: where it is (`topic[partition]@offset`) and its value."""
    consumer = AIOKafkaConsumer(**client_config(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while partitions and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for record in (r for records in batch.values() for r in records):
                yield f"{topic}[{record.partition}]@{record.offset}", record.value
            # The fetch high watermark is the true end (Tansu's ListOffsets(latest) is not).
            if not batch and all([await _at_end(consumer, tp) for tp in partitions]):
                return
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> bool:
    high = consumer.highwater(tp)
    return high is not None and await consumer.position(tp) >= high


def register(app: PipelineApp, topics: Topics, inputs: Sequence[str]) -> None:
    """Add the `replay` command to the worker's CLI; it sends only to `inputs` (topic names)."""

    @app.command(
        option("--reason", default=None, help="Only dead letters with this reason (e.g. invalid_json)."),
        option("--dry-run", is_flag=True, default=False, help="Report, do not send."),
    )
    async def replay(self: AppCommand, reason: str | None, dry_run: bool) -> None:
        """Re-publish dead letters to the input topic they came from; list what is refused or skipped."""
        destinations = Destinations.of(topics, app.conf.id, inputs)
        dead_letters = topics.dead_letters.get_topic_name()
        report = await replay_dead_letters(app.settings, destinations, dead_letters, reason, dry_run)
        for line in report.lines(dry_run):
            self.say(line)
