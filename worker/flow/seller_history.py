"""payouts-approved -> the seller-history table: what a reviewer compares a held payout with.

Updated in batches (one table write per seller per second at most), so that keeping the history costs
the hot path next to nothing: one changelog write per approved payout halved the pipeline's throughput.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from faust.types import AgentT, StreamT

from worker.app import PipelineApp
from worker.codec import decode_payout
from worker.errors import InvalidRecord
from worker.publish import Publisher
from worker.records import Payout
from worker.review import with_payouts
from worker.tables import ReviewTables
from worker.topics import Topics

BATCH = 1000
BATCH_WINDOW_S = 1.0


def register(app: PipelineApp, topics: Topics, publisher: Publisher, tables: ReviewTables) -> AgentT[Any]:
    """Add the `seller-history` agent to `app`."""

    @app.agent(topics.payouts_approved, name="seller-history")
    async def seller_history(stream: StreamT[bytes]) -> None:
        """Keep each seller's latest approved payouts (keyed by seller, like the topic)."""
        # `take_events` is missing from Faust's StreamT; the Stream it hands agents has it.
        async for events in stream.take_events(BATCH, within=BATCH_WINDOW_S):  # type: ignore[attr-defined]
            by_seller: dict[str, list[Payout]] = defaultdict(list)
            for event in events:
                try:
                    payout = decode_payout(event.value)
                except InvalidRecord as error:
                    await publisher.reject(event, error)
                    continue
                by_seller[payout.seller_id].append(payout)
            for seller_id, payouts in by_seller.items():
                tables.remember(seller_id, with_payouts(tables.history(seller_id), payouts))

    return seller_history
