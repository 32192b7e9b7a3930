"""The pipeline end to end on a real broker: raw JSON in, exact payouts and dead letters out."""

from __future__ import annotations

import base64
import gc
from decimal import Decimal

import aiohttp
import orjson

from tests.kafka import produce, read_until, topic_partitions, wait_for_stats

SEED_ORDER = (
    b'{"order_id": "o-1", "seller_id": "s-9", "customer_id": "c-3", "amount": "120.00", '
    b'"currency": "EUR", "created_at": "2026-11-28T10:00:00Z"}'
)


def order(order_id: str, amount: str, seller: str = "s-1", currency: str = "EUR") -> bytes:
    return orjson.dumps(
        {
            "order_id": order_id,
            "seller_id": seller,
            "customer_id": "c-1",
            "amount": amount,
            "currency": currency,
            "created_at": "2026-11-28T10:00:00Z",
        }
    )


async def test_order_from_a_plain_producer_becomes_an_exact_approved_payout(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    topics = pipeline.topics

    await produce(bootstrap, topics.orders.get_topic_name(), [(b"s-9", SEED_ORDER)])

    [payout] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool)
    assert {k: payout[k] for k in ("order_id", "seller_id", "gross", "fee", "net", "currency")} == {
        "order_id": "o-1",
        "seller_id": "s-9",
        "gross": "120.00",
        "fee": "3.78",
        "net": "116.22",
        "currency": "EUR",
    }
    assert payout["payout_id"].startswith("po-")
    assert payout["order_created_at"] == "2026-11-28T10:00:00Z"
    assert "__faust" not in payout


async def test_payout_above_threshold_is_held_for_review(bootstrap, start_pipeline):
    pipeline = await start_pipeline(review_threshold=Decimal("500.00"))
    topics = pipeline.topics

    await produce(
        bootstrap,
        topics.orders.get_topic_name(),
        [
            (b"s-1", order("o-big", "600.00")),  # net 582.30: above 500
            (b"s-1", order("o-small", "515.24")),  # net 500.00 exactly: approved
        ],
    )

    [held] = await read_until(bootstrap, topics.payouts_review.get_topic_name(), bool)
    assert (held["order_id"], held["net"]) == ("o-big", "582.30")
    [approved] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool)
    assert (approved["order_id"], approved["net"]) == ("o-small", "500.00")


async def test_garbage_goes_to_dead_letters_and_later_orders_still_flow(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    topics = pipeline.topics
    orders = topics.orders.get_topic_name()
    garbage = [
        (b"k", b"not json at all"),
        (b"k", b""),
        (b"k", order("o-neg", "-5.00")),
        (b"k", order("o-cents", "1.005")),
        (b"k", order("o-yen", "10.00", currency="JPY")),
        (b"k", b'{"order_id": "o-missing"}'),
    ]

    await produce(bootstrap, orders, [*garbage, (b"s-1", order("o-good", "10.00"))])

    letters = await read_until(bootstrap, topics.dead_letters.get_topic_name(), lambda v: len(v) >= 6)
    assert sorted(letter["reason"] for letter in letters) == sorted(
        [
            "invalid_json",
            "empty_value",
            "non_positive_amount",
            "too_many_decimals",
            "unknown_currency",
            "missing_field",
        ]
    )
    by_payload = {base64.b64decode(letter["payload_base64"]): letter for letter in letters}
    assert set(by_payload) == {value for _, value in garbage}  # every byte kept exactly
    assert all(letter["source_topic"] == orders for letter in letters)
    assert all(isinstance(letter["source_offset"], int) for letter in letters)
    [good] = await read_until(bootstrap, topics.payouts_approved.get_topic_name(), bool)
    assert (good["order_id"], good["net"]) == ("o-good", "9.41")


async def test_topics_exist_with_their_partitions_when_stats_answers(bootstrap, start_pipeline):
    pipeline = await start_pipeline(topic_partitions=4)
    topics = pipeline.topics

    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{pipeline.app.conf.web_port}/stats"
        async with http.get(url) as response:
            assert response.status == 200
            body = await response.json()
    existing = await topic_partitions(bootstrap)
    for topic in topics.all():
        assert existing.get(topic.get_topic_name()) == 4, topic.get_topic_name()
    assert set(body) >= {"topics", "agents", "dead_letters", "rate_per_s", "uptime_s"}


async def test_stats_count_what_flowed(bootstrap, start_pipeline):
    pipeline = await start_pipeline()
    topics = pipeline.topics
    await produce(
        bootstrap,
        topics.orders.get_topic_name(),
        [(b"s-1", order(f"o-{n}", "10.00")) for n in range(5)] + [(b"s-1", b"{")],
    )
    await read_until(bootstrap, topics.payouts_approved.get_topic_name(), lambda v: len(v) >= 5)

    stats = await wait_for_stats(pipeline.app.conf.web_port, lambda s: s["agents"].get("settlement") == 5)

    orders, payouts = topics.orders.get_topic_name(), topics.payouts.get_topic_name()
    assert stats["topics"][orders]["consumed"] == 6
    assert stats["topics"][payouts]["produced"] == 5
    assert stats["topics"][topics.payouts_approved.get_topic_name()]["produced"] == 5
    agents = {name: stats["agents"][name] for name in ("orders-to-payouts", "screening", "settlement")}
    assert agents == {"orders-to-payouts": 6, "screening": 5, "settlement": 5}
    assert stats["dead_letters"] == 1


async def test_a_started_worker_keeps_its_start_up_out_of_the_collectors_full_passes(start_pipeline):
    # Each full pass of the garbage collector walks every object the process holds and stops the
    # event loop meanwhile (up to 250 ms at 1,000 orders/s): what start-up made lives on, frozen.
    gc.unfreeze()
    await start_pipeline()
    assert gc.get_freeze_count() > 10_000
