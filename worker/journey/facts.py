"""What this worker knows of some payouts, from the partitions it owns: the ledger entry (and the payout
read again from its final topic), the pending or decided review. And which payouts an order or a
seller has here.

Nothing is written for a journey: the ledger and the review tables already keep, under the payout id,
what happened; the payout itself, with its order's origin, fee schedule and threshold, is read again
at the offset the ledger noted, for as long as its topic keeps it (docs/journey.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

import orjson
from faust.types import TP

from worker.journey.rules import Doc
from worker.payouts.rules import payout_id_for
from worker.review.tables import ReviewTables
from worker.runtime import trace
from worker.runtime.context import Context
from worker.runtime.kafka import read_record
from worker.settlement.ledger import Ledger, Settlement
from worker.wire import encode

logger = logging.getLogger(__name__)
#: The final topic of each ledger state.
FINAL = {"approved": "payouts-approved", "rejected": "payouts-rejected"}


class Facts:
    """Reads this worker's part of journeys."""

    def __init__(self, ctx: Context, reviews: ReviewTables, ledger: Ledger) -> None:
        self.ctx, self.reviews, self.ledger = ctx, reviews, ledger
        self.final = {state: ctx.topics[name].get_topic_name() for state, name in FINAL.items()}

    async def of(self, payout_ids: Iterable[str]) -> dict[str, Doc]:
        """payout_id -> what this worker knows of it (ids it knows nothing of are left out)."""
        found = {payout_id: await self._one(payout_id) for payout_id in dict.fromkeys(payout_ids)}
        return {payout_id: facts for payout_id, facts in found.items() if facts}

    def payouts_of_order(self, order_id: str) -> list[str]:
        """The payouts of `order_id` this worker knows: settled here, or waiting for review here."""
        settled = [payout_id_for(seller, order_id) for seller in self.ledger.sellers_of(order_id)]
        waiting = [r.payout.payout_id for r in self.reviews.owned_pending() if r.payout.order_id == order_id]
        return settled + waiting

    def payouts_of_seller(self, seller_id: str) -> list[str]:
        """The seller's payouts waiting for review here, and its latest approved ones (newest first)."""
        waiting = [
            r.payout.payout_id for r in self.reviews.owned_pending() if r.payout.seller_id == seller_id
        ]
        return waiting + [entry.payout_id for entry in self.reviews.history(seller_id)]

    async def _one(self, payout_id: str) -> Doc:
        facts: Doc = {}
        entry = self._owned_entry(payout_id)
        if entry is not None:
            topic = self.final[entry.state]
            facts["ledger"] = {**orjson.loads(encode(entry)), "topic": topic}
            facts["record"] = await self._record(topic, entry)
        if self.reviews.owns(payout_id):
            pending, decided = self.reviews.review(payout_id), self.reviews.decided_review(payout_id)
            facts["pending"] = orjson.loads(encode(pending)) if pending is not None else None
            facts["decided"] = orjson.loads(encode(decided)) if decided is not None else None
        return facts

    def _owned_entry(self, payout_id: str) -> Settlement | None:
        entry = self.ledger.entry(payout_id)
        if entry is None:
            return None
        changelog = self.ledger.table.changelog_topic.get_topic_name()
        return entry if self.ctx.app.assignor.is_active(TP(changelog, entry.ledger_partition)) else None

    async def _record(self, topic: str, entry: Settlement) -> Doc | None:
        if entry.offset is None:
            return None  # settled before the ledger noted offsets
        record = await read_record(self.ctx.settings, topic, entry.ledger_partition, entry.offset)
        if record is None:
            return None
        try:
            payout = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payout, dict) or payout.get("payout_id") != entry.payout_id:
            logger.warning(
                "journey: %s[%d]@%d is not payout_id=%s",
                topic,
                entry.ledger_partition,
                entry.offset,
                entry.payout_id,
            )
            return None
        span = trace.of_headers(record.headers)
        at = datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat().replace("+00:00", "Z")
        return {"payout": payout, "trace_id": span.trace_id if span else None, "at": at}
