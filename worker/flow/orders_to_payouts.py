"""orders -> payouts: each order becomes the seller's payout, net of the marketplace fee."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from faust.types import AgentT, StreamT

from worker.app import PipelineApp
from worker.codec import decode_order
from worker.errors import InvalidRecord
from worker.publish import Publisher
from worker.rules import FeeSchedule, payout_for
from worker.settings import Settings
from worker.topics import Topics


def register(app: PipelineApp, topics: Topics, publisher: Publisher, settings: Settings) -> AgentT[Any]:
    """Add the `orders-to-payouts` agent to `app`."""
    schedule = FeeSchedule(settings.fee_rate, settings.fee_fixed)
    currencies = frozenset(settings.currencies)

    @app.agent(topics.orders, name="orders-to-payouts")
    async def orders_to_payouts(stream: StreamT[bytes]) -> None:
        """Decode each order, compute its payout and publish it keyed by seller."""
        events = stream.noack()  # type: ignore[attr-defined]  # ack after output is confirmed: see publish.py
        async for event in events.events():
            now = datetime.now(UTC)
            try:
                order = decode_order(event.value, currencies=currencies, now=now)
                payout = payout_for(order, schedule, now=now)
            except InvalidRecord as error:
                await publisher.reject(event, error)
            else:
                await publisher.send(topics.payouts, payout, key=payout.seller_id)
            await events.ack(event)

    return orders_to_payouts
