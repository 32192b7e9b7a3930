"""payouts-approved -> the seller-history table: what a reviewer compares a held payout with.

Written once per seller per batch of events: one changelog write per approved payout halved the
pipeline's throughput.
"""

from __future__ import annotations

from collections import defaultdict

from worker.codec import decode_payout
from worker.outbox import Outbox
from worker.records import Payout
from worker.review import with_payouts
from worker.runtime.stage import Stage
from worker.tables import ReviewTables
from worker.topics import Topics


def stage(topics: Topics, tables: ReviewTables) -> Stage[Payout]:
    """The `seller-history` stage: each seller's latest approved payouts (keyed by seller, like the topic)."""
    batch: dict[str, list[Payout]] = defaultdict(list)

    def handle(payout: Payout, out: Outbox) -> None:
        batch[payout.seller_id].append(payout)

    def end_batch(out: Outbox) -> None:
        for seller_id, payouts in batch.items():
            tables.remember(seller_id, with_payouts(tables.history(seller_id), payouts))
        batch.clear()

    return Stage("seller-history", topics.payouts_approved, decode_payout, handle, end_batch=end_batch)
