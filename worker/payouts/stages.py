"""The payouts stages: orders -> payouts -> screening -> payouts-approved | payouts-review.

Both are stateless and on the hot path, so they run on the batch engine (`worker.runtime.batches`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from worker.payouts.records import Order, Payout, decode_order, decode_payout
from worker.payouts.rules import FeeSchedule, Route, payout_for, screen, screened
from worker.runtime.context import Context
from worker.runtime.outbox import Outbox
from worker.runtime.stage import Engine, Stage

logger = logging.getLogger(__name__)


def orders_to_payouts(ctx: Context) -> Stage[Order]:
    """The `orders-to-payouts` stage (orders is the pipeline's hot topic: a batch stage)."""
    settings = ctx.settings
    schedule = FeeSchedule(settings.fee_rate, settings.fee_fixed)
    currencies = frozenset(settings.currencies)
    payouts = ctx.topics.payouts

    def decode(raw: bytes | None) -> Order:
        return decode_order(raw, currencies=currencies, now=datetime.now(UTC))

    def handle(order: Order, out: Outbox) -> None:
        """Compute the order's payout and publish it keyed by seller."""
        source = out.source
        origin = (source.topic, source.partition, source.offset) if source is not None else None
        payout = payout_for(order, schedule, now=datetime.now(UTC), origin=origin)
        logger.debug("payout for order_id=%s: payout_id=%s", order.order_id, payout.payout_id)
        out.send(payouts, payout, key=payout.seller_id)

    return Stage("orders-to-payouts", ctx.topics.orders, decode, handle, Engine.BATCH)


def screening(ctx: Context) -> Stage[Payout]:
    """The `screening` stage: route each payout by the review threshold."""
    topics, threshold = ctx.topics, ctx.settings.review_threshold
    destination = {Route.APPROVED: topics.payouts_approved, Route.REVIEW: topics.payouts_review}

    def handle(payout: Payout, out: Outbox) -> None:
        route = screen(payout, threshold)
        if route is Route.REVIEW:
            logger.debug("payout above the threshold: payout_id=%s", payout.payout_id)
        since, sent = payout.order_created_at, screened(payout, threshold)
        out.send(destination[route], sent, key=payout.seller_id, outcome=route.value, since=since)

    return Stage("screening", topics.payouts, decode_payout, handle, Engine.BATCH)
