"""The agents with Faust's `test_context()`: no broker; outputs are in-memory Faust channels."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import pytest
from faust.types import ChannelT

from worker.app import create_app
from worker.flow import orders_to_payouts, screening
from worker.publish import Publisher
from worker.settings import Settings
from worker.topics import Topics, declare_topics

ORDER = {
    "order_id": "o-1",
    "seller_id": "s-9",
    "customer_id": "c-3",
    "amount": "120.00",
    "currency": "EUR",
    "created_at": "2026-11-28T10:00:00Z",
}


@pytest.fixture
def wiring(make_settings: Callable[..., Settings]) -> tuple[Settings, Any, Topics, Topics]:
    """An app whose output topics are in-memory channels, and a reader subscribed to each."""
    settings = make_settings(review_threshold=Decimal("100.00"))
    app = create_app(settings.with_embedded_broker("127.0.0.1:1"))
    topics = declare_topics(app, settings)
    outputs = {f: app.channel() for f in ("payouts", "payouts_approved", "payouts_review", "dead_letters")}
    readers = {name: channel.clone(is_iterator=True) for name, channel in outputs.items()}
    return (
        settings,
        app,
        dataclasses.replace(topics, **outputs),
        dataclasses.replace(topics, **readers),
    )


async def next_value(channel: ChannelT) -> dict[str, Any]:
    event = await channel.get(timeout=5)
    return orjson.loads(event.value)


async def test_an_order_becomes_a_payout_keyed_by_seller(wiring) -> None:
    settings, app, topics, read = wiring
    agent = orders_to_payouts.register(app, topics, Publisher(topics.dead_letters), settings)

    async with agent.test_context() as context:
        await context.put(key=b"whatever", value=orjson.dumps(ORDER))
        event = await read.payouts.get(timeout=5)

    payout = orjson.loads(event.value)
    assert event.key == b"s-9"
    assert (payout["gross"], payout["fee"], payout["net"]) == ("120.00", "3.78", "116.22")


async def test_a_bad_order_becomes_a_dead_letter_and_the_next_one_flows(wiring) -> None:
    settings, app, topics, read = wiring
    agent = orders_to_payouts.register(app, topics, Publisher(topics.dead_letters), settings)

    async with agent.test_context() as context:
        await context.put(key=b"k", value=b'{"order_id": 1}')
        await context.put(key=b"s-9", value=orjson.dumps(ORDER))
        letter = await next_value(read.dead_letters)
        payout = await next_value(read.payouts)

    assert letter["reason"] == "wrong_type"
    assert letter["payload_base64"] == "eyJvcmRlcl9pZCI6IDF9"
    assert letter["key_base64"] == "aw=="
    assert payout["order_id"] == "o-1"


@pytest.mark.parametrize(("amount", "route"), [("50.00", "payouts_approved"), ("500.00", "payouts_review")])
async def test_screening_routes_by_the_threshold(wiring, amount: str, route: str) -> None:
    settings, app, topics, read = wiring
    publisher = Publisher(topics.dead_letters)
    to_payouts = orders_to_payouts.register(app, topics, publisher, settings)
    agent = screening.register(app, topics, publisher, settings)

    async with to_payouts.test_context() as first, agent.test_context() as second:
        await first.put(key=b"s-9", value=orjson.dumps({**ORDER, "amount": amount}))
        payout = await read.payouts.get(timeout=5)
        await second.put(key=payout.key, value=payout.value)
        routed = await next_value(getattr(read, route))

    assert routed["gross"] == amount
