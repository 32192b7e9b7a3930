"""The benchmark's orders: the same bytes for every variant, like the storefront's but over many sellers."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import orjson

#: More sellers than the storefront's dozen, so that keys spread evenly over six partitions.
SELLERS = 500
CURRENCIES = ("EUR", "USD", "GBP")

Message = tuple[bytes, bytes]


def order(rng: random.Random, created_at: datetime) -> Message:
    """One order as (key, value): log-normal amounts (median ~65), ~1.5% above 1,000."""
    seller = f"s-{rng.randrange(1, SELLERS + 1)}"
    value = {
        "order_id": f"o-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "seller_id": seller,
        "customer_id": f"c-{rng.randrange(1, 5000)}",
        "amount": f"{max(1.0, rng.lognormvariate(4.2, 1.25)):.2f}",
        "currency": rng.choice(CURRENCIES),
        "created_at": created_at,
    }
    return seller.encode(), orjson.dumps(value, option=orjson.OPT_UTC_Z)


def orders(count: int, seed: int = 5) -> list[Message]:
    """`count` orders, the same for a given seed (created now, so none is in the future)."""
    rng, now = random.Random(seed), datetime.now(UTC)
    return [order(rng, now) for _ in range(count)]
