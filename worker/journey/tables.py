"""The journey tables, fed by one internal topic keyed like them.

journeys          payout_id -> journey           what happened to the payout, step by step
journey-orders    order_id  -> {payout_ids}      an order id is unique per seller only: several payouts
journey-sellers   seller_id -> {payout_ids}      the seller's latest payouts, newest first

Keys are raw UTF-8 bytes, as in the review tables (`worker/review/tables.py` says why): each table is
written only from `<APP_ID>-journey-feed`, whose messages land on the partition of the keys they carry
(`worker.journey.rules.bundles`), so every worker writes only the partitions it owns, and Faust's web
routing finds a key's owner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from faust.types import TP, TableT, TopicT

from worker.runtime.app import PipelineApp
from worker.runtime.context import Context
from worker.runtime.stores import key_partition

#: The tables, by the name the feed's events use.
NAMES = {"journeys": "journeys", "orders": "journey-orders", "sellers": "journey-sellers"}


@dataclass(frozen=True)
class JourneyTables:
    """The three journey tables and the internal topic that feeds them."""

    app: PipelineApp
    tables: dict[str, TableT[bytes, bytes]]
    feed: TopicT
    partitions: int

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The entry under `key` in `table` (journeys, orders, sellers), if any."""
        raw = self.tables[table].get(key.encode())
        return None if raw is None else orjson.loads(raw)

    def put(self, table: str, key: str, entry: dict[str, Any]) -> None:
        """Write an entry."""
        self.tables[table][key.encode()] = orjson.dumps(entry)

    def remove(self, table: str, key: str) -> None:
        """Remove an entry (a tombstone in the changelog: compaction drops it)."""
        self.tables[table].pop(key.encode(), None)

    def partition_of(self, key: str) -> int:
        """The partition of `key` in the feed and in every journey table (the producer's murmur2)."""
        return key_partition(key.encode(), self.partitions)

    def owns(self, table: str, key: str) -> bool:
        """True when this worker is the active owner of `key`'s partition of `table` (not a standby)."""
        changelog = self.tables[table].changelog_topic.get_topic_name()
        return self.app.assignor.is_active(TP(changelog, self.partition_of(key)))

    def owned(self, table: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The entries of `table` this worker owns."""
        for raw_key, raw in list(self.tables[table].items()):
            key = raw_key.decode()
            if self.owns(table, key):
                yield key, orjson.loads(raw)


def declare_tables(ctx: Context) -> JourneyTables:
    """Declare the journey tables and their feed."""
    app, partitions = ctx.app, ctx.settings.topic_partitions

    def table(name: str) -> TableT[bytes, bytes]:
        return app.Table(name, key_type=bytes, value_type=bytes, partitions=partitions, use_partitioner=True)

    tables = {kind: table(name) for kind, name in NAMES.items()}
    return JourneyTables(app, tables, ctx.topics.internal("journey-feed"), partitions)
