"""The pipeline's state: changelog-backed Faust tables (they survive restarts and move with partitions).

pending-reviews   payout_id -> PendingReview   payouts waiting for a person
decided-reviews   payout_id -> ReviewedPayout  the payout with the decision applied: makes decisions
                                               idempotent, and lets a repeat be compared (older
                                               entries hold the ReviewDecision alone)
seller-history    seller_id -> [SellerPayout]  a seller's recent approved payouts, shown to the reviewer
recent-decisions  one key per partition -> the partition's latest decisions (`rules.recent_key`)
settlement-ledger payout_id -> Settlement      each payout's final state, written once

Keys. A table write goes to the changelog partition of the key, and Faust's web routing finds a key's
owner by hashing it (murmur2) onto that changelog, so a table must only be written by the worker that
consumes the same partition of a topic keyed the same way. Payout topics are keyed by seller, so
`seller-history` is fed from them directly; the two payout_id tables are fed only from topics keyed by
payout_id: `review-decisions`, and `<app_id>-held-reviews`, an internal repartition topic that the
`review-intake` agent fills from `payouts-review` (keyed by seller). `use_partitioner=True` makes every
write go to the key's partition (not the incoming event's), which also lets the SLA timer mark an
escalation on the worker that owns it, outside any stream.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from faust.types import TP, TableT, TopicT

from worker.errors import InvalidRecord
from worker.review.records import (
    PendingReview,
    ReviewDecision,
    ReviewedPayout,
    SellerHistory,
    SellerPayout,
    decode_state,
)
from worker.review.rules import decision_line, latest_decisions, waiting_summary, with_decision
from worker.runtime.app import PipelineApp
from worker.runtime.context import Context
from worker.runtime.stores import key_partition
from worker.wire import encode

T = TypeVar("T")


class Written(Generic[T]):
    """The last values written to a table's keys, kept decoded (up to `size` keys, the most recently
    written), and handed back only while the table still holds the very bytes written: a recovery
    after a rebalance may have changed them since."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: dict[str, tuple[bytes, T]] = {}

    def put(self, key: str, raw: bytes, value: T) -> None:
        """Remember that `raw`, the encoding of `value`, was written to `key`."""
        self._kept.pop(key, None)
        if len(self._kept) >= self.size:
            del self._kept[next(iter(self._kept))]  # the longest unwritten
        self._kept[key] = (raw, value)

    def get(self, key: str, raw: bytes, decode: Callable[[], T]) -> T:
        """The value of `raw`, read from `key`: the one written, if `raw` is what was written."""
        kept = self._kept.get(key)
        return kept[1] if kept is not None and kept[0] == raw else decode()


