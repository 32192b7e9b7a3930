"""payouts -> payouts-approved | payouts-review: large payouts wait for a person."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from worker.app import PipelineApp
from worker.batches import BatchAgent, Record, batch_agent, context
from worker.codec import decode_payout
from worker.errors import InvalidRecord
from worker.publish import Outbox, Publisher
from worker.rules import Route, screen
from worker.settings import Settings
from worker.topics import Topics

logger = logging.getLogger(__name__)


def register(app: PipelineApp, topics: Topics, publisher: Publisher, settings: Settings) -> BatchAgent:
    """Add the `screening` batch agent to `app`."""
    destination = {Route.APPROVED: topics.payouts_approved, Route.REVIEW: topics.payouts_review}

    @batch_agent(app, topics.payouts, publisher, name="screening")
    def screening(payouts: Sequence[Record], outbox: Outbox) -> None:
        """Route each payout by the review threshold."""
        for record in payouts:
            try:
                payout = decode_payout(record.value)
            except InvalidRecord as error:
                outbox.reject(record, error)
                continue
            route = screen(payout, settings.review_threshold)
            if route is Route.REVIEW:
                logger.info(
                    "payout held for review: payout_id=%s seller_id=%s net=%s %s",
                    payout.payout_id,
                    payout.seller_id,
                    payout.net,
                    payout.currency,
                    extra=context(record),
                )
            outbox.send(destination[route], payout, key=payout.seller_id)

    return screening
