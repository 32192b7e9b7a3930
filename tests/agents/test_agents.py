"""The hot stages' handlers, fed records as the batch consumer would: no broker, outputs in an Outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from tests.stages import record, run
from worker.payouts import orders_to_payouts, screening
from worker.runtime import context
from worker.runtime.context import Context
from worker.runtime.deadletters import Origin, dead_letter_for
from worker.settings import Settings

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORDER_TIME = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ORDER = {
    "order_id": "o-1",
    "seller_id": "s-9",
    "customer_id": "c-3",
    "amount": "120.00",
    "currency": "EUR",
    "created_at": "2026-11-28T10:00:00Z",
}


@pytest.fixture
def ctx(make_settings: Callable[..., Settings]) -> Context:
    settings = make_settings(review_threshold=Decimal("100.00"))
    return context.context(settings.with_embedded_broker("127.0.0.1:1"))


def test_an_order_becomes_a_payout_keyed_by_seller(ctx) -> None:
    topics = ctx.topics
    agent = orders_to_payouts(ctx)

    [message] = run(agent, record(orjson.dumps(ORDER), key=b"whatever")).messages

    payout = orjson.loads(message.value)
    assert (message.topic, message.key) == (topics.payouts, b"s-9")
    assert (payout["gross"], payout["fee"], payout["net"]) == ("120.00", "3.78", "116.22")


def test_a_bad_order_becomes_a_dead_letter_and_the_next_one_flows(ctx) -> None:
    agent = orders_to_payouts(ctx)
    bad = record(b'{"order_id": 1}', key=b"k", offset=7)

    outbox = run(agent, bad, record(orjson.dumps(ORDER), offset=8))

    [(message, error, _)] = outbox.rejected
    letter = dead_letter_for(Origin.of_message(message), error, key=bad.key, value=bad.value, now=NOW)
    assert (message, error.reason) == (bad, "wrong_type")
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == ("orders", 2, 7)
    assert (letter.payload_base64, letter.key_base64) == ("eyJvcmRlcl9pZCI6IDF9", "aw==")
    [payout] = outbox.messages
    assert orjson.loads(payout.value)["order_id"] == "o-1"


@pytest.mark.parametrize(("amount", "route"), [("50.00", "payouts_approved"), ("500.00", "payouts_review")])
def test_screening_routes_by_the_threshold(ctx, amount: str, route: str) -> None:
    topics = ctx.topics
    to_payouts = orders_to_payouts(ctx)
    agent = screening(ctx)

    [payout] = run(to_payouts, record(orjson.dumps({**ORDER, "amount": amount}))).messages
    [routed] = run(agent, record(payout.value, key=payout.key)).messages

    assert routed.topic is getattr(topics, route)
    assert (routed.key, orjson.loads(routed.value)["gross"]) == (b"s-9", amount)
    assert (routed.note, routed.since) == (route.removeprefix("payouts_"), ORDER_TIME)  # for /metrics


def test_each_hot_stage_runs_with_the_agents_in_its_own_group(ctx) -> None:
    agents = context.start(ctx, [orders_to_payouts(ctx), screening(ctx)])

    assert ctx.app.stage_services == list(agents.values())
    assert [a.channel for a in agents.values()] == [ctx.topics.orders, ctx.topics.payouts]