@dataclass(frozen=True)
class ReviewTables:
    """The review tables, the internal topic that feeds them, and this worker's decision counts.

    Keys are raw UTF-8 bytes, exactly the bytes of the topic keys, so that a key hashes to the same
    partition in the topics and in the changelogs (a `str` key would be JSON-encoded, quotes included).
    """

    app: PipelineApp
    pending: TableT[bytes, bytes]
    decided: TableT[bytes, bytes]
    seller_history: TableT[bytes, bytes]
    #: Per partition (under a key of that partition, `recent_key`), its latest decisions, newest first.
    recent: TableT[bytes, bytes]
    held: TopicT
    partitions: int
    outcomes: Counter[str] = field(default_factory=Counter)
    #: What review-hold did with each payout it received: new, duplicate, conflict.
    holds: Counter[str] = field(default_factory=Counter)
    #: The histories this worker wrote, decoded: decoding one takes ~0.3 ms, and the seller-history
    #: agent reads the history of every seller it sees, every second.
    _histories: Written[tuple[SellerPayout, ...]] = field(default_factory=lambda: Written(4096))

    def review(self, payout_id: str) -> PendingReview | None:
        """The pending review of a payout, if it waits."""
        raw = self.pending.get(payout_id.encode())
        return None if raw is None else decode_state(raw, PendingReview)

    def decision(self, payout_id: str) -> ReviewDecision | None:
        """The decision applied to a payout, if any."""
        decided = self.decided_review(payout_id)
        return decided.review if isinstance(decided, ReviewedPayout) else decided

    def decided_review(self, payout_id: str) -> ReviewedPayout | ReviewDecision | None:
        """The payout decided with its decision; or only the decision, if recorded before payouts were."""
        raw = self.decided.get(payout_id.encode())
        if raw is None:
            return None
        try:
            return decode_state(raw, ReviewedPayout)
        except InvalidRecord:
            return decode_state(raw, ReviewDecision)

    def history(self, seller_id: str) -> list[SellerPayout]:
        """A seller's recent approved payouts, newest first."""
        raw = self.seller_history.get(seller_id.encode())
        if raw is None:
            return []
        return list(
            self._histories.get(seller_id, raw, lambda: tuple(decode_state(raw, SellerHistory).payouts))
        )

    def keep(self, review: PendingReview) -> None:
        """Keep (or update) a pending review."""
        self.pending[review.payout.payout_id.encode()] = encode(review)

    def record(self, reviewed: ReviewedPayout) -> None:
        """Record a payout's decision, with the payout: it stops waiting."""
        key = reviewed.payout_id.encode()
        self.decided[key] = encode(reviewed)
        self.pending.pop(key, None)

    def remember(self, seller_id: str, history: list[SellerPayout]) -> None:
        """Keep a seller's recent approved payouts."""
        raw = encode(SellerHistory(payouts=history))
        self.seller_history[seller_id.encode()] = raw
        self._histories.put(seller_id, raw, tuple(history))

    def note_decision(self, reviewed: ReviewedPayout) -> None:
        """Add an applied decision to its partition's latest ones (the page's "decided" tab)."""
        key = recent_key(self.partition_of(reviewed.payout_id), self.partitions)
        raw = self.recent.get(key)
        latest = orjson.loads(raw) if raw is not None else []
        self.recent[key] = encode(with_decision(latest, decision_line(reviewed)))

    def owned_decisions(self) -> list[dict[str, Any]]:
        """The latest decisions of the partitions this worker owns, newest first."""
        changelog = self.recent.changelog_topic.get_topic_name()
        lines: list[dict[str, Any]] = []
        for partition in range(self.partitions):
            if self.app.assignor.is_active(TP(changelog, partition)):
                raw = self.recent.get(recent_key(partition, self.partitions))
                lines += orjson.loads(raw) if raw is not None else []
        return latest_decisions(lines)

    def partition_of(self, key: str) -> int:
        """The partition of `key` in every topic and table of the review (the producer's murmur2)."""
        return key_partition(key.encode(), self.partitions)

    def owns(self, payout_id: str) -> bool:
        """True when this worker is the active owner of the payout's partition (not a standby)."""
        changelog = self.pending.changelog_topic.get_topic_name()
        return self.app.assignor.is_active(TP(changelog, self.partition_of(payout_id)))

    def owned_pending(self, overdue: bool = False) -> list[PendingReview]:
        """The pending reviews this worker owns (only those escalated, with `overdue`); a memory table
        also holds standby copies of others."""
        owned = (
            decode_state(raw, PendingReview) for key, raw in self.pending.items() if self.owns(key.decode())
        )
        return [review for review in owned if review.escalated_at is not None or not overdue]

    def summary(self, now: datetime) -> dict[str, object]:
        """This worker's part of `/stats`: what waits here, and since start what it did with each
        decision (approved, rejected, redelivered, conflict...) and payout held (new, duplicate...)."""
        return {
            **waiting_summary(self.owned_pending(), now),
            "decisions": dict(self.outcomes),
            "holds": dict(self.holds),
        }


@functools.cache
def recent_key(partition: int, partitions: int) -> bytes:
    """The key under which `partition` keeps its latest decisions: the first `recent-N` that hashes to
    that partition, so that the entry lives, and moves, with the partition's payouts."""
    keys = (f"recent-{n}".encode() for n in itertools.count())
    return next(key for key in keys if key_partition(key, partitions) == partition)


def declare_tables(ctx: Context) -> ReviewTables:
    """Declare the review tables and their internal feed topic."""
    app, partitions = ctx.app, ctx.settings.topic_partitions

    def table(name: str) -> TableT[bytes, bytes]:
        return app.Table(name, key_type=bytes, value_type=bytes, partitions=partitions, use_partitioner=True)

    return ReviewTables(
        app,
        pending=table("pending-reviews"),
        decided=table("decided-reviews"),
        seller_history=table("seller-history"),
        recent=table("recent-decisions"),
        held=ctx.topics.internal("held-reviews"),
        partitions=partitions,
    )
