"""storefront -> orders: a simulated shop front that emits realistic orders at a steady rate.

Off (rate 0) in production, where real services produce the orders.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from worker.payouts.records import Order
from worker.runtime.context import Context

SELLERS = tuple(f"s-{n}" for n in range(1, 13))
#: Timer period; each tick emits however many orders the rate owes since the last one.
TICK_S = 0.1


def random_order(rng: random.Random, currencies: Sequence[str], now: datetime) -> Order:
    """One plausible order: log-normal amounts (median ~65) so that about 1.5% exceed 1,000."""
    amount = Decimal(max(1.0, rng.lognormvariate(4.2, 1.25))).quantize(Decimal("0.01"))
    return Order(
        order_id=f"o-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        seller_id=rng.choice(SELLERS),
        customer_id=f"c-{rng.randrange(1, 5000)}",
        amount=amount,
        currency=rng.choices(currencies, weights=range(len(currencies), 0, -1))[0],
        created_at=now,
    )


class Pacer:
    """Turns a rate into a number of orders per tick, carrying the fractions over."""

    def __init__(self, per_second: float) -> None:
        self.per_second = per_second
        self._last: float | None = None  # the first tick starts the clock: no burst at start-up
        self._owed = 0.0

    def due(self, now: float) -> int:
        """How many orders to emit at monotonic time `now`."""
        last, self._last = self._last, now
        self._owed += (now - last) * self.per_second if last is not None else 0.0
        count = int(self._owed)
        self._owed -= count
        return count


def register(ctx: Context) -> None:
    """Add the storefront timer to the app, unless its rate is 0."""
    settings, publisher, orders_topic = ctx.settings, ctx.publisher, ctx.topics.orders
    if settings.orders_per_second <= 0:
        return
    rng, pacer = random.Random(), Pacer(settings.orders_per_second)
    currencies = settings.currencies

    @ctx.app.timer(TICK_S, name="storefront")
    async def storefront() -> None:
        """Emit the orders due since the last tick."""
        now = datetime.now(UTC)
        orders = [random_order(rng, currencies, now) for _ in range(pacer.due(time.monotonic()))]
        # Sent together and confirmed together: one broker round trip per tick, not per order.
        await asyncio.gather(*(publisher.send(orders_topic, o, key=o.seller_id) for o in orders))
