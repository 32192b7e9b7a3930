"""The journey stages: what the topics say about each payout, gathered under its id.

journey-intake  payouts, payouts-approved | rejected | review | review-escalated, <app>-held-reviews
                and the settlement ledger's changelog -> <app>-journey-feed: what each record says
                (`worker.journey.events`), in messages per partition of the keys (a batch stage: it
                reads the hot topics)
journey         <app>-journey-feed -> the journeys, journey-orders and journey-sellers tables
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from faust.types import TopicT

from worker import wire as f
from worker.errors import InvalidRecord
from worker.journey.events import Event, Patch, events_of
from worker.journey.rules import applied, bundles
from worker.journey.tables import NAMES, JourneyTables
from worker.reasons import Reason
from worker.runtime import trace
from worker.runtime.context import Context
from worker.runtime.outbox import Consumed, Outbox
from worker.runtime.stage import Engine, Stage

#: The pipeline topics the intake reads, by the reader that understands them (`events.READERS`).
PIPELINE = ("payouts", "payouts-approved", "payouts-rejected", "payouts-review", "payouts-review-escalated")


def intake(ctx: Context, feed: JourneyTables, others: Mapping[str, TopicT]) -> Stage[bytes | None]:
    """The `journey-intake` stage, over the pipeline topics and `others` (reader name -> topic)."""
    # Created before any consumer starts: a consumer subscribing to a missing topic has the broker
    # create it with its default partitions, and a changelog must have the table's.
    ctx.app.create_on_start(others.values())
    sources = {**{name: ctx.topics[name] for name in PIPELINE}, **others}
    readers = {topic.get_topic_name(): reader for reader, topic in sources.items()}
    pending: list[Event] = []

    def handle(raw: bytes | None, out: Outbox) -> None:
        source = out.source
        assert source is not None
        said = events_of(readers[source.topic], raw, _timestamp(source))
        parent = trace.of_headers(source.headers)  # the trace the record belongs to, if it says
        for table, _, patch in said:
            if table == "journeys" and parent is not None:
                patch["trace_id"] = parent.trace_id
        pending.extend(said)

    def end_batch(out: Outbox) -> None:
        for key, message in bundles(pending, feed.partition_of):
            out.send(feed.feed, message, key=key)
        pending.clear()

    source = ctx.topics.joined(*sources.values())
    return Stage("journey-intake", source, _raw, handle, Engine.BATCH, end_batch=end_batch)


def journey(ctx: Context, tables: JourneyTables) -> Stage[list[Event]]:
    """The `journey` stage: merge each payout's events into its journey, and index it."""

    def handle(events: list[Event], out: Outbox) -> None:
        grouped: dict[tuple[str, str], list[Patch]] = defaultdict(list)
        for table, key, patch in events:
            grouped[(table, key)].append(patch)
        now = datetime.now(UTC)
        for (table, key), patches in grouped.items():
            tables.put(table, key, applied(table, tables.get(table, key), patches, now))

    return Stage("journey", tables.feed, decode_feed, handle)


def decode_feed(raw: bytes | None) -> list[Event]:
    """A message of the journey feed (written by journey-intake), or InvalidRecord."""
    events = []
    for entry in f.items(f.json_object(raw, limit=None), "events"):
        table = f.text(entry, "table")
        if table not in NAMES:
            raise InvalidRecord(Reason.INVALID_STATE, f"no journey table {table!r:.60}")
        events.append((table, f.text(entry, "key"), f.as_object(f.field(entry, "patch"), "patch")))
    return events


def _raw(raw: bytes | None) -> bytes | None:
    return raw  # each topic has its reader: decoding happens in the handler, which knows the topic


def _timestamp(source: Consumed) -> datetime:
    # aiokafka gives milliseconds (an int), Faust seconds (a float).
    stamp: Any = getattr(source, "timestamp", None)
    if stamp is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(stamp if isinstance(stamp, float) else stamp / 1000, UTC)
