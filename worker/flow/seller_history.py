"""payouts-approved -> the seller-history table: what a reviewer compares a held payout with."""

from __future__ import annotations

from typing import Any

from faust.types import AgentT, StreamT

from worker.app import PipelineApp
from worker.codec import decode_payout
from worker.errors import InvalidRecord
from worker.publish import Publisher
from worker.review import history_entry, with_payout
from worker.tables import ReviewTables
from worker.topics import Topics


def register(app: PipelineApp, topics: Topics, publisher: Publisher, tables: ReviewTables) -> AgentT[Any]:
    """Add the `seller-history` agent to `app`."""

    @app.agent(topics.payouts_approved, name="seller-history")
    async def seller_history(stream: StreamT[bytes]) -> None:
        """Keep each seller's latest approved payouts (keyed by seller, like the topic)."""
        async for event in stream.events():
            try:
                payout = decode_payout(event.value)
            except InvalidRecord as error:
                await publisher.reject(event, error)
                continue
            history = with_payout(tables.history(payout.seller_id), history_entry(payout))
            tables.remember(payout.seller_id, history)

    return seller_history
