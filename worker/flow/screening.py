"""payouts -> payouts-approved | payouts-review: large payouts wait for a person."""

from __future__ import annotations

import logging
from typing import Any

from faust.types import AgentT, StreamT

from worker.app import PipelineApp
from worker.codec import decode_payout
from worker.errors import InvalidRecord
from worker.publish import Publisher
from worker.rules import Route, screen
from worker.settings import Settings
from worker.topics import Topics

logger = logging.getLogger(__name__)


def register(app: PipelineApp, topics: Topics, publisher: Publisher, settings: Settings) -> AgentT[Any]:
    """Add the `screening` agent to `app`."""
    destination = {Route.APPROVED: topics.payouts_approved, Route.REVIEW: topics.payouts_review}

    @app.agent(topics.payouts, name="screening")
    async def screening(stream: StreamT[bytes]) -> None:
        """Route each payout by the review threshold."""
        events = stream.noack()  # type: ignore[attr-defined]  # ack after output is confirmed: see publish.py
        async for event in events.events():
            try:
                payout = decode_payout(event.value)
            except InvalidRecord as error:
                await publisher.reject(event, error)
            else:
                route = screen(payout, settings.review_threshold)
                if route is Route.REVIEW:
                    logger.info(
                        "payout held for review: payout_id=%s seller_id=%s net=%s %s",
                        payout.payout_id,
                        payout.seller_id,
                        payout.net,
                        payout.currency,
                    )
                await publisher.send(destination[route], payout, key=payout.seller_id)
            await events.ack(event)

    return screening
