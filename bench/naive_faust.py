"""The second reference: the pipeline as a first Faust tutorial would write it.

Faust's defaults (asyncio loop, JSON Records with Faust metadata), one `async for` per event and
`await topic.send()` for each output. Only what any deployment sets is set: the broker, the group's
session timeout (Tansu holds a join for half of it), earliest offsets, a free web port.

python -m bench.naive_faust   (env: KAFKA_BOOTSTRAP_SERVERS, APP_ID, TOPIC_PREFIX, WEB_PORT)
"""

from __future__ import annotations

import os
import sys
from decimal import ROUND_HALF_EVEN, Decimal

import faust

RATE, FIXED, CENT, THRESHOLD = Decimal("0.029"), Decimal("0.30"), Decimal("0.01"), Decimal("1000.00")


class Order(faust.Record, serializer="json"):
    order_id: str
    seller_id: str
    customer_id: str
    amount: str
    currency: str
    created_at: str


class Payout(faust.Record, serializer="json"):
    order_id: str
    seller_id: str
    gross: str
    fee: str
    net: str
    currency: str
    order_created_at: str


def build() -> faust.App:
    env, prefix = os.environ, os.environ["TOPIC_PREFIX"]
    app = faust.App(
        env["APP_ID"],
        broker=f"kafka://{env['KAFKA_BOOTSTRAP_SERVERS']}",
        broker_session_timeout=6,
        broker_rebalance_timeout=6,
        broker_heartbeat_interval=1.5,
        consumer_auto_offset_reset="earliest",
        web_port=int(env["WEB_PORT"]),
        datadir=env.get("DATA_DIR", "naive-data"),
        topic_partitions=6,
    )
    orders = app.topic(f"{prefix}orders", value_type=Order)
    payouts = app.topic(f"{prefix}payouts", value_type=Payout)
    approved = app.topic(f"{prefix}payouts-approved", value_type=Payout)
    review = app.topic(f"{prefix}payouts-review", value_type=Payout)

    @app.agent(orders)
    async def to_payouts(stream: faust.StreamT[Order]) -> None:
        async for order in stream:
            amount = Decimal(order.amount)
            fee = (RATE * amount + FIXED).quantize(CENT, rounding=ROUND_HALF_EVEN)
            payout = Payout(
                order.order_id,
                order.seller_id,
                order.amount,
                str(fee),
                str(amount - fee),
                order.currency,
                order.created_at,
            )
            await payouts.send(key=order.seller_id, value=payout)

    @app.agent(payouts)
    async def screening(stream: faust.StreamT[Payout]) -> None:
        async for payout in stream:
            destination = review if Decimal(payout.net) > THRESHOLD else approved
            await destination.send(key=payout.seller_id, value=payout)

    return app


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "info"]
    build().main()
