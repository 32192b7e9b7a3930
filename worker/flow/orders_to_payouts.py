"""orders -> payouts: each order becomes the seller's payout, net of the marketplace fee."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from worker.app import PipelineApp
from worker.batches import BatchAgent, Record, batch_agent, context
from worker.codec import decode_order
from worker.errors import InvalidRecord
from worker.publish import Outbox, Publisher
from worker.rules import FeeSchedule, payout_for
from worker.settings import Settings
from worker.topics import Topics

logger = logging.getLogger(__name__)


def register(app: PipelineApp, topics: Topics, publisher: Publisher, settings: Settings) -> BatchAgent:
    """Add the `orders-to-payouts` batch agent to `app` (orders is the pipeline's hot topic)."""
    schedule = FeeSchedule(settings.fee_rate, settings.fee_fixed)
    currencies = frozenset(settings.currencies)

    @batch_agent(app, topics.orders, publisher, name="orders-to-payouts")
    def orders_to_payouts(orders: Sequence[Record], outbox: Outbox) -> None:
        """Decode each order, compute its payout and publish it keyed by seller."""
        now = datetime.now(UTC)
        for record in orders:
            try:
                order = decode_order(record.value, currencies=currencies, now=now)
                payout = payout_for(order, schedule, now=now)
            except InvalidRecord as error:
                outbox.reject(record, error)
                continue
            logger.debug(
                "payout for order_id=%s: payout_id=%s net=%s %s",
                order.order_id,
                payout.payout_id,
                payout.net,
                payout.currency,
                extra=context(record),
            )
            outbox.send(topics.payouts, payout, key=payout.seller_id)

    return orders_to_payouts
