"""payouts -> payouts-approved | payouts-review: large payouts wait for a person."""

from __future__ import annotations

import logging

from worker.codec import decode_payout
from worker.outbox import Outbox
from worker.records import Payout
from worker.rules import Route, screen
from worker.runtime.stage import Engine, Stage
from worker.settings import Settings
from worker.topics import Topics

logger = logging.getLogger(__name__)


def stage(topics: Topics, settings: Settings) -> Stage[Payout]:
    """The `screening` stage: route each payout by the review threshold."""
    destination = {Route.APPROVED: topics.payouts_approved, Route.REVIEW: topics.payouts_review}

    def handle(payout: Payout, out: Outbox) -> None:
        route = screen(payout, settings.review_threshold)
        if route is Route.REVIEW:
            logger.debug("payout above the threshold: payout_id=%s", payout.payout_id)
        out.send(destination[route], payout, key=payout.seller_id)

    return Stage("screening", topics.payouts, decode_payout, handle, Engine.BATCH)
