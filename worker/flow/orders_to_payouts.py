"""orders -> payouts: each order becomes the seller's payout, net of the marketplace fee."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from worker.codec import decode_order
from worker.outbox import Outbox
from worker.records import Order
from worker.rules import FeeSchedule, payout_for
from worker.runtime.stage import Engine, Stage
from worker.settings import Settings
from worker.topics import Topics

logger = logging.getLogger(__name__)


def stage(topics: Topics, settings: Settings) -> Stage[Order]:
    """The `orders-to-payouts` stage (orders is the pipeline's hot topic: a batch stage)."""
    schedule = FeeSchedule(settings.fee_rate, settings.fee_fixed)
    currencies = frozenset(settings.currencies)

    def decode(raw: bytes | None) -> Order:
        return decode_order(raw, currencies=currencies, now=datetime.now(UTC))

    def handle(order: Order, out: Outbox) -> None:
        """Compute the order's payout and publish it keyed by seller."""
        payout = payout_for(order, schedule, now=datetime.now(UTC))
        logger.debug("payout for order_id=%s: payout_id=%s", order.order_id, payout.payout_id)
        out.send(topics.payouts, payout, key=payout.seller_id)

    return Stage("orders-to-payouts", topics.orders, decode, handle, Engine.BATCH)
