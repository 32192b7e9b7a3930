"""The simulator's orders and pacing, and the stats arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

from worker.payouts.records import decode_order
from worker.payouts.rules import FeeSchedule, Route, payout_for, screen
from worker.payouts.storefront import Pacer, random_order
from worker.runtime.stats import RateWindow, snapshot
from worker.wire import encode

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_simulated_orders_are_valid_and_a_small_share_needs_review() -> None:
    rng, schedule = random.Random(7), FeeSchedule(Decimal("0.029"), Decimal("0.30"))
    orders = [random_order(rng, ("EUR", "USD", "GBP"), NOW) for _ in range(5000)]
    decoded = [decode_order(encode(o), currencies={"EUR", "USD", "GBP"}, now=NOW) for o in orders]
    assert decoded == orders
    routes = [screen(payout_for(o, schedule, now=NOW), Decimal("1000.00")) for o in orders]
    share = routes.count(Route.REVIEW) / len(routes)
    assert 0.005 < share < 0.05
    assert len({o.seller_id for o in orders}) >= 10
    assert {o.currency for o in orders} == {"EUR", "USD", "GBP"}
    assert len({o.order_id for o in orders}) == len(orders)


def test_the_pacer_emits_the_rate_carrying_fractions() -> None:
    pacer = Pacer(per_second=25)
    start = 1000.0
    assert pacer.due(start) == 0  # the first tick starts the clock
    counts = [pacer.due(start + 0.1 * tick) for tick in range(1, 41)]  # four seconds
    assert sum(counts) == 100
    assert set(counts) == {2, 3}


def test_the_rate_is_events_per_second_over_the_window() -> None:
    window = RateWindow(span=60)
    assert window.rate() == 0.0
    for second in range(0, 121):  # 10 events/s for a minute, then 20/s
        window.add(float(second), 10 * second if second <= 60 else 600 + 20 * (second - 60))
    # Only the last minute counts.
    assert window.rate() == 20.0


def test_the_stats_document_has_every_topic() -> None:
    doc = snapshot(
        ["orders", "dead-letters"],
        {"orders": 3},
        {"dead-letters": 1},
        {"a": 3},
        1,
        1.234,
        9.87,
    )
    assert doc == {
        "topics": {
            "orders": {"consumed": 3, "produced": 0},
            "dead-letters": {"consumed": 0, "produced": 1},
        },
        "agents": {"a": 3},
        "dead_letters": 1,
        "rate_per_s": 1.23,
        "uptime_s": 9.9,
    }
