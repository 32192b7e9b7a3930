"""The settlement ledger: repeated orders and payouts collapse; each payout settles exactly once."""

from __future__ import annotations

from tests.integration.test_pipeline import order
from tests.kafka import produce, read_until, wait_for_stats


async def test_redelivered_orders_settle_once_and_conflicts_are_reported(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    topics = pipeline.topics
    first = [(b"s-1", order("o-1", "10.00")), (b"s-2", order("o-2", "20.00", seller="s-2"))]
    repeats = [(b"s-1", order("o-1", "10.00")), (b"s-1", order("o-1", "10.00"))]
    conflict = [(b"s-2", order("o-2", "25.00", seller="s-2"))]  # same order id, other amount

    await produce(bootstrap, topics.orders.get_topic_name(), first + repeats + conflict)

    approved = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 5)
    assert len({p["payout_id"] for p in approved}) == 2  # repeats reach the topic, one id each
    [letter] = await read_until(bootstrap, topics.dead_letters.get_topic_name(), bool)
    assert letter["reason"] == "conflicting_duplicate"
    assert letter["source_topic"] == topics.payouts_approved.get_topic_name()
    stats = await wait_for_stats(pipeline.app.conf.web_port, lambda s: s["ledger"]["conflicts"] == 1)
    ledger = stats["ledger"]
    assert ledger == {
        "settled": 2,
        "by_state": {"approved": {"EUR": {"count": 2, "net": "28.53"}}},  # 9.41 + 19.12
        "duplicates_collapsed": 2,
        "conflicts": 1,
    }
